"""The values a question ends in: the answer sentence with its exact span, numbered citations, the response, and
its one JSON shape (`Response.to_dict`), which the CLI, the HTTP API and the Python API all return, and which
`Response.from_dict` reads back, so that what shows a response (the pages, the terminal) reads typed values."""

from __future__ import annotations

from collections.abc import Callable
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

    @classmethod
    def from_dict(cls, data: Any) -> Response:
        """The response that `to_dict` wrote `data` from (confidence and scores as rounded there); also the JSON of
        older versions, which lack `exact`, `note`, `context` and `page` (read as None). A malformed exact span
        reads as None, because the answer sentence is still worth showing without its bold span; a response that
        lacks a required key or holds one of the wrong type raises ValueError, so a broken one fails here, once,
        rather than as a KeyError or TypeError somewhere in a page or the terminal."""
        r = _Fields(data, "response")
        if "answer" not in r.data:
            raise ValueError("response: the key 'answer' is missing")
        answer = None if r.data["answer"] is None else _answer(_Fields(r.data["answer"], "response.answer"))
        citations = r.get("citations", "a list")
        return cls(
            question=r.get("question", "a string"),
            abstained=r.get("abstained", "a boolean"),
            confidence=float(r.get("confidence", "a number")),
            answer=answer,
            citations=[_citation(_Fields(c, f"response.citations[{i}]")) for i, c in enumerate(citations)],
            context=r.get("context", "a string", optional=True),
            note=r.get("note", "a string", optional=True),
        )


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


# What each kind of JSON value must be: bool is not an int here (JSON tells `true` from `1`, and an offset of
# `true` is a bug), and a number is an int or a float.
_KINDS: dict[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "an integer": lambda v: type(v) is int,
    "a number": lambda v: type(v) in (int, float),
    "a boolean": lambda v: type(v) is bool,
    "a list": lambda v: isinstance(v, list),
    "an object": lambda v: isinstance(v, dict),
}


class _Fields:
    """The keys of one JSON object of a response, each checked as it is read, with its place (`where`) in the
    error message: "response.citations[2].start must be an integer, not str"."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, not {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where

    def get(self, key: str, kind: str, optional: bool = False) -> Any:
        """`data[key]`, which must be of `kind`; an optional key may be missing or null (None)."""
        value = self.data.get(key)
        if value is None and optional:
            return None
        if key not in self.data:
            raise ValueError(f"{self.where}: the key {key!r} is missing")
        if not _KINDS[kind](value):
            raise ValueError(f"{self.where}.{key} must be {kind}, not {type(value).__name__}")
        return value


def _answer(a: _Fields) -> Answer:
    return Answer(
        text=a.get("text", "a string"),
        source=a.get("source", "a string"),
        start=a.get("start", "an integer"),
        end=a.get("end", "an integer"),
        citation=a.get("citation", "an integer"),
        exact=_exact(a.data.get("exact")),
        page=a.get("page", "an integer", optional=True),
    )


def _exact(data: Any) -> Exact | None:
    """The exact span, or None unless it is whole and well typed (its "source" is the answer's, not read again)."""
    if not isinstance(data, dict):
        return None
    text, start, end = data.get("text"), data.get("start"), data.get("end")
    if isinstance(text, str) and type(start) is int and type(end) is int:
        return Exact(text, start, end)
    return None


def _citation(c: _Fields) -> Citation:
    highlight = _Fields(c.get("highlight", "an object"), f"{c.where}.highlight")
    return Citation(
        n=c.get("n", "an integer"),
        source=c.get("source", "a string"),
        title=c.get("title", "a string"),
        chunk_id=c.get("chunk_id", "a string"),
        text=c.get("text", "a string"),
        start=c.get("start", "an integer"),
        end=c.get("end", "an integer"),
        score=float(c.get("score", "a number")),
        highlight=(highlight.get("start", "an integer"), highlight.get("end", "an integer")),
        page=c.get("page", "an integer", optional=True),
    )
