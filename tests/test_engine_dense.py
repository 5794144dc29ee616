"""The dense structure: exact below the size limit, HNSW above it, recorded in the manifest, saved and loaded, and
close to exact search (recall@10 against brute-force NumPy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.engines import dense


def unit_rows(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    rows = centers[rng.integers(0, 20, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_a_small_index_is_exact_and_writes_no_file(tmp_path: Path) -> None:
    vectors = unit_rows(100)
    structure = dense.build(vectors)
    params = structure.params
    assert params == {"type": "flat"}
    dense.save(structure, tmp_path)
    assert not (tmp_path / dense.FILE).exists()
    loaded = dense.load(tmp_path, params, vectors)
    query = vectors[7]
    _, rows = dense.search(loaded, query, 5)
    assert list(rows) == list(np.argsort(-(vectors @ query), kind="stable")[:5])


def test_a_large_index_is_hnsw_recorded_and_round_trips(tmp_path: Path) -> None:
    vectors = unit_rows(3000)
    structure = dense.build(vectors, exact_limit=1000)
    params = structure.params
    assert params["type"] == "hnsw" and {"M", "efConstruction", "efSearch"} <= params.keys()
    dense.save(structure, tmp_path)
    loaded = dense.load(tmp_path, params, vectors)
    assert loaded.index.ntotal == 3000
    queries = unit_rows(50, seed=1)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = np.vstack([dense.search(loaded, q, 10)[1] for q in queries])
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


@pytest.mark.parametrize("k", [1, 10, 100])
def test_search_never_returns_more_than_there_is(k: int) -> None:
    vectors = unit_rows(20)
    scores, rows = dense.search(dense.build(vectors), vectors[0], k)
    assert len(rows) == k and all(r == -1 for r in rows[20:])
    assert rows[0] == 0 and scores[0] == pytest.approx(1.0, abs=1e-5)
