"""Fusion as pure functions, and dense search against brute-force NumPy on the real index."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.engines.local import LocalEngine, Segment
from rag.pipeline import Assistant
from rag.retrieval import Hit, Weights, fuse_convex, fuse_rrf, normalize_minmax, search


def local(assistant: Assistant) -> LocalEngine:
    engine = assistant.index.engine
    assert isinstance(engine, LocalEngine)
    return engine


def only_segment(assistant: Assistant) -> Segment:
    """The one segment of the session index (a build from scratch writes one)."""
    segments = local(assistant).segments
    assert len(segments) == 1
    return segments[0]


SCORES: st.SearchStrategy[Mapping[int, float]] = st.dictionaries(
    st.integers(0, 30), st.floats(-5, 50, allow_nan=False), max_size=12
)
WEIGHTS = st.lists(st.floats(0, 3, allow_nan=False), min_size=3, max_size=3)


# --- normalization -------------------------------------------------------------------------------------------


def test_normalize_minmax_maps_the_range_onto_0_1() -> None:
    assert normalize_minmax({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}


def test_normalize_of_nothing_is_nothing() -> None:
    assert normalize_minmax({}) == {}


def test_normalize_of_equal_scores_is_zero() -> None:
    assert normalize_minmax({1: 0.0, 2: 0.0}) == {1: 0.0, 2: 0.0}
    assert normalize_minmax({1: 0.7, 2: 0.7}) == {1: 0.0, 2: 0.0}


@settings(max_examples=100, deadline=None)
@given(SCORES)
def test_normalized_scores_are_in_0_1_and_keep_the_order(scores: Mapping[int, float]) -> None:
    for normalize, raw in ((normalize_minmax, scores),):
        out = normalize(raw)
        assert out.keys() == raw.keys()
        assert all(0.0 <= v <= 1.0 for v in out.values())
        for a in raw:
            for b in raw:
                if raw[a] < raw[b]:
                    assert out[a] <= out[b]


# --- fusion --------------------------------------------------------------------------------------------------


def test_fuse_convex_weighs_each_signal() -> None:
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {1: 0.0, 2: 10.0, 3: 5.0}
    fused = fuse_convex([dense, lexical], [0.25, 0.75])
    assert fused == pytest.approx({1: 0.25, 2: 0.25 * 0.5 + 0.75, 3: 0.75 * 0.5})
    assert max(fused, key=fused.__getitem__) == 2


def test_fuse_convex_with_one_signal_only_follows_that_signal() -> None:
    dense = {1: 0.9, 2: 0.5, 3: 0.1}
    lexical = {1: 0.0, 2: 10.0, 3: 5.0}
    assert sorted(fuse_convex([dense, lexical], [1, 0]).items(), key=lambda kv: -kv[1])[0][0] == 1
    assert sorted(fuse_convex([dense, lexical], [0, 1]).items(), key=lambda kv: -kv[1])[0][0] == 2


def test_fuse_convex_weights_need_not_sum_to_one() -> None:
    signals: list[Mapping[int, float]] = [{1: 1.0, 2: 0.0}, {1: 0.0, 2: 1.0}]
    assert fuse_convex(signals, [2, 6]) == pytest.approx(fuse_convex(signals, [0.25, 0.75]))


def test_fuse_convex_gives_ties_equal_scores() -> None:
    fused = fuse_convex([{1: 0.5, 2: 0.5, 3: 0.1}, {1: 2.0, 2: 2.0, 3: 1.0}], [0.5, 0.5])
    assert fused[1] == fused[2] == 1.0
    assert fused[3] == 0.0


def test_fuse_convex_counts_a_missing_row_as_nothing() -> None:
    fused = fuse_convex([{1: 1.0, 2: 0.0}, {2: 3.0, 3: 1.0}], [0.5, 0.5])
    assert fused == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})


@pytest.mark.parametrize("fuse", [fuse_convex, fuse_rrf])
def test_fusing_nothing_gives_nothing(fuse) -> None:  # type: ignore[no-untyped-def]
    assert fuse([], []) == {}
    assert fuse([{}, {}], [0.5, 0.5]) == {}


def test_fuse_rrf_sums_weight_over_k_plus_rank() -> None:
    fused = fuse_rrf([{1: 0.9, 2: 0.8}, {2: 7.0, 1: 3.0, 3: 1.0}], [1.0, 2.0], k=60)
    assert fused == pytest.approx({1: 1 / 61 + 2 / 62, 2: 1 / 62 + 2 / 61, 3: 2 / 63})
    assert sorted(fused, key=lambda r: -fused[r]) == [2, 1, 3]


def test_fuse_rrf_ignores_the_scale_of_scores() -> None:
    a = fuse_rrf([{1: 0.3, 2: 0.2}, {1: 1.0, 2: 900.0}], [1, 1])
    b = fuse_rrf([{1: 300.0, 2: 0.0}, {1: -5.0, 2: -4.0}], [1, 1])
    assert a == pytest.approx(b)


@settings(max_examples=100, deadline=None)
@given(st.lists(SCORES, min_size=3, max_size=3), WEIGHTS)
def test_fused_scores_are_in_0_1_and_cover_every_candidate(
    signals: list[Mapping[int, float]], weights: list[float]
) -> None:
    rows = set().union(*signals)
    for fuse in (fuse_convex, fuse_rrf):
        fused = fuse(signals, weights)
        assert set(fused) == rows
    convex = fuse_convex(signals, weights)
    assert all(-1e-9 <= v <= 1 + 1e-9 for v in convex.values())


@settings(max_examples=100, deadline=None)
@given(SCORES)
def test_a_single_signal_keeps_its_order(scores: Mapping[int, float]) -> None:
    for fused in (fuse_convex([scores], [1.0]), fuse_rrf([scores], [1.0])):
        for a in scores:
            for b in scores:
                if scores[a] < scores[b]:
                    assert fused[a] <= fused[b]


# --- search on the real index --------------------------------------------------------------------------------

QUESTIONS = [
    "Japan and Ukraine established diplomatic relations",
    "generators sent to Ukraine",
    "Ukrainian students at Japanese universities",
    "a recipe for apple pie",
]


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_faiss_matches_brute_force_inner_product(assistant: Assistant, question: str) -> None:
    segment = only_segment(assistant)
    vector = assistant.encoder.encode_one(question)
    n = segment.structure.index.ntotal
    matrix = segment.vectors
    assert matrix.shape == (n, assistant.index.dimension)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    expected = matrix @ vector
    k = 10
    scores, rows = segment.structure.index.search(vector.reshape(1, -1), k)
    np.testing.assert_allclose(scores[0], np.sort(expected)[::-1][:k], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(expected[rows[0]], scores[0], rtol=1e-5, atol=1e-5)
    found = local(assistant).search_dense(vector, k)  # the engine's search over its segments: the same ranking
    np.testing.assert_allclose([score for _, score in found], scores[0], rtol=1e-5, atol=1e-5)
    assert [segment.row[chunk_id] for chunk_id, _ in found] == rows[0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_search_reports_exact_signals_best_first(assistant: Assistant, question: str) -> None:
    engine, segment = local(assistant), only_segment(assistant)
    vector = assistant.encoder.encode_one(question)
    terms = assistant.index.vocabulary.query_terms(question)
    hits, passages = search(engine, vector, terms, 8)
    assert 1 <= len(hits) <= 8
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.id for h in hits}) == len(hits)
    assert [c.id for c in passages.chunks] == [h.id for h in hits]
    lexical = dict(engine.search_lexical(terms, engine.count()))
    for i, hit in enumerate(hits):
        row = segment.row[hit.id]
        assert 0.0 <= hit.score <= 1.0 + 1e-9
        assert hit.dense == pytest.approx(float(segment.vectors[row] @ vector), abs=1e-5)
        rows = segment.chunk_sentences(row)
        best = float(np.max(segment.sentence_vectors[rows.start : rows.stop] @ vector))
        assert hit.sentence == pytest.approx(best, abs=1e-5)
        assert float(np.max(passages.vectors[list(passages.positions(i))] @ vector)) == pytest.approx(best, abs=1e-5)
        assert engine.fetch([hit.id]).best_sentence_scores(vector)[0] == pytest.approx(best, abs=1e-5)
        assert hit.lexical == pytest.approx(lexical.get(hit.id, 0.0))


@pytest.mark.slow
def test_search_with_lexical_weight_only_follows_bm25(assistant: Assistant) -> None:
    index = assistant.index
    question = "Bortnytsky wastewater treatment plant"
    vector = assistant.encoder.encode_one(question)
    terms = index.vocabulary.query_terms(question)
    hits, _ = search(index.engine, vector, terms, 3, weights=Weights(0, 0, 1))
    assert hits[0].id == index.engine.search_lexical(terms, 1)[0][0]


@pytest.mark.slow
def test_search_with_rrf_fusion(assistant: Assistant) -> None:
    index = assistant.index
    question = "Fukushima University memorandum on radiation control"
    vector = assistant.encoder.encode_one(question)
    _, passages = search(index.engine, vector, index.vocabulary.query_terms(question), 5, fuse=fuse_rrf)
    assert "Fukushima University" in passages.chunks[0].text


@pytest.mark.slow
def test_a_misspelled_word_is_searched_as_the_word_it_stands_for(assistant: Assistant) -> None:
    """A word typed with a slip is searched as the word meant: by its stem when that is one edit from a known one,
    else by the English word one edit from it as typed ("minster": its stem is three edits from "minist")."""
    vocabulary = assistant.index.vocabulary
    assert vocabulary.query_terms("who is the forein minster visting japan") == vocabulary.query_terms(
        "who is the foreign minister visiting japan"
    )
    assert vocabulary.query_terms("wen did japan start") == vocabulary.query_terms("when did japan start")
    assert vocabulary.respelled("minister") is None  # a word of the model's vocabulary is never respelled
