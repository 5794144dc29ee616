"""Dense and lexical search and their fusion.

Each side proposes candidates (FAISS nearest chunks, BM25 best chunks); every candidate is then scored on three
signals: cosine of the question to the chunk, cosine to the chunk's best sentence (sentence vectors are stored at
index time, so this costs a few dot products), and BM25. The fusion functions are pure functions over
`{row: score}` maps, testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .store import Index

CANDIDATES = 50  # per side; fusion reorders this pool


@dataclass(frozen=True)
class Hit:
    row: int  # position of the chunk in the index
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
    index: Index, query_vector: np.ndarray, terms: list[str], k: int,
    weights: Weights = Weights(), fuse: Callable[..., dict[int, float]] | None = None,
) -> list[Hit]:
    """The `k` best chunks for a question, best first; `fuse` defaults to `fuse_convex`."""
    pool = max(CANDIDATES, k)
    scores, rows = index.dense.search(query_vector.reshape(1, -1).astype(np.float32), min(pool, index.dense.ntotal))
    lexical = dict(index.lexical.search(terms, pool))
    candidates = sorted({int(r) for r in rows[0] if r >= 0} | set(lexical))
    if not candidates:
        return []
    dense = dict(zip(candidates, (index.chunk_vectors(candidates) @ query_vector).tolist()))
    sentence = {r: best_sentence_score(index, r, query_vector) for r in candidates}
    lex = {r: lexical.get(r, 0.0) for r in candidates}
    fused = (fuse or fuse_convex)([dense, sentence, lex], [weights.dense, weights.sentence, weights.lexical])
    best = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    return [Hit(r, fused[r], dense[r], sentence[r], lex[r]) for r in best]


def best_sentence_score(index: Index, row: int, query_vector: np.ndarray) -> float:
    rows = index.sentence_rows(index.chunks[row])
    return float(np.max(index.sentence_vectors[rows.start : rows.stop] @ query_vector))


def normalize_max(scores: Mapping[int, float]) -> dict[int, float]:
    """Scores divided by the best one (min-max would give the worst candidate 0 even when it is close)."""
    top = max(scores.values(), default=0.0)
    return {r: (s / top if top > 0 else 0.0) for r, s in scores.items()}


def normalize_minmax(scores: Mapping[int, float]) -> dict[int, float]:
    lo, hi = min(scores.values(), default=0.0), max(scores.values(), default=0.0)
    return {r: ((s - lo) / (hi - lo) if hi > lo else 0.0) for r, s in scores.items()}


def fuse_convex(signals: list[Mapping[int, float]], weights: list[float]) -> dict[int, float]:
    """Weighted sum of min-max normalized signals; weights sum to one, so the result is in [0, 1]."""
    total = sum(weights) or 1.0
    out: dict[int, float] = {}
    for signal, weight in zip(signals, weights):
        for r, s in normalize_minmax(signal).items():
            out[r] = out.get(r, 0.0) + s * weight / total
    return out


def fuse_rrf(signals: list[Mapping[int, float]], weights: list[float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank)."""
    out: dict[int, float] = {}
    for signal, weight in zip(signals, weights):
        for rank, r in enumerate(sorted(signal, key=lambda r: -signal[r]), start=1):
            out[r] = out.get(r, 0.0) + weight / (k + rank)
    return out
