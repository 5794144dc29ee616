"""The values a question ends in: the answer sentence with its exact span, numbered citations, the response, and
its one JSON shape (`Response.to_dict`), which the CLI, the HTTP API and the Python API all return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Exact:
    """The short answer (a date, a number with its unit, a name, a place) inside the answer sentence."""

    text: str
    start: int
    end: int


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
    page: int | None = None  # the page of a paged document (PDF) where `highlight` starts, 1-based


@dataclass(frozen=True)
class Answer:
    text: str
    source: str
    start: int
    end: int
    citation: int  # n of the citation that holds it
    exact: Exact | None = None
    page: int | None = None  # the page of a paged document (PDF) where the sentence starts, 1-based


@dataclass(frozen=True)
class Response:
    question: str
    abstained: bool
    confidence: float  # the calibrated probability that `answer` answers the question
    answer: Answer | None
    citations: list[Citation]
    context: str | None = None  # the earlier question a follow-up was read with
    note: str | None = None  # what the user should know about how the question was read

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a response."""
        return {
            "question": self.question,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "answer": None if self.answer is None else _answer_dict(self.answer),
            "citations": [_citation_dict(c) for c in self.citations],
            "context": self.context,
            "note": self.note,
        }


def _answer_dict(answer: Answer) -> dict[str, Any]:
    exact = answer.exact
    return {
        "text": answer.text,
        "source": answer.source,
        "start": answer.start,
        "end": answer.end,
        "citation": answer.citation,
        "page": answer.page,
        "exact": None
        if exact is None
        else {"text": exact.text, "source": answer.source, "start": exact.start, "end": exact.end},
    }


def _citation_dict(c: Citation) -> dict[str, Any]:
    return {
        "n": c.n,
        "source": c.source,
        "title": c.title,
        "chunk_id": c.chunk_id,
        "text": c.text,
        "start": c.start,
        "end": c.end,
        "score": round(c.score, 4),
        "highlight": {"start": c.highlight[0], "end": c.highlight[1]},
        "page": c.page,
    }
