"""The exact answer inside the answer sentence, from the trained reader's span head: the kind each question form
asks for, exact offsets, nothing marked when the span is unsure or of the wrong kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.answer import load_reader
from rag.answer.scorer import load_scorer
from rag.answer.spans import exact_answer, trim
from rag.text.question import question_form

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
    ("how many rooms hotel", "The hotel on the harbour has 212 rooms and two restaurants.", "212"),
]


def span_of(question: str, sentence: str, offset: int = 0) -> tuple[str, int, int] | None:
    reading = load_reader().read(question, [sentence])
    threshold = load_scorer().mix.span_threshold
    probability = float(reading.span_probability[0])
    found = exact_answer(sentence, offset, reading.spans[0], probability, threshold, question_form(question))
    return None if found is None else (found.text, found.start, found.end)


@pytest.mark.parametrize(("question", "sentence", "held"), CASES)
def test_the_exact_answer_is_the_kind_the_question_asks_for(question: str, sentence: str, held: str) -> None:
    found = span_of(question, sentence)
    assert found is not None and held in found[0]
    assert len(found[0].split()) <= 6
    assert found[0] == found[0].strip()


@pytest.mark.parametrize(("question", "sentence", "held"), CASES)
def test_offsets_are_document_offsets(question: str, sentence: str, held: str) -> None:
    document = "Some text before the sentence. " + sentence
    found = span_of(question, sentence, offset=document.index(sentence))
    assert found is not None
    text, start, end = found
    assert document[start:end] == text


def test_a_when_question_gets_no_span_that_is_not_a_date() -> None:
    sentence = "The bridge was designed by Margarethe Olsen."
    assert exact_answer(sentence, 0, (27, 44), 0.99, 0.1, "when") is None
    assert exact_answer(sentence, 0, (27, 44), 0.99, 0.1, "who") is not None


def test_an_unsure_span_is_not_marked() -> None:
    sentence = "The hotel on the harbour has 212 rooms."
    assert exact_answer(sentence, 0, (29, 32), 0.2, 0.3, "quantity") is None
    assert exact_answer(sentence, 0, (29, 32), 0.4, 0.3, "quantity") is not None


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        (" 1,500 generators.", "1,500 generators"),
        ("(UCLA)", "(UCLA)"),
        ("(in 1992", "in 1992"),
        ("the U.S.", "the U.S."),
        ('"Our Lady",', '"Our Lady"'),
    ],
)
def test_trim_drops_separators_and_unpaired_brackets(text: str, trimmed: str) -> None:
    start, end = trim(text, 0, len(text))
    assert text[start:end] == trimmed


@given(st.text(max_size=40), st.data())
def test_trim_stays_inside_its_span(text: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    start, end = trim(text, a, b)
    assert a <= start <= end <= b
