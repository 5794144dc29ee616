"""Picking the answer sentence, marking it in the citations, and deciding when to abstain.

Every sentence of the cited passages is scored on its cosine to the question (stored sentence vectors), on how
much of the question's weighted vocabulary it holds (IDF-weighted term coverage), and on its passage's rank. The
best one is the answer. The confidence is a logistic function of the best sentence's cosine and coverage; below
`min_confidence` the answer is withheld and the passages are shown as the closest ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .chunking import Chunk
from .question import expected_type, focus_pattern
from .retrieval import Hit
from .sentences import FLAG_OF_TYPE, HEADING
from .store import Index


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    title: str
    chunk_id: str
    text: str
    start: int
    end: int
    score: float
    highlight: tuple[int, int]  # the answer sentence, or the passage's own best sentence


@dataclass(frozen=True)
class Answer:
    text: str
    source: str
    start: int
    end: int
    citation: int  # n of the citation that holds it


@dataclass(frozen=True)
class Response:
    question: str
    abstained: bool
    confidence: float
    answer: Answer | None
    citations: list[Citation]
    context: str | None = None  # the earlier question a follow-up was read with

    def to_dict(self) -> dict:
        """The one JSON shape of a response: the CLI, the HTTP API and the Python API all return this."""
        return {
            "question": self.question,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "answer": None
            if self.answer is None
            else {
                "text": self.answer.text,
                "source": self.answer.source,
                "start": self.answer.start,
                "end": self.answer.end,
                "citation": self.answer.citation,
            },
            "citations": [
                {
                    "n": c.n,
                    "source": c.source,
                    "title": c.title,
                    "chunk_id": c.chunk_id,
                    "text": c.text,
                    "start": c.start,
                    "end": c.end,
                    "score": round(c.score, 4),
                    "highlight": {"start": c.highlight[0], "end": c.highlight[1]},
                }
                for c in self.citations
            ],
            "context": self.context,
        }


@dataclass(frozen=True)
class Candidate:
    hit: int  # position among the hits
    span: tuple[int, int]
    cosine: float
    coverage: float
    typed: bool  # holds the kind of answer the question asks for (a date, a quantity)
    score: float
    evidence: float  # coverage of the question's terms by the whole passage


CONFIDENCE_BIAS = 6.1
CONTINUES = re.compile(r"(These|Those|They|This|Such|Both|All of them|Among them)\b")


@dataclass(frozen=True)
class AnswerWeights:
    cosine: float = 0.5
    coverage: float = 0.3
    passage: float = 0.2
    typed: float = 0.15
    focused: float = 0.15
    heading: float = -0.15  # a title line repeats the question's words but rarely answers it


def score_sentences(
    question: str,
    index: Index,
    hits: list[Hit],
    query_vector: np.ndarray,
    terms: list[str],
    weights: AnswerWeights = AnswerWeights(),
) -> list[Candidate]:
    """Every sentence of the hits, scored; a sentence shared by two passages is kept with the better one.

    Term ids and flags come from the index's sentence table (worked out at index time), so this costs a few
    dot products and set look-ups a sentence.
    """
    kind, focus = expected_type(question), focus_pattern(question)
    wanted = FLAG_OF_TYPE.get(kind or "", 0)
    known = index.lexical.vocabulary_ids
    idf = {known.get(t, -1 - i): index.lexical.idf(t) for i, t in enumerate(dict.fromkeys(terms))}
    total_idf = sum(idf.values()) or 1.0
    top = hits[0].score if hits and hits[0].score > 0 else 1.0
    table = index.sentence_table
    seen: set[int] = set()
    out = []
    for i, hit in enumerate(hits):
        chunk = index.chunks[hit.row]
        rows = index.sentence_rows(chunk)
        cosines = np.asarray(index.sentence_vectors[rows.start : rows.stop], dtype=np.float32) @ query_vector
        held = [idf.keys() & set(table.term_ids(r).tolist()) for r in rows]
        evidence = sum(idf[t] for t in set().union(*held)) / total_idf
        for row, span, cos, matched in zip(rows, chunk.sentences, cosines.tolist(), held, strict=True):
            if row in seen:
                continue
            seen.add(row)
            coverage = sum(idf[t] for t in matched) / total_idf
            flags = int(table.flags[row])
            typed = bool(flags & wanted)
            focused = focus is not None and focus.search(sentence_text(chunk, span)) is not None
            score = (
                weights.cosine * cos
                + weights.coverage * coverage
                + weights.passage * hit.score / top
                + weights.typed * typed
                + weights.focused * focused
                + weights.heading * bool(flags & HEADING)
            )
            out.append(Candidate(i, span, cos, coverage, typed, score, evidence))
    return out


def confidence(best: Candidate, candidates: list[Candidate]) -> float:
    """How sure we are that the passage of the best sentence answers the question, in [0, 1].

    Its inputs are the closest sentence's cosine and how much of the question's weighted vocabulary the best
    sentence's passage holds: a question about something the documents never name scores low on the second.
    """
    closest = max(c.cosine for c in candidates)
    return 1 / (1 + math.exp(-(8.0 * closest + 4.0 * best.evidence - CONFIDENCE_BIAS)))


def respond(
    question: str,
    index: Index,
    hits: list[Hit],
    candidates: list[Candidate],
    min_confidence: float,
    context: str | None = None,
) -> Response:
    """The response: the answer (or abstention) and the hits as numbered citations."""
    best = max(candidates, key=lambda c: c.score, default=None)
    conf = confidence(best, candidates) if best else 0.0
    abstained = best is None or conf < min_confidence
    answer = None
    if best is not None and not abstained:
        chunk = index.chunks[hits[best.hit].row]
        span = extend_span(chunk, best.span)
        answer = Answer(sentence_text(chunk, span), chunk.source, *span, citation=best.hit + 1)
    citations = []
    for i, hit in enumerate(hits):
        chunk = index.chunks[hit.row]
        if (
            answer is not None
            and answer.source == chunk.source
            and chunk.start <= answer.start
            and answer.end <= chunk.end
        ):
            mark = (answer.start, answer.end)
        else:  # the passage's own best sentence
            own = max((c for c in candidates if c.hit == i), key=lambda c: c.score, default=None)
            mark = own.span if own else chunk.sentences[0]
        citations.append(
            Citation(
                n=i + 1,
                source=chunk.source,
                title=index.title(chunk.source),
                chunk_id=chunk.id,
                text=chunk.text,
                start=chunk.start,
                end=chunk.end,
                score=hit.score,
                highlight=mark,
            )
        )
    return Response(question, abstained, conf, answer, citations, context)


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
