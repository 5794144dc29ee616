"""Choosing the answer: the fitted scorer ranks every candidate sentence, the passages are cited in the order of
their best sentence, and the best sentence is quoted when its calibrated confidence reaches `min_confidence`;
otherwise the response abstains and the passages are shown as the closest ones."""

from __future__ import annotations

import re

import numpy as np

from ..engines import Passages
from ..indexing.store import Index
from ..retrieval import Hit
from ..text.chunking import Chunk
from ..text.question import holds_type
from .features import Pool, Query, gather_pool, question_features
from .response import Answer, Citation, Exact, Response
from .scorer import Scorer
from .spans import exact_span

TYPE_OF_FORM = {"when": "date", "quantity": "quantity"}  # the forms whose answer is of one checkable kind
CONTINUES = re.compile(r"(These|Those|They|This|Such|Both|All of them|Among them)\b")


def respond(
    query: Query,
    index: Index,
    hits: list[Hit],
    passages: Passages,
    scorer: Scorer,
    min_confidence: float,
    top_k: int,
    context: str | None = None,
    question: str | None = None,
    language: str | None = "en",
) -> Response:
    """The response to `query` from the passages `hits` (more than `top_k` of them may be scored).

    Args:
        index: the catalog the titles and pages come from.
        passages: the hits' passages (`passages.chunks[i]` is hit i's).
        question: the question as asked, when `query` is a follow-up read together with an earlier one.
        language: the index's language (the exact-span rules are English).
    """
    question = query.text if question is None else question
    if not hits:
        return Response(question, True, 0.0, None, [], context)
    pool = gather_pool(passages, hits, query)
    logits = scorer.sentence_logits(pool)
    best_of = passage_scores(passages, pool, logits)
    order = rank_passages(best_of)[:top_k]
    shares = np.exp(best_of - best_of.max())
    shares /= shares.sum()  # each passage's share of the scorer's belief that it holds the answer sentence
    best = int(np.argmax(logits))
    confidence = scorer.probability(question_features(query, pool, logits))
    answer = None
    if confidence >= min_confidence:
        chunk = passages.chunks[int(pool.hit[best])]
        span = extend_span(chunk, pool.spans[best])
        cited = order.index(int(pool.hit[best])) + 1 if int(pool.hit[best]) in order else 0
        if cited:
            text = sentence_text(chunk, span)
            exact = _exact(question, query, text, span[0], language)
            page = _page(index, chunk.source, span[0])
            answer = Answer(text, chunk.source, *span, citation=cited, exact=exact, page=page)
    by_row = dict(zip(pool.rows.tolist(), logits.tolist(), strict=True))
    citations = [
        _citation(n, index, passages, h, by_row, answer, float(shares[h])) for n, h in enumerate(order, start=1)
    ]
    return Response(question, answer is None, confidence, answer, citations, context)


def _exact(question: str, query: Query, sentence: str, offset: int, language: str | None) -> Exact | None:
    """The exact answer inside the quoted `sentence` (which starts at document offset `offset`), if one fits."""
    found = exact_span(question, query.form, sentence, set(query.terms), language)
    if found is None:
        return None
    start, end = found
    wanted = TYPE_OF_FORM.get(query.form)
    if wanted is not None and not holds_type(sentence[start:end], wanted):
        return None  # "When ...?" answered by a name is no answer: mark nothing rather than the wrong kind
    return Exact(sentence[start:end], offset + start, offset + end)


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
    title, page = index.title(chunk.source), _page(index, chunk.source, chunk.start)
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


__all__ = ["extend_span", "rank_passages", "respond", "sentence_text"]
