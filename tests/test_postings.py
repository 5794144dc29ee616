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


def _every_score(parts: list, stats: Stats, query: list[int], k: int) -> list[tuple[int, int, float]]:
    """The k best (part, row, score) found by scoring every row of every part, ranked as `search` promises."""
    average, terms = stats.length / stats.chunks, stats.selective(query)
    ranked = []
    for p, (postings, live) in enumerate(parts):
        rows = [postings.postings(t)[0] for t in terms]
        tf = [postings.postings(t)[1].astype(np.float64) for t in terms]
        weights = [
            (np.float32(stats.idf(t)) * (f / (postings.norms(average)[r] + f))).astype(np.float32)
            for t, r, f in zip(terms, rows, tf, strict=True)
        ]
        scores = np.bincount(np.concatenate(rows), np.concatenate(weights).astype(np.float64), postings.size)
        ranked += [(p, r, float(s)) for r, s in enumerate(scores) if s > 0 and (live is None or live[r])]
    return sorted(ranked, key=lambda f: (-f[2], f[0], f[1]))[:k]


@pytest.mark.parametrize("seed", range(3))
def test_the_k_best_equal_ranking_every_score(seed: int) -> None:
    """Large segments (where `search` ranks only the rows above a sampled threshold, and sums many postings over
    the whole segment) and small ones, with dead rows and many tied scores (few distinct terms and lengths)."""
    rng = np.random.default_rng(seed)
    sizes = (60_000, 3_000, 20)
    share = [0.3, 0.2, 0.15, 0.12, 0.1, 0.085, 0.04, 0.005]  # terms 6 and 7: few postings, summed row by row
    segments = [[rng.choice(8, size=rng.integers(1, 4), p=share) for _ in range(n)] for n in sizes]
    parts = [(Postings.build(s, 8), rng.random(len(s)) > 0.3 if i else None) for i, s in enumerate(segments)]
    stats = Stats.of(parts, 8)
    for query in ([0], [7], [0, 1, 2, 3], [5, 5, 6], [2, 4]):
        for k in (1, 10, 50):
            assert search(parts, stats, query, k) == _every_score(parts, stats, query, k)


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
