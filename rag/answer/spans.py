"""The exact answer inside the answer sentence: a date, a number with its unit, a name, a short noun phrase.

The classic SQuAD baseline (Rajpurkar et al. 2016, section 5) without a parser: every run of up to `MAX_TOKENS`
tokens that neither starts nor ends on a function word or punctuation is a candidate, and a linear model scores it
from its type against the question's form (a date for "when", a number for "how many", a capitalized run for
"who"), how many of its words the question already has (answers rarely repeat the question), how near it sits to
the question's words, and its shape (length, delimiters, the words on either side). The weights are a softmax over
each question's candidates fitted on SQuAD 1.1 questions by `bench/train_spans.py` (`span_weights.json`); the
answer is the candidate with the highest expected token F1 against the best few (minimum Bayes risk).

English only. About 0.12 ms a call (median over 400 calls on 26-34-word sentences, `bench/train_spans.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorrupt
from ..question import ANSWER_PATTERNS, FORMS, MONTHS, WH, focus_pattern
from ..words import is_stop, stem, terms

WEIGHTS = Path(__file__).with_name("span_weights.json")
MAX_TOKENS = 8  # longer SQuAD answers are rare (about 3% of the tune split's) and multiply the candidates
TOP = 16  # candidates weighed against each other by the expected-F1 choice
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
_CONTEXT_ID = {w: i for i, w in enumerate(CONTEXT_WORDS)}
WH_HEAD = re.compile(r"\b(?:what|which|whose)\s+(?:(?:kind|type|sort|form|part|name|brand)s?\s+of\s+)?(\w+)", re.I)
WH_AUX = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b(?:\s+\w+)?\s+(\w+)", re.I)

# Token flag columns.
(WORD, CAP, DIGIT, DATE, NUMBER, STOP, QTERM, HEAD, COMMA, OPEN, CLOSE, CONJ, PLACE, BY, OF, NAMING, ARTICLE) = range(
    17
)
(LOWER, CLAUSE, ING, ED, LY, PLURAL, QUOTE, BREAK, FIRST_TERM, LAST_TERM, ASKED, STRONG, PAIRED) = range(17, 30)
FLAGS = 30

TYPED = ("date_any", "date_exact", "num_any", "num_exact", "num_unit", "cap_share", "cap_exact", "cap_partial")
SHAPE = ("left_place", "left_by", "left_naming", "left_of", "whole_unit", "q_share")
LENGTHS = ("len1", "len2", "len3", "len4_5", "len6_8")
WORDS = (
    "q_any", "q_all", "head_in", "head_last", "head_after", "cap_first", "cap_last", "commas_in", "conj_in",
    "clause_in", "stop_share", "last_ing", "last_ed", "last_ly", "last_plural", "first_ing", "first_ed", "first_ly",
)  # fmt: skip
SIDES = (
    "left_start", "left_delim", "left_cap", "left_lower", "left_digit", "left_q", "left_q2",
    "right_end", "right_delim", "right_cap", "right_lower", "right_digit", "right_q", "right_q2", "paren",
)  # fmt: skip
NEARNESS = (
    "dist_min", "dist_left", "dist_right", "content_left", "content_right", "no_q_left", "no_q_right",
    "q_near_left", "q_near_right", "q_wide_left", "q_wide_right", "q_left_share", "q_left_share_aux",
    "position", "focus_start", "focus_exact", "left_q_first", "left_q_last", "right_q_first", "right_q_last",
    "left_asked", "right_asked", "strong_left", "strong_right", "paired_left", "paired_right", "between",
    "between_close", "content1_left", "content1_right", "content2_left", "content2_right", "content4_left",
    "content4_right", "content8_left", "content8_right",
)  # fmt: skip
LEXICAL = tuple(f"left={w}" for w in CONTEXT_WORDS) + tuple(f"right={w}" for w in CONTEXT_WORDS)
CROSSED = TYPED + SHAPE + LENGTHS  # each also crossed with the question's form
BASE = CROSSED + WORDS + SIDES + NEARNESS + LEXICAL
NAMES = BASE + tuple(f"{form}*{name}" for form in FORMS for name in CROSSED)


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


@dataclass(frozen=True)
class Candidates:
    """Every candidate span of a sentence as token ranges [first, last], with its feature rows over `BASE`."""

    first: np.ndarray
    last: np.ndarray
    features: np.ndarray
    words: np.ndarray  # cumulative count of word tokens, for the pairwise overlap of the expected-F1 choice


@dataclass(frozen=True)
class SpanModel:
    base: np.ndarray  # weights over `BASE`
    crossed: np.ndarray  # (len(FORMS), len(CROSSED))
    threshold: float  # below this expected F1 the span is None


def exact_span(
    question: str, form: str, sentence: str, question_terms: set[str], language: str | None = "en"
) -> tuple[int, int] | None:
    """The short exact answer inside `sentence`.

    Args:
        question: the question as asked; `form` is `rag.question.question_form(question)`.
        question_terms: the question's stemmed terms (`rag.words.terms(question)`).
        language: the question's language; the rules are English, so any other gives None.

    Returns:
        (start, end) character offsets into `sentence`, or None when no span fits.
    """
    if language != "en" or form not in FORMS:
        return None
    tokens = tokenize(sentence, question, question_terms)
    candidates = candidate_spans(tokens, question)
    if not len(candidates.first):
        return None
    model = load_model()
    best, expected = choose(candidates, score(model, candidates.features, FORMS.index(form)))
    if expected < model.threshold:
        return None
    return int(tokens.starts[candidates.first[best]]), int(tokens.ends[candidates.last[best]])


def score(model: SpanModel, features: np.ndarray, form: int) -> np.ndarray:
    """Each candidate's logit: the base weights, plus the crossed ones of the question's form."""
    return features @ model.base + features[:, : len(CROSSED)] @ model.crossed[form]


def choose(candidates: Candidates, logits: np.ndarray) -> tuple[int, float]:
    """The candidate with the highest expected token F1 against the `TOP` best, weighted by their probabilities."""
    top = np.argsort(-logits)[:TOP]
    p = np.exp(logits[top] - logits[top[0]])
    p /= p.sum()
    first, last, words = candidates.first[top], candidates.last[top], candidates.words
    lo, hi = np.maximum.outer(first, first), np.minimum.outer(last, last)
    overlap = np.where(hi >= lo, words[np.maximum(hi, lo) + 1] - words[lo], 0)
    size = words[last + 1] - words[first]
    expected = (2 * overlap / np.add.outer(size, size)) @ p
    best = int(np.argmax(expected))
    return int(top[best]), float(expected[best])


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


def candidate_spans(tokens: Tokens, question: str) -> Candidates:
    """All candidate spans of the sentence and their features."""
    f, n = tokens.flags, len(tokens.lower)
    sums = np.vstack((np.zeros(FLAGS), np.cumsum(f, axis=0)))
    currency = np.asarray([w in CURRENCY for w in tokens.lower], dtype=bool)
    percent = np.asarray([w == "%" for w in tokens.lower], dtype=bool)
    content = (f[:, WORD] > 0) & (f[:, STOP] == 0)
    first = np.repeat(np.arange(n), MAX_TOKENS)
    last = first + np.tile(np.arange(MAX_TOKENS), n)
    first, last = first[last < n], last[last < n]
    inside = sums[last + 1] - sums[first]
    keep = (
        (content | currency)[first]
        & (content | percent)[last]
        & (inside[:, OPEN] == inside[:, CLOSE])
        & (inside[:, QUOTE] % 2 == 0)
        & (inside[:, BREAK] == 0)
    )
    first, last, inside = first[keep], last[keep], inside[keep]
    features = _features(tokens, question, first, last, inside) if len(first) else np.zeros((0, len(BASE)))
    return Candidates(first, last, features, sums[:, WORD])


def _features(tokens: Tokens, question: str, first: np.ndarray, last: np.ndarray, inside: np.ndarray) -> np.ndarray:
    f = tokens.flags
    words = np.maximum(inside[:, WORD], 1.0)
    padded = np.vstack((np.zeros(FLAGS), f, np.zeros(FLAGS)))  # row i + 1 is token i
    left, right = padded[first], padded[last + 2]
    sides = _sides(tokens, first, last, left, right, padded)
    typed = _typed(inside, words, _run_grids(tokens), first, last - first + 1)
    shape = [left[:, PLACE], left[:, BY], left[:, NAMING], left[:, OF], sides[0] & sides[1], inside[:, QTERM] / words]
    lengths = [words == 1, words == 2, words == 3, (words >= 4) & (words <= 5), words >= 6]
    columns = typed + shape + lengths + _words(f, inside, words, right, first, last) + sides[2:]
    columns += _nearness(tokens, question, first, last) + _lexical(tokens, first, last)
    return np.column_stack(columns)


def _typed(
    inside: np.ndarray, words: np.ndarray, grids: dict[str, np.ndarray], first: np.ndarray, length: np.ndarray
) -> list[np.ndarray]:
    at = (first, length - 1)
    member = grids["cap_member"]
    exact_cap = grids["cap"][at]
    partial = (member[first] == member[first + length - 1]) & (member[first] >= 0)
    return [
        inside[:, DATE] > 0,
        grids["date"][at],
        inside[:, NUMBER] > 0,
        grids["number"][at],
        grids["unit"][at],
        inside[:, CAP] / words,
        exact_cap,
        partial & ~exact_cap,
    ]


def _words(
    f: np.ndarray, inside: np.ndarray, words: np.ndarray, right: np.ndarray, first: np.ndarray, last: np.ndarray
) -> list[np.ndarray]:
    """What the span's own words are: question words, the question's head noun, capitals, inner clause words."""
    return [
        inside[:, QTERM] > 0,
        inside[:, QTERM] >= words,
        inside[:, HEAD] > 0,
        f[last, HEAD],
        right[:, HEAD],
        f[first, CAP],
        f[last, CAP],
        inside[:, COMMA] > 0,
        inside[:, CONJ] > 0,
        inside[:, CLAUSE] > 0,
        inside[:, STOP] / words,
        f[last, ING],
        f[last, ED],
        f[last, LY],
        f[last, PLURAL],
        f[first, ING],
        f[first, ED],
        f[first, LY],
    ]


def _sides(
    tokens: Tokens, first: np.ndarray, last: np.ndarray, left: np.ndarray, right: np.ndarray, padded: np.ndarray
) -> list[np.ndarray]:
    """The tokens on either side: delimiters, word classes, question words (the first pair of columns: the delimited
    start and end, for the whole-unit feature)."""
    n = len(tokens.lower)
    left2, right2 = padded[np.maximum(first - 1, 0)], padded[np.minimum(last + 3, n + 1)]
    left_delim = np.isin(first - 1, _positions(tokens, DELIM_LEFT))
    right_delim = np.isin(last + 1, _positions(tokens, DELIM_RIGHT))
    return [
        (first == 0) | left_delim,
        (last == n - 1) | right_delim,
        first == 0,
        left_delim,
        left[:, CAP] * (1 - left[:, STOP]),
        left[:, LOWER],
        left[:, DIGIT],
        left[:, QTERM],
        np.maximum(left[:, QTERM], left2[:, QTERM]),
        last == n - 1,
        right_delim,
        right[:, CAP] * (1 - right[:, STOP]),
        right[:, LOWER],
        right[:, DIGIT],
        right[:, QTERM],
        np.maximum(right[:, QTERM], right2[:, QTERM]),
        left[:, OPEN] * right[:, CLOSE],
    ]


def _positions(tokens: Tokens, marks: frozenset[str]) -> np.ndarray:
    return np.asarray([i for i, w in enumerate(tokens.lower) if w in marks], dtype=np.int64)


def _nearness(tokens: Tokens, question: str, first: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """Where the span sits against the question's words in the sentence, and against a "how many X" focus."""
    f, n = tokens.flags, len(tokens.lower)
    asked = read_question(question)
    focus_first, focus_last = _focus_tokens(tokens, asked.focus)
    before, after = _nearest(f[:, QTERM] > 0, first, last)
    padded = np.vstack((np.zeros(FLAGS), f, np.zeros(FLAGS)))  # row i + 1 is token i
    left, right = padded[first], padded[last + 2]
    return [
        *_distances(f, first, last, before, after),
        *_shares(f[:, QTERM] > 0, first, last, asked.aux),
        first / max(n - 1, 1),
        first == focus_first,
        (first == focus_first) & (last == focus_last),
        padded[before + 1, FIRST_TERM],
        padded[before + 1, LAST_TERM],
        padded[after + 1, FIRST_TERM],
        padded[after + 1, LAST_TERM],
        left[:, ASKED],
        right[:, ASKED],
        *_window(f[:, STRONG], first, last, 3),
        *_window(f[:, PAIRED], first, last, 2),
        (before >= first - 3) & (before >= 0) & (after <= last + 3),
        (before == first - 1) & (after == last + 1),
        *_content_windows(f, first, last),
    ]


