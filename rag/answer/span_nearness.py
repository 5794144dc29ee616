"""Where a candidate span sits against the question: distances to the nearest question words on each side, the
shares of question words near it, the question words' neighbours and a "how many X" focus.
"""

from __future__ import annotations

import re

import numpy as np

from .span_tokens import (
    ASKED,
    CAP,
    DIGIT,
    FIRST_TERM,
    FLAGS,
    LAST_TERM,
    LOWER,
    PAIRED,
    QTERM,
    STOP,
    STRONG,
    WORD,
    Tokens,
    read_question,
)


def nearness(tokens: Tokens, question: str, first: np.ndarray, last: np.ndarray) -> list[np.ndarray]:
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
