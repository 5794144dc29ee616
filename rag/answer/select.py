"""Choosing the answer: the fitted scorer ranks every candidate sentence, the trained reader re-reads the best few,
the passages are cited in the order of their best sentence, and the chosen sentence is quoted when its calibrated
confidence reaches `min_confidence`; otherwise the response abstains and the passages are shown as the closest
ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..engines import Passages
from ..indexing.store import Index
from ..retrieval import Hit
from ..text.chunking import Chunk
from .features import COLUMN, EXPECTS, Pool, Query, gather_pool, question_features
from .reader import Reader
from .rerank import Choice, choose, top_candidates
from .response import Answer, Citation, Response
from .scorer import Scorer
from .spans import exact_answer

CONTINUES = re.compile(r"(These|Those|They|This|Such|Both|All of them|Among them)\b")


@dataclass(frozen=True)
class Found:
    """What search found for a question: the hits, their passages (`passages.chunks[i]` is hit i's), and the index
    whose catalog the titles and pages come from."""

    index: Index
    hits: list[Hit]
    passages: Passages


def respond(
    query: Query,
    found: Found,
    scorer: Scorer,
    reader: Reader,
    *,
    min_confidence: float,
    top_k: int,
    context: str | None = None,
) -> Response:
    """The response to `query` from the passages `found` (more than `top_k` of them may be scored): the scorer
    ranks every candidate sentence, the reader re-reads its best few (`rerank`), and the chosen sentence is quoted
    when the calibrated confidence reaches `min_confidence`.

    Args:
        context: the earlier question a follow-up was read with (`query.text` holds both, `query.asked` its own).
    """
    if not found.hits:
        return Response(query.asked, True, 0.0, None, [], context)
    passages = found.passages
    pool = gather_pool(passages, found.hits, query)
    choice = read_best(query, passages, pool, scorer, reader)
    best_of = passage_scores(passages, pool, choice.logits)
    order = rank_passages(best_of)[:top_k]
    shares = np.exp(best_of - best_of.max())
    shares /= shares.sum()  # each passage's share of the scorer's belief that it holds the answer sentence
    confidence = scorer.probability(np.concatenate([question_features(query, pool, choice.logits), choice.features]))
    if not holds_kind(query, pool, choice.best):
        confidence = min(confidence, scorer.mix.type_cap)  # "when" answered by a sentence that holds no date
    answer = None
    hit = int(pool.hit[choice.best])
    if confidence >= min_confidence and hit in order:
        chunk = passages.chunks[hit]
        span = extend_span(chunk, pool.spans[choice.best])
        text = sentence_text(chunk, span)
        exact = None
        if query.language == "en":  # the reader was trained on English
            probability = float(choice.reading.span_probability[choice.at])
            found_span = choice.reading.spans[choice.at]
            exact = exact_answer(text, span[0], found_span, probability, scorer.mix.span_threshold, query.form)
        page = _page(found.index, chunk.source, span[0])
        answer = Answer(text, chunk.source, *span, citation=order.index(hit) + 1, exact=exact, page=page)
    by_row = dict(zip(pool.rows.tolist(), choice.logits.tolist(), strict=True))
    citations = [
        _citation(n, found.index, passages, h, by_row, answer, float(shares[h])) for n, h in enumerate(order, start=1)
    ]
    return Response(query.asked, answer is None, confidence, answer, citations, context)


def read_best(query: Query, passages: Passages, pool: Pool, scorer: Scorer, reader: Reader) -> Choice:
    """The scorer's best few candidates read by the reader, and the one the mix of both puts first."""
    logits = scorer.sentence_logits(pool)
    top = top_candidates(logits, scorer.mix)
    texts = [quoted_text(passages.chunks[int(pool.hit[i])], pool.spans[i]) for i in top.tolist()]
    return choose(logits, top, reader.read(query.text, texts), scorer.mix)


def holds_kind(query: Query, pool: Pool, candidate: int) -> bool:
    """Whether the candidate holds an answer of the kind the question's form asks for (a date for "when", a
    number for "how many", a name the question lacks for "who" and "where"); True for the other forms."""
    return query.form not in EXPECTS or bool(pool.features[candidate, COLUMN[EXPECTS[query.form]]])


def quoted_text(chunk: Chunk, span: tuple[int, int]) -> str:
    """What would be quoted for the candidate sentence `span` of `chunk` (`extend_span`)."""
    return sentence_text(chunk, extend_span(chunk, span))


def passage_scores(passages: Passages, pool: Pool, logits: np.ndarray) -> np.ndarray:
    """For each hit, the score of the best candidate sentence its passage holds (passages are cited in this
    order)."""
    by_row = dict(zip(pool.rows.tolist(), logits.tolist(), strict=True))
    return np.asarray([max(by_row[r] for r in passages.positions(i)) for i in range(len(passages.chunks))])


def rank_passages(best: np.ndarray) -> list[int]:
    """Positions of the hits, best first, by `passage_scores` (ties: retrieval's order)."""
    return sorted(range(len(best)), key=lambda i: (-best[i], i))


def _citation(
    n: int, index: Index, passages: Passages, i: int, by_row: dict[int, float], answer: Answer | None, share: float
) -> Citation:
    chunk = passages.chunks[i]
    scores = [by_row[r] for r in passages.positions(i)]
    if answer is not None and answer.source == chunk.source and chunk.start <= answer.start < answer.end <= chunk.end:
        mark = (answer.start, answer.end)
    else:  # the passage's own best sentence
        mark = chunk.sentences[int(np.argmax(scores))]
    title, page = index.title(chunk.source), _page(index, chunk.source, mark[0])  # the marked sentence's page
    return Citation(n, chunk.source, title, chunk.id, chunk.text, chunk.start, chunk.end, share, mark, page)


def _page(index: Index, source: str, offset: int) -> int | None:
    """The 1-based page of a paged document (PDF) that holds `offset`; None for other formats."""
    entry = index.entry(source)
    return entry.page_at(offset) if entry is not None else None


def extend_span(chunk: Chunk, span: tuple[int, int]) -> tuple[int, int]:
    """The answer span: the sentence, and the next one too when it goes on with what this one announced
    ("... four key areas. These are ...", or a sentence ending in a colon)."""
    position = chunk.sentences.index(span)
    if position + 1 >= len(chunk.sentences):
        return span
    following = chunk.sentences[position + 1]
    between = chunk.text[span[1] - chunk.start : following[0] - chunk.start]
    announces = sentence_text(chunk, span).endswith(":") or CONTINUES.match(sentence_text(chunk, following))
    return (span[0], following[1]) if announces and "\n\n" not in between else span


def sentence_text(chunk: Chunk, span: tuple[int, int]) -> str:
    return chunk.text[span[0] - chunk.start : span[1] - chunk.start]


__all__ = ["Found", "extend_span", "quoted_text", "rank_passages", "read_best", "respond", "sentence_text"]
