"""A sentence as tokens for the exact-span rules: character offsets, the per-token flag columns (`FLAGS` of 0/1:
word class, typed pattern, question word, ...) and the context-word ids; and what a question tells about its answer's
place (`Asked`, read once per question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..text.question import ANSWER_PATTERNS, WH, focus_pattern
from ..text.words import is_stop, stem, terms
from .span_words import (
    AUX,
    BREAKS,
    CLAUSE_WORDS,
    CONTEXT_WORDS,
    CURRENCY,
    FUNCTION,
    MONTH_WORDS,
    NAMING_WORDS,
    PARTS,
    PERCENT,
    PLACE_WORDS,
    TOKEN,
    WH_AUX,
    WH_HEAD,
)

_CONTEXT_ID = {w: i for i, w in enumerate(CONTEXT_WORDS)}

# Token flag columns.
(WORD, CAP, DIGIT, DATE, NUMBER, STOP, QTERM, HEAD, COMMA, OPEN, CLOSE, CONJ, PLACE, BY, OF, NAMING, ARTICLE) = range(
    17
)
(LOWER, CLAUSE, ING, ED, LY, PLURAL, QUOTE, BREAK, FIRST_TERM, LAST_TERM, ASKED, STRONG, PAIRED) = range(17, 30)
FLAGS = 30


@dataclass(frozen=True)
class Tokens:
    text: str
    starts: np.ndarray  # character offsets of each token
    ends: np.ndarray
    flags: np.ndarray  # (tokens, FLAGS) of 0/1
    context: np.ndarray  # each token's position in CONTEXT_WORDS, -1 if none
    lower: list[str]


@dataclass(frozen=True)
class Asked:
    """What the question tells about its answer's place, read once per question."""

    head: str  # stem of the noun of "what/which X" ("" if none)
    aux: bool  # the question word is followed by an auxiliary ("What did ...", "Who was ...")
    focus: re.Pattern[str] | None  # the number before X of "how many X"
    first: str  # stem of the first term after the question word (and its noun)
    last: str  # stem of the question's last term
    words: frozenset[str]  # the question's lower-cased words, function words too
    pairs: frozenset[tuple[str, str]]  # consecutive terms of the question


def tokenize(sentence: str, question: str, question_terms: set[str]) -> Tokens:
    """The sentence's tokens with their flags (one pass; the typed patterns run once over the whole sentence)."""
    date, number = _pattern_mask(sentence, "date"), _pattern_mask(sentence, "quantity")
    asked = read_question(question)
    starts, ends, rows, lower, keys = [], [], [], [], []
    for match in TOKEN.finditer(sentence):
        a, b = match.span()
        word = match.group()
        low = word.lower()
        starts.append(a)
        ends.append(b)
        lower.append(low)
        row, stems = _flags(word, low, date[a], 1 in number[a:b], question_terms, asked)
        rows.append(row)
        keys.append(stems)
    flags = np.asarray(rows, dtype=np.float64).reshape(len(rows), FLAGS)
    _mark_pairs(flags, keys, asked.pairs)
    context = np.asarray([_CONTEXT_ID.get(w, -1) for w in lower], dtype=np.int64)
    return Tokens(sentence, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), flags, context, lower)


def _mark_pairs(flags: np.ndarray, keys: list[list[str]], pairs: frozenset[tuple[str, str]]) -> None:
    """Flag the question words that stand next to each other (past function words) in both sentence and question."""
    previous = -1
    for i, stems in enumerate(keys):
        if not stems:
            continue
        if previous >= 0 and (keys[previous][-1], stems[0]) in pairs:
            flags[previous, PAIRED] = flags[i, PAIRED] = 1.0
        previous = i


def _flags(
    word: str, low: str, date: int, number: bool, terms: set[str], asked: Asked
) -> tuple[tuple[bool | int, ...], list[str]]:
    alnum = word[0].isalnum()
    stop = alnum and (is_stop(low) or low in FUNCTION) and not number
    content = alnum and not stop
    stems = [stem(p) for p in PARTS.split(low) if p] if content else []
    lowered = content and word[0].islower()
    asked_word = any(s in terms for s in stems)
    return (
        alnum,
        alnum and word[0].isupper(),
        alnum and word[0].isdigit(),
        date,
        number or word in CURRENCY or low in PERCENT,
        stop,
        asked_word,
        bool(asked.head) and asked.head in stems,
        word == ",",
        word in "([“",
        word in ")]”",
        low in ("and", "or"),
        low in PLACE_WORDS,
        low == "by",
        low == "of",
        low in NAMING_WORDS,
        low in ("the", "a", "an"),
        lowered,
        low in CLAUSE_WORDS,
        lowered and low.endswith("ing"),
        lowered and low.endswith("ed"),
        lowered and low.endswith("ly"),
        lowered and low.endswith("s") and not low.endswith("ss"),
        word == '"',
        word in BREAKS,
        asked.first in stems,
        asked.last in stems,
        low in asked.words,
        asked_word and not lowered,
        False,
    ), stems


def _pattern_mask(sentence: str, kind: str) -> bytearray:
    """1 at every character inside a match of `question.ANSWER_PATTERNS[kind]` (a lone lower-case "may" or
    "march" is a verb, not a month)."""
    mask = bytearray(len(sentence))
    for match in ANSWER_PATTERNS[kind].finditer(sentence):
        found = match.group()
        if kind == "date" and found[0].islower() and found.lower() in MONTH_WORDS:
            continue
        mask[match.start() : match.end()] = b"\x01" * len(found)
    return mask


@lru_cache(maxsize=4096)
def read_question(question: str) -> Asked:
    """The question's head noun, shape and neighbouring terms (cached: a question is asked of several sentences)."""
    head_match, aux_match, wh = WH_HEAD.search(question), WH_AUX.search(question), WH.search(question)
    word = head_match.group(1).lower() if head_match else ""
    head = "" if not word or is_stop(word) or word in FUNCTION or word in AUX else stem(word)
    after = [t for t in terms(question[wh.end() :] if wh else question) if t != head]
    every = terms(question)
    return Asked(
        head,
        bool(aux_match and aux_match.group(1).lower() in AUX),
        focus_pattern(question),
        after[0] if after else "",
        every[-1] if every else "",
        frozenset(TOKEN.findall(question.lower())),
        frozenset(zip(every, every[1:], strict=False)),
    )
