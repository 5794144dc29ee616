"""The index on disk: round trip, refusing a mismatch, naming the damaged file, recovering an interrupted swap.

These tests use a small fake index (made-up chunks, random unit vectors) that needs no model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import indexing
from rag.config import Settings
from rag.engines import opener
from rag.engines.local import LocalEngine, Segment
from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing, IndexOutdated, NotFound
from rag.indexing import catalog, store
from rag.indexing.index import IndexSummary
from rag.indexing.store import DocumentEntry, Index
from rag.indexing.texts import Texts
from rag.text import sentences
from rag.text.chunking import make_chunks

DIM = 8
EXPECTED: dict[str, Any] = {
    "model": {"name": "fake-model", "dimension": DIM},
    "chunker": {"splitter": "test", "chunk_words": 12, "overlap": 1},
    "text": {"language": "en", "sentence_table": sentences.VERSION},
    "engine": {"name": "local"},
}
LOCAL = Settings()
TEXTS = {
    "alpha.txt": "Alpha is the first letter. It opens the alphabet. Greek children learn it first. "
    "Alpha also names the brightest star of a constellation.",
    "notes/beta.md": "# Beta\n\nBeta comes second. Software in beta is nearly ready. Beta particles are electrons.",
}


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fake_index(expected: dict[str, Any] = EXPECTED, seed: int = 0) -> Index:
    rng = np.random.default_rng(seed)
    documents, chunks, sentences = [], [], 0
    for source, text in TEXTS.items():
        doc_chunks = make_chunks(source, text, chunk_words=12, overlap=1)
        n_sentences = doc_chunks[-1].first_sentence + len(doc_chunks[-1].sentences)
        documents.append(
            DocumentEntry(source, source.upper(), f"sha-{source}", len(text), 1, len(doc_chunks), n_sentences)
        )
        chunks += doc_chunks
        sentences += n_sentences
    manifest = store.build_manifest(expected, documents, len(chunks), {"broken.txt": "binary file"})
    vectors = {d.source: (unit_vectors(rng, d.chunks), unit_vectors(rng, d.sentences)) for d in documents}
    return indexing.assemble(LOCAL, manifest, documents, chunks, Texts(dict(TEXTS)), vectors)


def load_index(folder: Path, expected: dict[str, Any] = EXPECTED) -> Index:
    return store.load(folder, expected, opener(LOCAL))


def local(index: Index) -> LocalEngine:
    assert isinstance(index.engine, LocalEngine)
    return index.engine


def segment(index: Index) -> Segment:
    """The one segment of a fake index (a full build writes one)."""
    segments = local(index).segments
    assert len(segments) == 1
    return segments[0]


def segment_folder(folder: Path) -> Path:
    """The folder of the one segment of the index saved in `folder`."""
    (entry,) = json.loads((folder / "manifest.json").read_text())["segments"]
    return folder / "segments" / entry["name"]


def all_vectors(index: Index) -> np.ndarray:
    structure = segment(index).structure.index
    return structure.reconstruct_n(0, structure.ntotal)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Index, Path]:
    index, folder = fake_index(), tmp_path / "index"
    store.save(index, folder)
    return index, folder


def assert_same_index(a: Index, b: Index) -> None:
    assert a.chunks == b.chunks
    assert a.documents == b.documents
    assert a.manifest == b.manifest
    np.testing.assert_array_equal(all_vectors(a), all_vectors(b))
    np.testing.assert_array_equal(segment(a).sentence_vectors, segment(b).sentence_vectors)


def test_save_then_load_round_trips(saved: tuple[Index, Path]) -> None:
    index, folder = saved
    loaded = load_index(folder, EXPECTED)
    assert_same_index(index, loaded)
    for source, text in TEXTS.items():
        assert loaded.document(source).text == text == index.document(source).text
    assert segment(loaded).sentence_vectors.dtype == np.float32
    terms = loaded.vocabulary.query_terms("beta particles")
    found = loaded.engine.search_lexical(terms, 3)
    assert found and found == index.engine.search_lexical(terms, 3)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "segments"]
    assert [p.name for p in (folder / "segments").iterdir()] == [segment_folder(folder).name]
    assert sorted(p.name for p in segment_folder(folder).iterdir()) == [
        "chunks.jsonl",
        "documents.jsonl",
        "postings.npz",
        "sentence_terms.npz",
        "sentence_vocabulary.json",
        "sentences.npy",
        "texts.jsonl",
        "texts.offsets.npy",
        "vectors.npy",
    ]  # a small segment is searched exactly: no dense.faiss (see test_engine_dense.py for the approximate one)


def test_the_manifest_describes_the_index(saved: tuple[Index, Path]) -> None:
    _, folder = saved
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == store.FORMAT_VERSION
    assert manifest["model"] == EXPECTED["model"]
    assert manifest["chunker"] == EXPECTED["chunker"]
    assert "documents" not in manifest  # listed by the segments
    (entry,) = manifest["segments"]
    assert (entry["documents"], entry["deleted"]) == (2, [])
    assert entry["chunks"] == manifest["counts"]["chunks"] > 0
    assert entry["first_term"] == 0 and entry["terms"] > 0
    assert manifest["counts"]["documents"] == 2
    assert manifest["skipped"] == {"broken.txt": "binary file"}
    assert [d["source"] for d in store.read_manifest(folder)["documents"]] == list(TEXTS)


def test_the_summary_reads_the_manifest(saved: tuple[Index, Path]) -> None:
    index, folder = saved
    summary = load_index(folder).summary
    assert summary == index.summary
    assert (summary.documents, summary.chunks) == (2, index.chunk_count)
    assert summary.built_at == index.manifest["built_at"]
    assert (summary.model, summary.model_name) == (EXPECTED["model"], "fake-model")
    assert summary.chunker == EXPECTED["chunker"]
    assert summary.skipped == {"broken.txt": "binary file"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.documents = 3  # type: ignore[misc]


def test_the_summary_of_an_older_manifest_shows_no_skipped_files_and_an_empty_chunker() -> None:
    # Manifests from before skipped files and the chunker were recorded.
    manifest = {"model": {"name": "m", "dimension": 4}, "counts": {"documents": 1, "chunks": 3}, "built_at": "T"}
    summary = IndexSummary.from_manifest(manifest)
    assert summary == IndexSummary(1, 3, "T", {"name": "m", "dimension": 4}, {}, {})
    assert IndexSummary.from_manifest({**manifest, "chunker": None}).chunker == {}
    with pytest.raises(KeyError):
        IndexSummary.from_manifest({k: v for k, v in manifest.items() if k != "counts"})


def test_index_maps_chunks_to_their_sentence_vectors(saved: tuple[Index, Path]) -> None:
    index = load_index(saved[1], EXPECTED)
    engine, part = local(index), segment(index)
    rows = [r for i in range(len(index.chunks)) for r in part.chunk_sentences(i)]
    assert sorted(set(rows)) == list(range(len(part.sentence_vectors)))  # every sentence belongs to a chunk
    first_beta = index.first_chunk("notes/beta.md")
    assert index.chunks[first_beta].source == "notes/beta.md"
    assert index.chunks[first_beta - 1].source == "alpha.txt"
    assert index.title("notes/beta.md") == "NOTES/BETA.MD"
    assert engine.fetch([]).vectors.shape == (0, DIM)


def test_save_replaces_an_index_and_leaves_no_temporary_folders(saved: tuple[Index, Path]) -> None:
    _, folder = saved
    newer = fake_index(seed=1)
    store.save(newer, folder)
    assert_same_index(newer, load_index(folder, EXPECTED))
    assert [p.name for p in folder.parent.iterdir()] == ["index"]


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"name": "other-model", "dimension": DIM}},
        {"model": {"name": "fake-model", "dimension": 16}},
        {"chunker": {**EXPECTED["chunker"], "chunk_words": 200}},
        {"chunker": {**EXPECTED["chunker"], "overlap": 0}},
        {"chunker": {**EXPECTED["chunker"], "splitter": "other"}},
    ],
    ids=["model-name", "dimension", "chunk-words", "overlap", "splitter"],
)
def test_loading_with_other_settings_is_refused(saved: tuple[Index, Path], change: dict[str, Any]) -> None:
    with pytest.raises(IndexMismatch, match="rag index --full"):
        load_index(saved[1], {**EXPECTED, **change})


def test_another_format_version_is_refused(saved: tuple[Index, Path]) -> None:
    path = saved[1] / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": store.FORMAT_VERSION + 1}))
    with pytest.raises(IndexMismatch, match="rag index --full"):
        load_index(saved[1], EXPECTED)


def test_a_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="rag index"):
        load_index(tmp_path / "index", EXPECTED)
    with pytest.raises(IndexMissing):
        store.read_manifest(tmp_path / "index")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) - 7)])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage \xff\xfe not what it should be {[")


def delete(path: Path) -> None:
    path.unlink()


def file_of(folder: Path, name: str) -> Path:
    """The file `name` of the index in `folder`: the manifest at its root, the others in its one segment."""
    return folder / name if name == "manifest.json" else segment_folder(folder) / name


@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbage"])
@pytest.mark.parametrize(
    "name",
    [
        "manifest.json",
        "documents.jsonl",
        "chunks.jsonl",
        "vectors.npy",
        "sentences.npy",
        "sentence_terms.npz",
        "postings.npz",
    ],
)
def test_a_damaged_file_is_named_in_the_error(saved: tuple[Index, Path], name: str, damage: Any) -> None:
    damage(file_of(saved[1], name))
    with pytest.raises(IndexCorrupt) as caught:
        load_index(saved[1], EXPECTED)
    assert name in str(caught.value)
    assert "rag index --full" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "documents.jsonl",
        "chunks.jsonl",
        "vectors.npy",
        "sentences.npy",
        "sentence_terms.npz",
        "sentence_vocabulary.json",
        "postings.npz",
        "texts.offsets.npy",
    ],
)
def test_a_missing_file_is_named_in_the_error(saved: tuple[Index, Path], name: str) -> None:
    file_of(saved[1], name).unlink()
    with pytest.raises(IndexCorrupt, match=name):
        load_index(saved[1], EXPECTED)


def test_an_old_sentence_table_is_outdated(saved: tuple[Index, Path]) -> None:
    # Segments share their term ids: other table rules mean every segment made anew, which `rag index` does.
    _, folder = saved
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["text"]["sentence_table"] = 3  # the version before the flag rules' digest was part of it
    path.write_text(json.dumps(manifest))
    (segment_folder(folder) / sentences.FILE).write_bytes(b"an older format")
    with pytest.raises(IndexOutdated, match="rag index --full"):
        load_index(folder, EXPECTED)


def test_other_word_rules_are_outdated(saved: tuple[Index, Path]) -> None:
    with pytest.raises(IndexOutdated, match="word rules"):
        load_index(saved[1], {**EXPECTED, "text": {**EXPECTED["text"], "language": "de"}})


@pytest.mark.parametrize("manifest", ["[]", '"text"', '{"format": 1}', '{"model": {}}', "null"])
def test_a_manifest_of_the_wrong_shape_is_corrupt(saved: tuple[Index, Path], manifest: str) -> None:
    (saved[1] / "manifest.json").write_text(manifest)
    with pytest.raises(IndexCorrupt, match="manifest.json"):
        store.read_manifest(saved[1])


@pytest.mark.parametrize("damage", ["missing", "malformed", "unknown"])
def test_a_manifest_with_bad_segments_names_the_manifest(saved: tuple[Index, Path], damage: str) -> None:
    path = saved[1] / "manifest.json"
    manifest = json.loads(path.read_text())
    if damage == "missing":
        del manifest["segments"]
    elif damage == "malformed":
        manifest["segments"] = [{"name": manifest["segments"][0]["name"]}]
    else:
        manifest["segments"][0]["name"] = "no-such-segment"
    path.write_text(json.dumps(manifest))
    # A segment the manifest names but the folder lacks is named by the file found missing.
    with pytest.raises(IndexCorrupt, match="no-such-segment" if damage == "unknown" else "manifest.json"):
        load_index(saved[1], EXPECTED)


@pytest.mark.parametrize("name", ["chunks.jsonl", "documents.jsonl"])
def test_files_that_disagree_are_corrupt(saved: tuple[Index, Path], name: str) -> None:
    path = segment_folder(saved[1]) / name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")  # a whole line lost: every line still parses
    with pytest.raises(IndexCorrupt, match="do not agree"):
        load_index(saved[1], EXPECTED)


@pytest.mark.parametrize("name", ["sentences.npy", "vectors.npy"])
def test_too_few_vectors_are_corrupt(saved: tuple[Index, Path], name: str) -> None:
    path = segment_folder(saved[1]) / name
    np.save(path, np.load(path)[:-1])
    with pytest.raises(IndexCorrupt, match="do not agree"):
        load_index(saved[1], EXPECTED)


def test_an_interrupted_swap_is_recovered(saved: tuple[Index, Path]) -> None:
    index, folder = saved
    os.rename(folder, folder.with_name(".index.old-123"))  # the crash came between the two renames
    manifest = store.read_manifest(folder)
    assert manifest.pop("documents") == [dataclasses.asdict(d) for d in index.documents]  # from the segments
    assert manifest == index.manifest
    assert folder.is_dir()
    assert not folder.with_name(".index.old-123").exists()
    assert_same_index(index, load_index(folder, EXPECTED))


def test_recovery_takes_the_newest_complete_leftover(saved: tuple[Index, Path]) -> None:
    index, folder = saved
    old = folder.with_name(".index.old-1")
    os.rename(folder, old)
    os.utime(old, ns=(1, 1))
    incomplete = folder.with_name(".index.old-2")  # newer, but without a manifest: not a complete index
    incomplete.mkdir()
    newer = folder.with_name(".index.old-3")
    seven = fake_index(seed=7)
    store.save(seven, newer)
    loaded = load_index(folder, EXPECTED)
    assert_same_index(seven, loaded)


def test_a_leftover_without_a_manifest_is_not_an_index(tmp_path: Path) -> None:
    (tmp_path / ".index.old-5").mkdir()
    with pytest.raises(IndexMissing):
        store.read_manifest(tmp_path / "index")


def test_a_stale_new_folder_does_not_break_loading(saved: tuple[Index, Path]) -> None:
    index, folder = saved
    stale = folder.with_name(".index.new-99999")
    stale.mkdir()
    (stale / "chunks.jsonl").write_text('{"half": ')
    assert_same_index(index, load_index(folder, EXPECTED))
    new = fake_index(seed=2)  # made once: two would differ in their built_at second
    store.save(new, folder)
    assert_same_index(new, load_index(folder, EXPECTED))


def test_a_save_that_fails_midway_keeps_the_previous_index(
    saved: tuple[Index, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, folder = saved

    def broken_write(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", broken_write)
    with pytest.raises(OSError):
        store.save(fake_index(seed=3), folder)
    monkeypatch.undo()
    assert_same_index(index, load_index(folder, EXPECTED))


def test_a_loaded_index_keeps_its_texts_after_a_rebuild_replaces_its_folder(saved: tuple[Index, Path]) -> None:
    # The server answers from a loaded index while a rebuild swaps a new folder in and removes the old one.
    _, folder = saved
    loaded = load_index(folder, EXPECTED)
    store.save(fake_index(seed=1), folder)
    assert loaded.document("alpha.txt").text == TEXTS["alpha.txt"]


def test_read_document_reads_one_text_without_loading_the_index(saved: tuple[Index, Path]) -> None:
    _, folder = saved
    doc = catalog.read_document(folder, "notes/beta.md")
    assert (doc.source, doc.title, doc.text) == ("notes/beta.md", "NOTES/BETA.MD", TEXTS["notes/beta.md"])
    with pytest.raises(NotFound):
        catalog.read_document(folder, "missing.txt")


def test_a_missing_texts_file_is_a_damaged_index(saved: tuple[Index, Path]) -> None:
    _, folder = saved
    (segment_folder(folder) / "texts.jsonl").unlink()
    with pytest.raises(IndexCorrupt, match="texts.jsonl"):
        load_index(folder, EXPECTED)
    with pytest.raises(IndexCorrupt, match="texts.jsonl"):
        catalog.read_document(folder, "alpha.txt")


def test_page_at_names_the_page_of_an_offset() -> None:
    entry = DocumentEntry("a.pdf", "A", "sha", 1, 1, 1, 1, "pdf", (0, 100, 250))
    assert [entry.page_at(o) for o in (0, 99, 100, 249, 250, 9999)] == [1, 1, 2, 2, 3, 3]
    assert DocumentEntry("a.txt", "A", "sha", 1, 1, 1, 1).page_at(5) is None


def test_the_sentence_table_version_follows_the_flag_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sentences.rules_digest()
    monkeypatch.setattr(sentences, "HEADING_WORDS", sentences.HEADING_WORDS + 1)
    assert sentences.rules_digest() != before
    assert sentences.VERSION.startswith(f"{sentences.LAYOUT}-")
