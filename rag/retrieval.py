"""Dense and lexical search and their fusion, over any engine.

Each side proposes candidates (the nearest chunks by vector, the best by BM25); every candidate is then scored on
three signals: cosine of the question to the chunk, cosine to the chunk's best sentence (sentence vectors are
stored at index time, so this costs a few dot products), and BM25. The fusion functions are pure functions over
`{chunk id: score}` maps, testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .engines import Engine, Passages

K = TypeVar("K")  # what fusion scores: chunk ids here; any key in tests and benchmarks
CANDIDATES = 50  # per side; fusion reorders this pool


@dataclass(frozen=True)
class Hit:
    id: str  # the chunk's id
    score: float  # fused, in [0, 1]
    dense: float  # cosine of question and chunk
    sentence: float  # cosine of question and the chunk's closest sentence
    lexical: float  # BM25 score


@dataclass(frozen=True)
class Weights:
    """Weights of the convex fusion of the three signals; see `fuse_convex`."""

    dense: float = 0.3
    sentence: float = 0.3
    lexical: float = 0.4


def search(
    engine: Engine,
    query_vector: np.ndarray,
    terms: list[str],
    k: int,
    weights: Weights = Weights(),
    fuse: Callable[..., dict[str, float]] | None = None,
) -> tuple[list[Hit], Passages]:
    """The `k` best chunks for a question, best first, and their passages; `fuse` defaults to `fuse_convex`."""
    pool = max(CANDIDATES, k)
    lexical = dict(engine.search_lexical(terms, pool))
    ids = list(dict.fromkeys([i for i, _ in engine.search_dense(query_vector, pool)] + list(lexical)))
    found = engine.fetch(ids)
    ids = found.ids  # those still held: a shared engine may have lost one to another process's build meanwhile
    if not ids:
        return [], found.passages([])
    dense_scores = dict(zip(ids, (found.vectors @ query_vector).tolist(), strict=True))
    sentence = dict(zip(ids, found.best_sentence_scores(query_vector).tolist(), strict=True))
    lex = {i: lexical.get(i, 0.0) for i in ids}
    fused = (fuse or fuse_convex)([dense_scores, sentence, lex], [weights.dense, weights.sentence, weights.lexical])
    best = sorted(range(len(ids)), key=lambda p: (-fused[ids[p]], ids[p]))[:k]
    hits = [Hit(ids[p], fused[ids[p]], dense_scores[ids[p]], sentence[ids[p]], lex[ids[p]]) for p in best]
    return hits, found.passages(best)


def search_lexical(engine: Engine, terms: list[str], k: int) -> tuple[list[Hit], Passages]:
    """The `k` best chunks by BM25 alone, scores divided by the best one's (for a question the model cannot read:
    only the names and numbers it shares with the text can find anything), and their passages."""
    found = engine.search_lexical(terms, k)
    top = found[0][1] if found else 1.0
    fetched = engine.fetch([i for i, _ in found])
    held = set(fetched.ids)
    hits = [Hit(i, score / top, 0.0, 0.0, score) for i, score in found if i in held]
    return hits, fetched.passages(range(len(hits)))


def normalize_minmax(scores: Mapping[K, float]) -> dict[K, float]:
    lo, hi = min(scores.values(), default=0.0), max(scores.values(), default=0.0)
    return {r: ((s - lo) / (hi - lo) if hi > lo else 0.0) for r, s in scores.items()}


def fuse_convex(signals: list[Mapping[K, float]], weights: list[float]) -> dict[K, float]:
    """Weighted sum of min-max normalized signals; weights sum to one, so the result is in [0, 1]."""
    total = sum(weights) or 1.0
    out: dict[K, float] = {}
    for signal, weight in zip(signals, weights, strict=True):
        for r, s in normalize_minmax(signal).items():
            out[r] = out.get(r, 0.0) + s * weight / total
    return out


def fuse_rrf(signals: list[Mapping[K, float]], weights: list[float], k: int = 60) -> dict[K, float]:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank)."""
    out: dict[K, float] = {}
    for signal, weight in zip(signals, weights, strict=True):
        for rank, r in enumerate(sorted(signal, key=lambda r: -signal[r]), start=1):
            out[r] = out.get(r, 0.0) + weight / (k + rank)
    return out
