"""The vocabulary of the exact-span rules (`spans.py`): the token pattern, the English function words a span does
not start or end on, the words that mark places, names, numbers and dates, the delimiters, the context words whose
presence beside a span is a feature, and the patterns that read a question's head noun and auxiliary.
"""

from __future__ import annotations

import re

from ..text.question import MONTHS

# One pass over the sentence: "U.S.", an initial "F." before a name, "1,214.5", "12th", "Disney–ABC", a
# possessive "'s", or one punctuation mark.
TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Z]\.(?=\s[A-Z])|\d[\d,.:]*\d\w*|\w+(?:[-–]\w+)*|['’]s\b|[^\w\s]")
PARTS = re.compile(r"[-–.]")
# Function words an answer span does not start or end on (beyond `lexical.STOPWORDS`); CLAUSE_WORDS among them
# rarely stand inside a noun phrase.
CLAUSE_WORDS = frozenset(
    [
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "his",
        "her",
        "him",
        "we",
        "us",
        "our",
        "i",
        "you",
        "your",
        "me",
        "my",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "may",
        "might",
        "must",
        "shall",
        "will",
        "which",
        "who",
        "whom",
        "whose",
        "that",
    ]
)
FUNCTION = CLAUSE_WORDS | frozenset(
    [
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "after",
        "before",
        "during",
        "through",
        "between",
        "among",
        "against",
        "within",
        "without",
        "upon",
        "via",
        "than",
        "so",
        "yet",
        "nor",
        "because",
        "while",
        "although",
        "though",
        "whereas",
        "since",
        "until",
        "unless",
        "also",
        "very",
        "only",
        "just",
        "this",
        "these",
        "those",
        "there",
        "here",
        "then",
        "thus",
        "what",
        "when",
        "where",
        "why",
        "how",
    ]
)
PLACE_WORDS = frozenset(
    ["in", "at", "from", "near", "on", "to", "into", "within", "across", "outside", "inside", "throughout"]
)
NAMING_WORDS = frozenset(
    ["is", "was", "are", "were", "be", "been", "became", "become", "called", "named", "known", "as"]
)
GLUE = frozenset(
    ["of", "the", "and", "de", "for", "upon", "&", "von", "van", "da", "del"]
)  # inside a name: "University of the Arts"
NUMBER_GLUE = frozenset(["-", "–", "to"])
MONTH_WORDS = frozenset(MONTHS.split("|"))
CENTURY = frozenset(["century", "centuries", "decade", "decades", "millennium"])
CURRENCY = frozenset("$£€¥")
PERCENT = frozenset(("%", "percent"))
DELIM_LEFT = frozenset(",(:;\"“'‘—–-[")
DELIM_RIGHT = frozenset(",):;.\"”'’—–-!?]")
BREAKS = frozenset(";.!?")  # a span does not run across these
AUX = frozenset(
    ["did", "does", "do", "is", "was", "are", "were", "has", "have", "had", "can", "could", "will", "would", "should"]
)
# Words and marks whose presence right before or after a span is a feature of its own (English function words).
CONTEXT_WORDS = tuple(
    [
        "the",
        "a",
        "an",
        "in",
        "of",
        "on",
        "to",
        "by",
        "and",
        "or",
        "from",
        "his",
        "her",
        "its",
        "their",
        "as",
        "for",
        "with",
        "at",
        "is",
        "was",
        "are",
        "were",
        "that",
        "which",
        "who",
        "have",
        "has",
        "had",
        "be",
        "about",
        "since",
        "between",
        "into",
        "until",
        "including",
        "named",
        "called",
        "during",
        "over",
        "after",
    ]
) + tuple(",().\";:–%'")
WH_HEAD = re.compile(r"\b(?:what|which|whose)\s+(?:(?:kind|type|sort|form|part|name|brand)s?\s+of\s+)?(\w+)", re.I)
WH_AUX = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b(?:\s+\w+)?\s+(\w+)", re.I)
