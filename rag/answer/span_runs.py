"""The typed runs of a sentence's tokens that a candidate span may match exactly: dates, numbers, numbers with
their unit and capitalized names (joined across their glue words), as (token, length - 1) grids up to `MAX_TOKENS`.
"""

from __future__ import annotations

import numpy as np

from .span_tokens import CAP, DATE, DIGIT, NUMBER, STOP, WORD, Tokens
from .span_words import CENTURY, GLUE, NUMBER_GLUE, PERCENT

MAX_TOKENS = 8  # longer SQuAD answers are rare (about 3% of the tune split's) and multiply the candidates


def run_grids(tokens: Tokens) -> dict[str, np.ndarray]:
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
