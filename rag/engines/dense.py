"""The dense side's FAISS structure, chosen by size: exact inner-product search for small indexes, HNSW (a graph,
approximate) from `EXACT_LIMIT` vectors on, where exact search would cost tens of milliseconds a question.

The choice and its parameters are recorded in the manifest ("dense"), so a loaded index searches the way it was
built. The chunk vectors themselves are always kept as a NumPy file beside it (memory-mapped), which the exact
structure is rebuilt from at load time and fusion reads candidates' vectors from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

EXACT_LIMIT = 5_000  # exact search of 10k vectors costs ~0.9 ms a question here; HNSW ~0.1 ms
HNSW = {"M": 32, "efConstruction": 80}


def ef_search(n: int) -> int:
    """How wide HNSW searches: measured on 100k and 1M vectors (bench/scale.py), efSearch 128 keeps recall@10
    at 0.97 up to a few hundred thousand vectors, and 256 keeps it at 0.96 at a million (about 1.8 ms)."""
    return 128 if n < 300_000 else 256


FILE = "dense.faiss"


@dataclass(frozen=True)
class Structure:
    """A FAISS index and the parameters that describe it (recorded in the manifest)."""

    index: faiss.Index
    params: dict[str, Any]


def build(vectors: np.ndarray, exact_limit: int = EXACT_LIMIT) -> Structure:
    """A search structure over `vectors` (normalized float32 rows)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dimension = vectors.shape
    if n < exact_limit:
        return Structure(_flat(vectors, dimension), {"type": "flat"})
    index = faiss.IndexHNSWFlat(dimension, HNSW["M"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW["efConstruction"]
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is parallel; single queries are not (see `search`)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index.hnsw.efSearch = ef_search(n)
    return Structure(index, {"type": "hnsw", **HNSW, "efSearch": index.hnsw.efSearch})


def save(structure: Structure, folder: Path) -> None:
    if structure.params["type"] != "flat":  # a flat index is its vectors: nothing more to write
        faiss.write_index(structure.index, str(folder / FILE))


def load(folder: Path, params: dict[str, Any], vectors: np.ndarray) -> Structure:
    if params["type"] == "flat":
        return Structure(_flat(vectors, vectors.shape[1]), params)
    index = faiss.read_index(str(folder / FILE))
    faiss.downcast_index(index).hnsw.efSearch = int(params["efSearch"])  # type: ignore[attr-defined]
    return Structure(index, params)


def search(structure: Structure, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the `k` nearest rows to one query vector; rows of -1 pad a short result."""
    # One query is faster on one thread: OpenMP's start-up costs more than it saves.
    faiss.omp_set_num_threads(1)
    scores, rows = structure.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
    return scores[0], rows[0]


def _flat(vectors: np.ndarray, dimension: int) -> faiss.Index:
    index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index
