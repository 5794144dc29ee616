"""Picking the answer sentence, marking it in the citations, and deciding when to abstain.

Every sentence of the cited passages is scored on its cosine to the question (stored sentence vectors), on how
much of the question's weighted vocabulary it holds (IDF-weighted term coverage), and on its passage's rank. The
best one is the answer. The confidence is a logistic function of the best sentence's cosine and coverage; below
`min_confidence` the answer is withheld and the passages are shown as the closest ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .chunking import Chunk
from .lexical import tokenize
from .retrieval import Hit
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

    def to_dict(self) -> dict:
        """The one JSON shape of a response: the CLI, the HTTP API and the Python API all return this."""
        return {
            "question": self.question,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "answer": None if self.answer is None else {
                "text": self.answer.text, "source": self.answer.source, "start": self.answer.start,
                "end": self.answer.end, "citation": self.answer.citation,
            },
            "citations": [
                {
                    "n": c.n, "source": c.source, "title": c.title, "chunk_id": c.chunk_id, "text": c.text,
                    "start": c.start, "end": c.end, "score": round(c.score, 4),
                    "highlight": {"start": c.highlight[0], "end": c.highlight[1]},
                }
                for c in self.citations
            ],
        }


@dataclass(frozen=True)
class Candidate:
    hit: int  # position among the hits
    span: tuple[int, int]
    cosine: float
    coverage: float
    score: float


@dataclass(frozen=True)
class AnswerWeights:
    cosine: float = 0.5
    coverage: float = 0.3
    passage: float = 0.2


def score_sentences(index: Index, hits: list[Hit], query_vector: np.ndarray, terms: list[str],
                    weights: AnswerWeights = AnswerWeights()) -> list[Candidate]:
    """Every sentence of the hits, scored; a sentence shared by two passages is kept with the better one."""
    idf = {t: index.lexical.idf(t) for t in set(terms)}
    total_idf = sum(idf.values()) or 1.0
    top = hits[0].score if hits and hits[0].score > 0 else 1.0
    seen: set[tuple[str, int]] = set()
    out = []
    for i, hit in enumerate(hits):
        chunk = index.chunks[hit.row]
        rows = index.sentence_rows(chunk)
        cosines = index.sentence_vectors[rows.start : rows.stop] @ query_vector
        sentence_terms = tokenize([sentence_text(chunk, span) for span in chunk.sentences])
        for (a, b), cos, s_terms in zip(chunk.sentences, cosines.tolist(), sentence_terms):
            if (chunk.source, a) in seen:
                continue
            seen.add((chunk.source, a))
            coverage = sum(idf[t] for t in set(terms) if t in set(s_terms)) / total_idf
            score = weights.cosine * cos + weights.coverage * coverage + weights.passage * hit.score / top
            out.append(Candidate(i, (a, b), cos, coverage, score))
    return out


def confidence(best: Candidate) -> float:
    """How sure the best sentence answers the question, in [0, 1]."""
    return 1 / (1 + math.exp(-(8.0 * best.cosine + 4.0 * best.coverage - 5.0)))


def respond(question: str, index: Index, hits: list[Hit], candidates: list[Candidate], min_confidence: float) -> Response:
    """The response: the answer (or abstention) and the hits as numbered citations."""
    best = max(candidates, key=lambda c: c.score, default=None)
    conf = confidence(best) if best else 0.0
    abstained = best is None or conf < min_confidence
    answer = None
    if best is not None and not abstained:
        chunk = index.chunks[hits[best.hit].row]
        answer = Answer(sentence_text(chunk, best.span), chunk.source, *best.span, citation=best.hit + 1)
    citations = []
    for i, hit in enumerate(hits):
        chunk = index.chunks[hit.row]
        if answer is not None and answer.source == chunk.source and best.span in chunk.sentences:
            mark = best.span
        else:  # the passage's own best sentence
            mark = max((c for c in candidates if c.hit == i), key=lambda c: c.score, default=None)
            mark = mark.span if mark else chunk.sentences[0]
        citations.append(Citation(
            n=i + 1, source=chunk.source, title=index.title(chunk.source), chunk_id=chunk.id, text=chunk.text,
            start=chunk.start, end=chunk.end, score=hit.score, highlight=mark,
        ))
    return Response(question, abstained, conf, answer, citations)


def sentence_text(chunk: Chunk, span: tuple[int, int]) -> str:
    return chunk.text[span[0] - chunk.start : span[1] - chunk.start]
