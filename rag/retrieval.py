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

from . import dense
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
    index: Index,
    query_vector: np.ndarray,
    terms: list[str],
    k: int,
    weights: Weights = Weights(),
    fuse: Callable[..., dict[int, float]] | None = None,
) -> list[Hit]:
    """The `k` best chunks for a question, best first; `fuse` defaults to `fuse_convex`."""
    pool = max(CANDIDATES, k)
    _, rows = dense.search(index.dense, query_vector, min(pool, len(index.chunks)))
    lexical = dict(index.lexical.search(terms, pool))
    candidates = np.union1d(rows[rows >= 0], np.fromiter(lexical, np.int64, len(lexical)))
    if not len(candidates):
        return []
    keys = candidates.tolist()
    dense_scores = dict(zip(keys, (index.chunk_vectors(candidates) @ query_vector).tolist(), strict=True))
    sentence = dict(zip(keys, best_sentence_scores(index, candidates, query_vector).tolist(), strict=True))
    lex = {r: lexical.get(r, 0.0) for r in keys}
    fused = (fuse or fuse_convex)([dense_scores, sentence, lex], [weights.dense, weights.sentence, weights.lexical])
    best = sorted(fused, key=lambda r: (-fused[r], r))[:k]
    return [Hit(r, fused[r], dense_scores[r], sentence[r], lex[r]) for r in best]


def search_lexical(index: Index, terms: list[str], k: int) -> list[Hit]:
    """The `k` best chunks by BM25 alone, scores divided by the best one's (for a question the model cannot read:
    only the names and numbers it shares with the text can find anything)."""
    found = index.lexical.search(terms, k)
    top = found[0][1] if found else 1.0
    return [Hit(row, score / top, 0.0, 0.0, score) for row, score in found]


def best_sentence_scores(index: Index, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
    """For each chunk row, the cosine of the question and the chunk's closest sentence (one matrix product)."""
    counts = index.chunk_sentence_count[rows]
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gathered = np.repeat(index.chunk_first_sentence[rows] - offsets, counts) + np.arange(counts.sum())
    cosines = index.sentence_vectors[gathered].astype(np.float32) @ query_vector
    return np.maximum.reduceat(cosines, offsets)


def normalize_minmax(scores: Mapping[int, float]) -> dict[int, float]:
    lo, hi = min(scores.values(), default=0.0), max(scores.values(), default=0.0)
    return {r: ((s - lo) / (hi - lo) if hi > lo else 0.0) for r, s in scores.items()}


def fuse_convex(signals: list[Mapping[int, float]], weights: list[float]) -> dict[int, float]:
    """Weighted sum of min-max normalized signals; weights sum to one, so the result is in [0, 1]."""
    total = sum(weights) or 1.0
    out: dict[int, float] = {}
    for signal, weight in zip(signals, weights, strict=True):
        for r, s in normalize_minmax(signal).items():
            out[r] = out.get(r, 0.0) + s * weight / total
    return out


def fuse_rrf(signals: list[Mapping[int, float]], weights: list[float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank)."""
    out: dict[int, float] = {}
    for signal, weight in zip(signals, weights, strict=True):
        for rank, r in enumerate(sorted(signal, key=lambda r: -signal[r]), start=1):
            out[r] = out.get(r, 0.0) + weight / (k + rank)
    return out
