"""Follow-up questions: reading "When was it signed?" with the question before it, without a language model.

A question that points back ("it", "they", "that agreement", "there") or is too short to stand alone is searched
together with the previous question, and the response names the earlier question it used. Any other question is
read on its own, so a change of subject is never answered with the previous topic.
"""

from __future__ import annotations

import re

POINTERS = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|hers|there|then|"
    r"the same|such|former|latter)\b",
    re.I,
)


def points_back(question: str, content_terms: int) -> bool:
    """Whether a question likely refers to an earlier turn: a pronoun, or too few words to stand alone."""
    return bool(POINTERS.search(question)) or content_terms <= 1


def combine(previous: str, question: str) -> str:
    """The text searched for a follow-up: the earlier question, then the new one."""
    return f"{previous} {question}"
