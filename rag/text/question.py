"""What kind of answer a question asks for, and whether a sentence holds one.

Classic extractive QA: "When ..." wants a date, "How many ..." a quantity. A sentence that holds the expected kind
of answer is preferred over one that only repeats the question's words. English question forms only; other
questions get no expected type and are scored on meaning and words alone.
"""

from __future__ import annotations

import re

MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|trillion|dozen|dozens|half|once|twice"
)
QUESTION_TYPES = [
    (
        "date",
        re.compile(
            r"^\s*(when|since when|until when|what (year|date|day|month|time)|in what year|"
            r"in which (year|month)|on what (date|day)|by when)\b",
            re.I,
        ),
    ),
    (
        "quantity",
        re.compile(
            r"^\s*(how (many|much|long|old|often|far|large|big|high)|what (amount|number|"
            r"percentage|share|sum|proportion)|what is the (amount|number|total|size))\b",
            re.I,
        ),
    ),
]
ANSWER_PATTERNS = {
    "date": re.compile(
        # years 1000-2099 and their decades ("1186", "the 1980s"), day and month, centuries, times of day
        rf"\b(1\d{{3}}s?|20\d\ds?|\d{{1,2}}(st|nd|rd|th)?\s+({MONTHS})|({MONTHS})\.?\s+\d{{1,2}}|"
        rf"({MONTHS})|today|yesterday|tomorrow|centur(y|ies)|decades?|millenni(um|a)|"
        rf"\d{{1,2}}(:\d\d)?\s*(a\.m|p\.m|am|pm|o'clock))\b",
        re.I,
    ),
    # a digit, but not a list marker such as "(1)" or "2." that opens a sentence
    "quantity": re.compile(rf"((?<!^)(?<!^\()\d(?![.)]\s)|\b({NUMBER_WORDS})\b)", re.I),
}
NUMBER = rf"(\d[\d,.]*|{NUMBER_WORDS})"
FOCUS = re.compile(r"^\s*how (many|much) ([a-z-]+)(\s+[a-z-]+)?", re.I)
AUXILIARIES = {
    "did",
    "does",
    "do",
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "had",
    "will",
    "can",
    "could",
    "would",
    "should",
    "money",
    "of",
    "in",
    "the",
    "a",
    "an",
    "they",
    "he",
    "she",
    "it",
    "we",
    "you",
    "i",
    "there",
    "people",
}


# The question's form, from the first question word wherever it stands ("The game was played in what city?").
# English rules: with another language they are switched off (`question_form(..., language=...)`).
FORMS = ("who", "when", "where", "quantity", "which", "what", "why", "how", "yesno", "other")
WH = re.compile(r"\b(who|whom|whose|when|where|why|how|which|what)\b", re.I)
# "whos", "what's", "wheres": a question word run together with "is", as people type it ("whose" is a word).
CONTRACTED = re.compile(r"\b(who|what|when|where|why|how)['’]?s\b", re.I)
PLACE = re.compile(
    r"^(what|which) (city|country|state|town|county|region|continent|place|location|area|nation|island|river|"
    r"building|street|province|village|district|neighborhood|borough)s?\b|^where\b",
    re.I,
)
PERSON = re.compile(r"^(who|whom|whose)\b|^(what|which) (person|people|man|woman|king|president|leader)\b", re.I)
DEFINITION = re.compile(r"^what\s+(is|was|are|were|does|do|did|has|have|had|can|could|would|will)\b", re.I)
YESNO = re.compile(r"^\s*(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b", re.I)


# Question words as people misspell them when they type fast: a letter dropped, doubled or swapped, or the "h" left
# out ("wen", "wat", "hw", "whre"). Each is read as the word it stands for, for the question's form and terms
# (`respell`), so that "wen did ..." is a "when" question, not one of no form with an unknown word. The list is the
# misspellings that english.py's ENGLISH_WORDS already takes as English, and the other one-keystroke slips of the
# seven question words that are no English word themselves ("hoe", "now", "then", "were", "whom" are left out).
MISSPELLED = {
    "wen": "when", "whn": "when", "wehn": "when", "whne": "when",
    "wat": "what", "waht": "what", "wht": "what", "whta": "what",
    "wich": "which", "whcih": "which", "whihc": "which", "wihch": "which",
    "hwo": "who", "woh": "who",
    "whre": "where", "wher": "where", "wehre": "where", "wheer": "where",
    "hw": "how", "hpw": "how",
    "wy": "why", "whyy": "why",
}  # fmt: skip
MISSPELLING = re.compile(r"\b(" + "|".join(sorted(MISSPELLED, key=len, reverse=True)) + r")\b")


def respell(question: str) -> str:
    """`question` with misspelled question words spelled out (`MISSPELLED`): only those typed in lower case, as
    casual questions are ("Wat Pho" is a name); the rest as it was."""
    return MISSPELLING.sub(lambda m: MISSPELLED.get(m.group(), m.group()), question)


def question_form(question: str, language: str | None = "en") -> str:
    """One of `FORMS` for an English question; 'other' for any question when `language` is not English."""
    if language != "en":
        return "other"
    question = CONTRACTED.sub(r"\1 is", respell(question))
    match = WH.search(question)
    if match is None:
        return "yesno" if YESNO.match(question) else "other"
    rest = question[match.start() :]
    if expected_type(rest) == "date":
        return "when"
    if expected_type(rest) == "quantity":
        return "quantity"
    if PERSON.match(rest):
        return "who"
    if PLACE.match(rest):
        return "where"
    word = match.group().lower()
    if word in ("why", "how"):
        return word
    return "what" if word == "what" and DEFINITION.match(rest) else "which"


def expected_type(question: str) -> str | None:
    """'date', 'quantity' or None."""
    return next((name for name, pattern in QUESTION_TYPES if pattern.search(question)), None)


def holds_type(text: str, kind: str | None) -> bool:
    return kind is not None and ANSWER_PATTERNS[kind].search(text) is not None


def focus_pattern(question: str) -> re.Pattern[str] | None:
    """For "How many X ...", a pattern for a number just before X ("2,718 Ukrainians", "four forums")."""
    match = FOCUS.search(question)
    if match is None:
        return None
    words = [w.strip().lower() for w in match.groups()[1:] if w]
    words = [w for w in words if w not in AUXILIARIES]
    if not words:
        return None
    stems = "|".join(re.escape(w[: max(4, len(w) - 2)]) for w in words)
    return re.compile(rf"\b{NUMBER}\s+(\S+\s+){{0,2}}({stems})", re.I)
