"""The exact answer inside the answer sentence: typed spans for each question form, offsets, other languages."""

from __future__ import annotations

import json

import pytest

from rag.answer import spans
from rag.text.question import question_form
from rag.text.words import terms

# Our own sentences and questions (none from the eval sets), each with the span the answer must hold.
CASES = [
    (
        "When did the bridge open?",
        "The new bridge over the river opened on 14 March 1931 after four years of work.",
        "1931",
    ),
    ("How many rooms does the hotel have?", "The hotel on the harbour has 212 rooms and two restaurants.", "212"),
    (
        "Who designed the library?",
        "The library was designed by Margarethe Olsen, a Danish architect.",
        "Margarethe Olsen",
    ),
    (
        "Where was the treaty signed?",
        "After long talks the treaty was finally signed in Lisbon by both envoys.",
        "Lisbon",
    ),
]


def span_of(question: str, sentence: str, language: str | None = "en") -> str | None:
    found = spans.exact_span(question, question_form(question), sentence, set(terms(question)), language)
    return None if found is None else sentence[found[0] : found[1]]


@pytest.mark.parametrize(("question", "sentence", "held"), CASES)
def test_the_exact_answer_is_the_kind_the_question_asks_for(question: str, sentence: str, held: str) -> None:
    span = span_of(question, sentence)
    assert span is not None and held in span
    assert len(span.split()) <= spans.MAX_TOKENS
    assert span == span.strip()


@pytest.mark.parametrize(("question", "sentence", "held"), CASES)
def test_offsets_are_inside_the_sentence(question: str, sentence: str, held: str) -> None:
    found = spans.exact_span(question, question_form(question), sentence, set(terms(question)))
    assert found is not None
    start, end = found
    assert 0 <= start < end <= len(sentence)


def test_another_language_gets_no_span() -> None:
    question, sentence, _ = CASES[0]
    assert span_of(question, sentence, language="de") is None
    assert span_of(question, sentence, language=None) is None


def test_the_weights_file_names_the_features_the_code_computes() -> None:
    data = json.loads(spans.WEIGHTS.read_text(encoding="utf-8"))
    assert data["names"] == list(spans.NAMES)
    assert "SQuAD" in data["fitted_on"] and data["fitted_by"].endswith("bench/train_spans.py")
