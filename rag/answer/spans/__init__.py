"""The exact answer inside the quoted sentence, from the reader's span head.

The reader (`..reader`) scores every word piece of the sentence as the start and as the end of the answer; the
likeliest span of at most `LONGEST_SPAN` word pieces is marked when its probability reaches the fitted
`span_threshold` (`train/fit_answer.py`: the probability at which a marked span starts to be more right than wrong,
token F1 >= 0.5 on the tune split), and when it is of the kind the question asks for (a date for "when", a number
for "how many"). Otherwise nothing is marked: no span beats a wrong one. Offsets stay exact:
`document[exact.start:exact.end] == exact.text`.
"""

from __future__ import annotations

from ...text.question import holds_type
from ..response import Exact

TYPE_OF_FORM = {"when": "date", "quantity": "quantity"}  # the forms whose answer is of one checkable kind
EDGE = " \t\n,;:"  # never the first or last character of a span
PAIRS = {"(": ")", "[": "]", "“": "”", "‘": "’", '"': '"'}


def exact_answer(
    sentence: str, offset: int, span: tuple[int, int], probability: float, threshold: float, form: str
) -> Exact | None:
    """The exact answer in `sentence` (which starts at document offset `offset`) from the reader's `span`, or None.

    Args:
        span: character offsets into `sentence`; probability: the span head's probability of it.
        threshold: the fitted span threshold; form: the question's form (`rag.text.question.question_form`).
    """
    start, end = trim(sentence, *span)
    if probability < threshold or end <= start:
        return None
    wanted = TYPE_OF_FORM.get(form)
    if wanted is not None and not holds_type(sentence[start:end], wanted):
        return None  # "When ...?" answered by a name is no answer: mark nothing rather than the wrong kind
    return Exact(sentence[start:end], offset + start, offset + end)


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """`start`, `end` moved inwards past white space and separators, a full stop that ends the sentence (but not
    one of an abbreviation, "U.S."), and a bracket or quote whose partner is not inside the span."""
    while True:
        before = (start, end)
        while start < end and text[start] in EDGE + ".":
            start += 1
        while end > start and text[end - 1] in EDGE:
            end -= 1
        if end > start and text[end - 1] == "." and "." not in text[start : end - 1].split(" ")[-1]:
            end -= 1
        if end > start and text[start] in PAIRS and PAIRS[text[start]] not in text[start + 1 : end]:
            start += 1
        closers = {v: k for k, v in PAIRS.items()}
        if end > start and text[end - 1] in closers and closers[text[end - 1]] not in text[start : end - 1]:
            end -= 1
        if (start, end) == before:
            return start, end


__all__ = ["TYPE_OF_FORM", "exact_answer", "trim"]
