"""BM25 over segments scores every chunk as one index built from scratch over the live chunks (bm25s) does."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from rag.engines.postings import Postings, Stats, search


def _corpus(rng: np.random.Generator, chunks: int, vocabulary: int) -> list[np.ndarray]:
    return [rng.zipf(1.3, size=rng.integers(1, 40)).astype(np.int64) % vocabulary for _ in range(chunks)]


def _reference(chunks: list[np.ndarray], query: list[int]) -> dict[int, float]:
    """Scores of bm25s over `chunks` (tokens as strings) for `query`: chunk -> score, above zero only."""
    retriever = bm25s.BM25()
    retriever.index([[str(t) for t in c] for c in chunks], show_progress=False)
    ids = [retriever.vocab_dict[str(t)] for t in query if str(t) in retriever.vocab_dict]
    scores = retriever.get_scores(ids) if ids else np.zeros(len(chunks))
    return {i: float(s) for i, s in enumerate(scores) if s > 0}


@pytest.mark.parametrize("seed", range(5))
def test_scores_across_segments_with_deletions_equal_one_index(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocabulary = 300
    segments = [_corpus(rng, n, vocabulary) for n in (200, 40, 7, 1)]
    lives = [rng.random(len(s)) > 0.2 for s in segments]
    parts = [(Postings.build(s, vocabulary), live) for s, live in zip(segments, lives, strict=True)]
    stats = Stats.of(parts, vocabulary)
    live_chunks = [(p, r) for p, s in enumerate(segments) for r in range(len(s)) if lives[p][r]]
    for _ in range(20):
        query = [int(t) for t in rng.integers(0, 60, size=rng.integers(1, 6))]
        expected = _reference([segments[p][r] for p, r in live_chunks], query)
        found = search(parts, stats, query, k=len(live_chunks))
        got = {live_chunks.index((p, r)): s for p, r, s in found}
        assert got.keys() == expected.keys()
        for i, score in expected.items():
            assert got[i] == pytest.approx(score, rel=1e-5)
        assert [s for _, _, s in found] == sorted((s for _, _, s in found), reverse=True)


def test_one_segment_equals_bm25s_and_k_cuts_the_best() -> None:
    rng = np.random.default_rng(7)
    chunks = _corpus(rng, 500, 100)
    parts = [(Postings.build(chunks, 100), None)]
    stats = Stats.of(parts, 100)
    expected = _reference(chunks, [3, 5, 5, 17])
    top = search(parts, stats, [3, 5, 5, 17], k=10)
    best = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [r for _, r, _ in top] == [i for i, _ in best]


def test_terms_unknown_to_a_segment_and_empty_cases() -> None:
    old = Postings.build([np.array([0, 1]), np.array([1, 1])], 2)  # built before terms 2 and 3 existed
    new = Postings.build([np.array([2, 3])], 4)
    stats = Stats.of([(old, None), (new, None)], 4)
    assert stats.doc_freq.tolist() == [1, 2, 1, 1]
    assert [(p, r) for p, r, _ in search([(old, None), (new, None)], stats, [3], 5)] == [(1, 0)]
    assert search([(old, None)], stats, [], 5) == []
    assert search([(old, np.zeros(2, dtype=bool))], Stats.of([(old, np.zeros(2, dtype=bool))], 4), [1], 5) == []


def test_saved_and_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    postings = Postings.build([np.array([0, 4, 4]), np.array([2])], 5)
    postings.save(tmp_path)
    loaded = Postings.load(tmp_path)
    for name in ("indptr", "rows", "counts", "lengths"):
        assert np.array_equal(getattr(loaded, name), getattr(postings, name))