def _content_windows(f: np.ndarray, first: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """Shares of the 1, 2, 4 and 8 content words on each side of the span that are question words."""
    content = (f[:, WORD] > 0) & (f[:, STOP] == 0)
    order = np.concatenate(([0], np.cumsum(content)))  # content words before token i
    asked = np.concatenate(([0.0], np.cumsum(f[content, QTERM])))
    m = len(asked) - 1
    before, after = order[first], order[last + 1]
    out = []
    for k in (1, 2, 4, 8):
        out.append((asked[before] - asked[np.maximum(before - k, 0)]) / k)
        out.append((asked[np.minimum(after + k, m)] - asked[after]) / k)
    return out


def _window(column: np.ndarray, first: np.ndarray, last: np.ndarray, k: int) -> list[np.ndarray]:
    """Whether a flagged token is within `k` tokens before the span, and after it."""
    counts = np.concatenate(([0.0], np.cumsum(column)))
    n = len(column)
    before = counts[first] - counts[np.maximum(first - k, 0)]
    after = counts[np.minimum(last + 1 + k, n)] - counts[last + 1]
    return [before > 0, after > 0]


def _nearest(q: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest question word before each span and after it (-1 and n: none)."""
    n, index = len(q), np.arange(len(q))
    before = np.maximum.accumulate(np.where(q, index, -1))[np.maximum(first - 1, 0)]
    after = np.minimum.accumulate(np.where(q, index, n)[::-1])[::-1][np.minimum(last + 1, n - 1)]
    return np.where(first > 0, before, -1), np.where(last < n - 1, after, n)


def _distances(
    f: np.ndarray, first: np.ndarray, last: np.ndarray, before: np.ndarray, after: np.ndarray
) -> list[np.ndarray]:
    """Log distances from the span to the nearest question word on each side, in tokens and in content words,
    and whether there is one."""
    n = len(f)
    content = np.concatenate(([0.0], np.cumsum(f[:, LOWER] + f[:, CAP] * (1 - f[:, STOP]) + f[:, DIGIT] > 0)))
    has_left, has_right = before >= 0, after < n
    gap_left = np.where(has_left, first - before, n + 1)
    gap_right = np.where(has_right, after - last, n + 1)
    words_left = np.where(has_left, content[first] - content[np.maximum(before, 0) + 1], n)
    words_right = np.where(has_right, content[np.minimum(after, n)] - content[last + 1], n)
    return [
        np.log1p(np.minimum(gap_left, gap_right)),
        np.log1p(gap_left),
        np.log1p(gap_right),
        np.log1p(words_left),
        np.log1p(words_right),
        ~has_left,
        ~has_right,
    ]


def _shares(q: np.ndarray, first: np.ndarray, last: np.ndarray, aux: bool) -> list[np.ndarray]:
    """Shares of the sentence's question words within 3 and 8 tokens of the span on each side, and left of it."""
    counts = np.concatenate(([0.0], np.cumsum(q)))
    total, n = max(float(counts[-1]), 1.0), len(q)
    near = [(counts[first] - counts[np.maximum(first - k, 0)]) / total for k in (3, 8)]
    far = [(counts[np.minimum(last + 1 + k, n)] - counts[last + 1]) / total for k in (3, 8)]
    outside = counts[-1] - (counts[last + 1] - counts[first])
    share_left = counts[first] / np.maximum(outside, 1.0)
    return [near[0], far[0], near[1], far[1], share_left, share_left * aux]


def _focus_tokens(tokens: Tokens, focus: re.Pattern[str] | None) -> tuple[int, int]:
    """First and last token of the number of a "how many X" question's focus match ("2,718" of "2,718 Ukrainians")."""
    match = focus.search(tokens.text) if focus is not None else None
    if match is None:
        return -1, -1
    a, b = match.span(1)
    return int(np.searchsorted(tokens.starts, a)), int(np.searchsorted(tokens.ends, b))


def _lexical(tokens: Tokens, first: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
    """One-hot of the word right before and right after the span, over `CONTEXT_WORDS`."""
    ids = np.concatenate(([-1], tokens.context, [-1]))
    vocabulary = np.arange(len(CONTEXT_WORDS))
    before = ids[first][:, None] == vocabulary
    after = ids[last + 2][:, None] == vocabulary
    return list(before.T) + list(after.T)


def _run_grids(tokens: Tokens) -> dict[str, np.ndarray]:
    """(token, length - 1) grids marking the typed runs: dates, numbers, numbers with their unit, capitalized runs;
    and for each token the capitalized run it belongs to (-1: none)."""
    n = len(tokens.lower)
    grids = {k: np.zeros((n, MAX_TOKENS), dtype=bool) for k in ("date", "number", "unit", "cap")}
    member = np.full(n, -1)
    for kind, runs in (("date", _date_runs(tokens)), ("number", _number_runs(tokens)), ("cap", _cap_runs(tokens))):
        for a, b in runs:
            if b - a < MAX_TOKENS:
                grids[kind][a, b - a] = True
            if kind == "cap":
                member[a : b + 1] = a
            unit = b + 1
            if kind == "number" and unit < n and unit - a < MAX_TOKENS and _is_unit(tokens, unit):
                grids["unit"][a, unit - a] = True
    grids["cap_member"] = member  # type: ignore[assignment]  # one row a token, not a grid
    return grids


def _is_unit(tokens: Tokens, i: int) -> bool:
    f = tokens.flags[i]
    return bool(f[WORD] and not f[STOP] and not f[NUMBER]) or tokens.lower[i] in PERCENT


def _runs(marked: list[bool], glue: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of marked tokens, joined across glue tokens that sit between two marked ones."""
    runs: list[tuple[int, int]] = []
    i, n = 0, len(marked)
    while i < n:
        if not marked[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and (marked[j + 1] or (glue[j + 1] and j + 2 < n and marked[j + 2])):
            j += 1 if marked[j + 1] else 2
        runs.append((i, j))
        i = j + 1
    return runs


def _date_runs(tokens: Tokens) -> list[tuple[int, int]]:
    f, n = tokens.flags, len(tokens.lower)
    century = [i + 1 < n and tokens.lower[i + 1] in CENTURY and bool(f[i, DIGIT]) for i in range(n)]
    runs = _runs([bool(f[i, DATE]) or century[i] for i in range(n)], [w in (",", "of") for w in tokens.lower])
    return [(a, b) for a, b in runs if not f[a, STOP]]


def _number_runs(tokens: Tokens) -> list[tuple[int, int]]:
    return _runs([bool(x) for x in tokens.flags[:, NUMBER]], [w in NUMBER_GLUE for w in tokens.lower])


def _cap_runs(tokens: Tokens) -> list[tuple[int, int]]:
    f = tokens.flags
    marked = [
        bool(f[i, CAP] and not f[i, STOP]) or (i > 0 and bool(f[i, DIGIT] and f[i - 1, CAP])) for i in range(len(f))
    ]
    return _runs(marked, [w in GLUE for w in tokens.lower])


@lru_cache(maxsize=1)
def load_model(path: Path = WEIGHTS) -> SpanModel:
    """The fitted weights; refuses a file whose feature names are not this module's."""
    data: dict[str, Any] = json.loads(path.read_text())
    names = tuple(data["names"])
    if names != NAMES:
        missing, extra = sorted(set(NAMES) - set(names)), sorted(set(names) - set(NAMES))
        raise IndexCorrupt(
            f"{path} was fitted for other span features (missing {missing[:5]}, unknown {extra[:5]}); "
            "refit with: .venv/bin/python bench/train_spans.py"
        )
    coef = np.asarray(data["coef"], dtype=np.float64)
    crossed = coef[len(BASE) :].reshape(len(FORMS), len(CROSSED))
    return SpanModel(coef[: len(BASE)], crossed, float(data["threshold"]))
