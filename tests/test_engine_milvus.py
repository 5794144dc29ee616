"""The Milvus engine on a real Milvus Lite in a temporary folder: writes, both searches against NumPy and bm25s over
the same terms, fetched passages, updates that shrink or remove a document, and reopening."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bm25s
import numpy as np
import pytest

from rag.engines.base import Update
from rag.engines.milvus import MilvusEngine
from rag.engines.milvus_client import literal
from rag.text.chunking import Chunk, pack_chunks, split_sentences
from rag.text.sentences import FOREIGN, SentenceTable
from rag.text.vocabulary import Vocabulary
from rag.text.words import words_for

DIM = 16
WORDS = words_for("en")
ANIMALS = ["otter", "heron", "badger", "falcon", "salmon", "beaver", "lynx", "marten"]
ACTIONS = ["crossed", "watched", "followed", "guarded", "circled", "found"]
PLACES = ["river", "marsh", "quarry", "orchard", "glacier", "harbour", "meadow"]
ODD = 'dir/it\'s "odd"\\name.txt'  # a source that needs escaping in a filter


def text_of(seed: int, sentences: int) -> str:
    rng = np.random.default_rng(seed)
    lines = [
        f"The {rng.choice(ANIMALS)} {rng.choice(ACTIONS)} the {rng.choice(PLACES)} near Oslo in {1900 + i} "
        f"with {rng.choice(ANIMALS)} number {i}."
        for i in range(sentences)
    ]
    return " ".join(lines)


def corpus(sizes: dict[str, int], seed: int = 0) -> dict[str, str]:
    return {source: text_of(seed + n, count) for n, (source, count) in enumerate(sizes.items())}


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_update(docs: dict[str, str], fresh: set[str] | None = None, removed: frozenset[str] = frozenset()) -> Update:
    """The update of an index of `docs` (in order) embedding `fresh` anew (all of them by default); vectors are
    random, the same for the same document and text."""
    chunks: list[Chunk] = []
    texts: list[str] = []
    first_row: dict[str, int] = {}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for source, text in docs.items():
        spans = split_sentences(text, max_words=30)
        mine = pack_chunks(source, text, spans, 30, 1)
        first_row[source] = len(texts)
        texts += [text[a:b] for a, b in spans]
        chunks += mine
        rng = np.random.default_rng(abs(hash((source, text))) % 2**32)
        vectors[source] = (unit(rng, len(mine)), unit(rng, len(spans)))
    table = SentenceTable.build(texts, WORDS)
    chosen = set(docs) if fresh is None else fresh
    return Update(chunks, table, first_row, {s: vectors[s] for s in docs if s in chosen}, removed, DIM, WORDS)


def chunk_terms(update: Update, chunk: Chunk) -> list[str]:
    return [t for r in update.document_rows(chunk.source, chunk) for t in update.table.terms(r)]


def open_engine(path: Path, collection: str, fresh: bool = False) -> MilvusEngine:
    return MilvusEngine.connect(str(path), "secret-token", collection, DIM, fresh=fresh)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "index" / "milvus.db"


@pytest.fixture(scope="module")
def built(lite: Path) -> Iterator[tuple[MilvusEngine, Update]]:
    """One collection of four documents, read by the tests that do not change it."""
    update = make_update(corpus({"a.txt": 12, "b.txt": 9, ODD: 7, "d.txt": 1}))
    engine = open_engine(lite, "reads", fresh=True).apply(update)
    engine.vocabulary = Vocabulary(update.table.vocabulary, update.table.doc_freq, len(update.table), WORDS)
    yield engine, update
    engine.close()


def test_apply_writes_every_chunk(built: tuple[MilvusEngine, Update]) -> None:
    engine, update = built
    assert engine.count() == len(update.chunks) > 8


def test_dense_search_matches_brute_force(built: tuple[MilvusEngine, Update]) -> None:
    engine, update = built
    vectors = np.concatenate([update.fresh[s][0] for s in update.fresh])
    ids = [c.id for c in update.chunks]
    for query in unit(np.random.default_rng(7), 5):
        scores = vectors @ query
        top = np.argsort(-scores)[:5]
        found = engine.search_dense(query, 5)
        assert [i for i, _ in found] == [ids[t] for t in top]
        assert np.allclose([s for _, s in found], scores[top], atol=1e-5)
    assert len(engine.search_dense(query, 1000)) == len(ids)


def test_lexical_search_ranks_as_bm25s(built: tuple[MilvusEngine, Update]) -> None:
    engine, update = built
    tokens = [chunk_terms(update, c) for c in update.chunks]
    reference = bm25s.BM25(k1=1.5, b=0.75)
    reference.index(tokens, show_progress=False)
    for question in (["otter", "river"], ["badger"], ["glacier", "lynx", "1905"], ["salmon", "orchard"]):
        scores = reference.get_scores(question)
        expected = [update.chunks[i].id for i in np.lexsort((np.arange(len(scores)), -scores)) if scores[i] > 0]
        found = engine.search_lexical(question, 5)
        assert [i for i, _ in found] == expected[:5], question
        assert all(s > 0 for _, s in found) and [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert engine.search_lexical([], 5) == []
    assert engine.search_lexical(["zebra"], 5) == []


def test_fetch_gives_back_chunks_vectors_and_passages(built: tuple[MilvusEngine, Update]) -> None:
    engine, update = built
    by_id = {c.id: c for c in update.chunks}
    ids = ["a.txt#2", f"{ODD}#0", "a.txt#1", "d.txt#0", f"{ODD}#1"]
    candidates = engine.fetch(ids)
    assert candidates.ids == ids
    row = {c.id: i for i, c in enumerate(update.chunks)}
    all_vectors = np.concatenate([update.fresh[s][0] for s in update.fresh])
    assert np.allclose(candidates.vectors, all_vectors[[row[i] for i in ids]], atol=1e-6)

    query = unit(np.random.default_rng(3), 1)[0]
    expected = []
    for i in ids:
        c = by_id[i]
        own = update.fresh[c.source][1][c.first_sentence : c.first_sentence + len(c.sentences)]
        expected.append(float((own.astype(np.float16).astype(np.float32) @ query).max()))
    assert np.allclose(candidates.best_sentence_scores(query), expected, atol=1e-5)

    passages = candidates.passages([0, 1, 2, 3])
    assert passages.chunks == [by_id[i] for i in ids[:4]]
    vocabulary = engine.vocabulary
    assert vocabulary is not None
    for n, i in enumerate(ids[:4]):
        c, sentence_vectors = by_id[i], update.fresh[by_id[i].source][1]
        for j, (position, table_row) in enumerate(
            zip(passages.positions(n), update.document_rows(c.source, c), strict=True)
        ):
            ordinal = c.first_sentence + j
            assert np.allclose(passages.vectors[position], sentence_vectors[ordinal], atol=2e-3)
            table = passages.table
            held = table.ids[table.indptr[position] : table.indptr[position + 1]]
            assert held.tolist() == vocabulary.lookup(update.table.terms(table_row)).tolist()
            caps = update.table.caps[update.table.indptr[table_row] : update.table.indptr[table_row + 1]]
            assert table.caps[table.indptr[position] : table.indptr[position + 1]].tolist() == caps.tolist()
            assert table.flags[position] == update.table.flags[table_row]
            # Neighbours inside the document are at hand, across chunk borders too (the context sentences).
            before, after = passages.previous[position], passages.following[position]
            assert (before >= 0) == (ordinal > 0)
            assert (after >= 0) == (ordinal + 1 < len(sentence_vectors))
            if before >= 0:
                assert np.allclose(passages.vectors[before], sentence_vectors[ordinal - 1], atol=2e-3)
            if after >= 0:
                assert np.allclose(passages.vectors[after], sentence_vectors[ordinal + 1], atol=2e-3)
    # a.txt#1 and a.txt#2 overlap: every sentence, with the context of each chunk, is held once.
    held = set()
    for c in passages.chunks:
        total = len(update.fresh[c.source][1])
        held |= {
            (c.source, o)
            for o in range(max(c.first_sentence - 1, 0), min(c.first_sentence + len(c.sentences) + 1, total))
        }
    assert len(passages.vectors) == len(held) == len(passages.table)
    # A term the engine's vocabulary lacks is FOREIGN.
    engine.vocabulary = Vocabulary(["otter"], np.array([1]), 1, WORDS)
    try:
        ids_seen = set(engine.fetch(["b.txt#0"]).passages([0]).table.ids.tolist())
        assert ids_seen <= {0, FOREIGN} and FOREIGN in ids_seen
    finally:
        engine.vocabulary = vocabulary
    # A chunk gone meanwhile (another process's build replaced its document) is left out, not an error.
    assert engine.fetch(["a.txt#999", "b.txt#0"]).ids == ["b.txt#0"]


def test_describe_names_no_token(built: tuple[MilvusEngine, Update], lite: Path) -> None:
    engine, _ = built
    described = engine.describe()
    assert described["name"] == "milvus" and described["collection"] == "reads" and described["dimension"] == DIM
    assert described["dense"]["type"] == "hnsw" and described["lexical"] == {"type": "bm25", "k1": 1.5, "b": 0.75}
    assert described["uri"] == str(lite)
    assert "secret-token" not in repr(described)


def test_shorter_and_removed_documents_leave_nothing_behind(lite: Path) -> None:
    first = make_update(corpus({"a.txt": 12, ODD: 10, "c.txt": 6}))
    engine = open_engine(lite, "changes", fresh=True).apply(first)
    try:
        assert engine.count() == len(first.chunks)
        docs = corpus({"a.txt": 12, ODD: 10, "c.txt": 6})
        docs[ODD] = text_of(99, 3)  # shorter: fewer chunks
        del docs["c.txt"]
        second = make_update(docs, fresh={ODD}, removed=frozenset({"c.txt"}))
        engine.apply(second)
        engine.vocabulary = Vocabulary(second.table.vocabulary, second.table.doc_freq, len(second.table), WORDS)
        assert engine.count() == len(second.chunks) < len(first.chunks)
        found = {i for i, _ in engine.search_dense(np.ones(DIM, np.float32) / 4, 1000)}
        assert found == {c.id for c in second.chunks}
        new = [c for c in second.chunks if c.source == ODD]
        assert engine.fetch([new[0].id]).passages([0]).chunks == [new[0]]
        assert not any(i.startswith("c.txt") for i, _ in engine.search_lexical(["otter", "heron", "river"], 1000))
    finally:
        engine.close()


def test_reopening_after_close_keeps_the_collection(lite: Path) -> None:
    update = make_update(corpus({"x.txt": 8}))
    engine = open_engine(lite, "reopen", fresh=True).apply(update)
    engine.close()
    engine.close()  # twice is harmless
    engine = open_engine(lite, "reopen")
    try:
        assert engine.count() == len(update.chunks)
        assert engine.search_lexical(["otter", "river", "heron"], 3)
    finally:
        engine.close()


def test_close_frees_the_folder_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "alone.db"
    engine = open_engine(path, "one", fresh=True).apply(make_update(corpus({"x.txt": 3})))
    code = (
        "import sys; from rag.engines.milvus import MilvusEngine\n"
        f"e = MilvusEngine.connect({str(path)!r}, '', 'one', {DIM}); print(e.count()); e.close()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "another process holds it" in done.stderr
    engine.close()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0


def test_redact_takes_the_password_out_of_a_uri() -> None:
    from rag.engines import redact

    assert redact("http://root:Milvus@host:19530") == "http://root@host:19530"
    assert redact("https://u:p@h/x") == "https://u@h/x"
    for uri in ("/tmp/index/milvus.db", "http://h:19530"):
        assert redact(uri) == uri


def test_filter_literals_escape_quotes_and_backslashes() -> None:
    assert literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_small_limits_split_payloads_and_queries(lite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A payload over one ARRAY element is cut into pieces, and a query for held ids that fills a server's result
    window is split, down to an iterator for one document: forced here with tiny limits."""
    from rag.engines import milvus, milvus_records

    monkeypatch.setattr(milvus_records, "PIECE", 300)
    monkeypatch.setattr(milvus, "WINDOW", 3)
    first = make_update(corpus({"a.txt": 14, "b.txt": 12, "c.txt": 12}))
    engine = open_engine(lite, "limits", fresh=True).apply(first)
    try:
        engine.vocabulary = Vocabulary(first.table.vocabulary, first.table.doc_freq, len(first.table), WORDS)
        mine = [c for c in first.chunks if c.source == "a.txt"]
        assert len(milvus_records.document_records(first, "a.txt", mine)[0]["payload"]) >= 3
        assert engine._ids_of(["a.txt", "b.txt", "c.txt"]) == {c.id for c in first.chunks}
        docs = corpus({"a.txt": 14, "b.txt": 12, "c.txt": 12})
        docs["b.txt"] = text_of(42, 4)
        second = make_update(docs, fresh={"a.txt", "b.txt"})
        engine.apply(second)
        assert engine.count() == len(second.chunks)
        assert set(engine.fetch([c.id for c in second.chunks]).ids) == {c.id for c in second.chunks}
        passages = engine.fetch([second.chunks[1].id]).passages([0])
        assert passages.chunks == [second.chunks[1]]
    finally:
        engine.close()
