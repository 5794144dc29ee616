"""Incremental builds with the real model on small throw-away corpora."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import indexing
from rag.config import Settings
from rag.embedding import Encoder
from rag.engines.local import LocalEngine
from rag.errors import CorpusError
from rag.indexing import catalog, store
from rag.indexing.store import Index
from rag.readers.documents import Skipped
from rag.text.chunking import make_chunks

from .helpers import SMALL_DOCS, write_corpus

pytestmark = pytest.mark.slow  # the real model

NEW_DOC = (
    "Mount Fuji\n\nMount Fuji is 3,776 metres high. Its last eruption began in December 1707. "
    "Climbers usually start from the fifth station."
)


def build(settings: Settings, encoder: Encoder, **kwargs: Any) -> tuple[Index, indexing.BuildReport]:
    return indexing.build(settings, encoder, progress=False, **kwargs)


def load(settings: Settings, encoder: Encoder) -> Index:
    return indexing.load(settings, encoder)


def chunk_count(text: str, settings: Settings) -> int:
    return len(make_chunks("x", text, settings.chunk_words, settings.chunk_overlap))


def all_chunk_vectors(index: Index) -> np.ndarray:
    """The vectors of the live chunks, documents in index order, from whichever segment holds each."""
    return np.vstack([local(index).document_vectors(d.source)[0] for d in index.documents])


def all_sentence_vectors(index: Index) -> np.ndarray:
    return np.vstack([local(index).document_vectors(d.source)[1] for d in index.documents])


def local(index: Index) -> LocalEngine:
    assert isinstance(index.engine, LocalEngine)
    return index.engine


def assert_same_index(a: Index, b: Index) -> None:
    assert a.chunks == b.chunks
    assert a.documents == b.documents
    np.testing.assert_array_equal(all_chunk_vectors(a), all_chunk_vectors(b))
    np.testing.assert_array_equal(all_sentence_vectors(a), all_sentence_vectors(b))


def rewrite(path: Path, text: str) -> None:
    """Write `text` and move the modification time on, so a change is visible even on coarse clocks."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


@pytest.fixture
def built(small_corpus: Settings, encoder: Encoder) -> tuple[Settings, Index]:
    index, _ = build(small_corpus, encoder)
    return small_corpus, index


def test_first_build_adds_every_document(small_corpus: Settings, encoder: Encoder) -> None:
    index, report = build(small_corpus, encoder)
    assert report.added == sorted(SMALL_DOCS)
    assert report.changed == report.removed == report.unchanged == report.skipped == []
    assert report.chunks_embedded == report.chunks == len(index.chunks) > 0
    assert report.sentences_embedded == len(all_sentence_vectors(index))
    assert_same_index(index, load(small_corpus, encoder))


def test_chunks_hold_the_exact_text_of_their_own_document(built: tuple[Settings, Index]) -> None:
    settings, index = built
    sources = [c.source for c in index.chunks]
    assert sources == sorted(sources)  # grouped by document, in corpus order
    for chunk in index.chunks:
        text = (settings.corpus / chunk.source).read_text(encoding="utf-8")
        assert text[chunk.start : chunk.end] == chunk.text
        assert all(chunk.start <= a < b <= chunk.end for a, b in chunk.sentences)


def test_second_build_embeds_nothing(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    index, report = build(settings, encoder)
    assert report.chunks_embedded == report.sentences_embedded == 0
    assert report.unchanged == sorted(SMALL_DOCS)
    assert report.added == report.changed == report.removed == []
    assert_same_index(first, index)


def test_adding_a_document_embeds_only_its_chunks(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    write_corpus(settings.corpus, {"fuji.txt": NEW_DOC})
    index, report = build(settings, encoder)
    assert report.added == ["fuji.txt"]
    assert report.unchanged == sorted(SMALL_DOCS)
    assert report.chunks_embedded == chunk_count(NEW_DOC, settings)
    assert report.chunks == len(first.chunks) + report.chunks_embedded
    assert [c for c in index.chunks if c.source != "fuji.txt"] == first.chunks
    old, new = local(index).segments  # the new document in a segment of its own, the first one as it was
    assert index.manifest["segments"][0] == first.manifest["segments"][0]  # not rewritten
    assert old.chunks == local(first).segments[0].chunks
    assert [c.source for c in new.chunks] == ["fuji.txt"] * report.chunks_embedded
    assert_same_index(index, load(settings, encoder))


def test_changing_a_document_embeds_only_its_chunks(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    changed = "Green Tea Notes\n\nMatcha is ground from shade-grown leaves. It is whisked, not steeped."
    rewrite(settings.corpus / "tea.txt", changed)
    index, report = build(settings, encoder)
    assert report.changed == ["tea.txt"]
    assert report.added == report.removed == []
    assert report.chunks_embedded == chunk_count(changed, settings)
    tea = [c.text for c in index.chunks if c.source == "tea.txt"]
    assert any("Matcha" in t for t in tea)
    assert not any("Shizuoka" in c.text for c in index.chunks)
    assert [s["deleted"] for s in index.manifest["segments"]] == [["tea.txt"], []]  # the old copy is dead
    assert [c.source for c in local(index).segments[-1].chunks] == ["tea.txt"] * len(tea)
    assert catalog.read_document(settings.index, "tea.txt").text == changed  # from the newest segment
    assert_same_index(index, load(settings, encoder))


def test_deleting_a_document_removes_its_chunks(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    (settings.corpus / "bridges.md").unlink()
    index, report = build(settings, encoder)
    assert report.removed == ["bridges.md"]
    assert report.chunks_embedded == 0
    assert all(c.source != "bridges.md" for c in index.chunks)
    assert [d.source for d in index.documents] == ["tea.txt", "trains/shinkansen.txt"]
    assert len(all_sentence_vectors(index)) == sum(d.sentences for d in index.documents)
    assert index.manifest["segments"][0]["deleted"] == ["bridges.md"]  # nothing rewritten: its chunks are dead
    assert local(index).count() == len(index.chunks)
    assert_same_index(index, load(settings, encoder))


def test_full_rebuild_embeds_everything(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    index, report = build(settings, encoder, full=True)
    assert report.chunks_embedded == len(index.chunks) == len(first.chunks)
    assert index.chunks == first.chunks
    np.testing.assert_allclose(all_chunk_vectors(index), all_chunk_vectors(first), atol=1e-5)


def test_other_chunk_settings_re_embed_everything(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, first = built
    other = dataclasses.replace(settings, chunk_words=10, chunk_overlap=0)
    index, report = build(other, encoder)
    assert report.chunks_embedded == len(index.chunks) > len(first.chunks)
    assert index.manifest["chunker"]["chunk_words"] == 10


def test_reused_vectors_equal_freshly_computed_ones(built: tuple[Settings, Index], encoder: Encoder) -> None:
    settings, _ = built
    write_corpus(settings.corpus, {"fuji.txt": NEW_DOC})
    index, report = build(settings, encoder)
    assert report.unchanged  # most vectors came from the previous index
    # A chunk's vector is the normalized mean of its sentences' vectors.
    fresh_chunks = np.vstack(
        [encoder.encode([c.text[a - c.start : b - c.start] for a, b in c.sentences]).mean(0) for c in index.chunks]
    )
    fresh_chunks /= np.linalg.norm(fresh_chunks, axis=1, keepdims=True)
    np.testing.assert_allclose(all_chunk_vectors(index), fresh_chunks, atol=1e-4)
    sentences = []
    for doc in index.documents:
        text = (settings.corpus / doc.source).read_text(encoding="utf-8")
        first = index.first_chunk(doc.source)
        doc_chunks = index.chunks[first : first + doc.chunks]
        spans = sorted({s for c in doc_chunks for s in c.sentences})
        assert len(spans) == doc.sentences
        sentences += [text[a:b] for a, b in spans]
    np.testing.assert_allclose(all_sentence_vectors(index), encoder.encode(sentences), atol=2e-3)  # float16 on disk


def test_skipped_files_are_reported_and_recorded(small_corpus: Settings, encoder: Encoder) -> None:
    write_corpus(small_corpus.corpus, {"scan.txt": b"\x89PNG\x00\x00", "empty.md": ""})
    index, report = build(small_corpus, encoder)
    assert sorted(s.source for s in report.skipped) == ["empty.md", "scan.txt"]
    assert all(isinstance(s, Skipped) and s.reason for s in report.skipped)
    assert sorted(index.manifest["skipped"]) == ["empty.md", "scan.txt"]
    assert report.to_dict()["skipped"][0].keys() == {"source", "reason"}
    assert "2 skipped" in report.summary()


def test_a_corpus_without_readable_documents_is_refused(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"empty.txt": "", "image.txt": b"\x00\x01", "notes.pdf": "x"})
    with pytest.raises(CorpusError, match="no readable"):
        build(Settings(corpus=corpus, index=tmp_path / "index"), encoder)
    assert not (tmp_path / "index").exists()


def test_a_missing_corpus_folder_is_refused(tmp_path: Path, encoder: Encoder) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        build(Settings(corpus=tmp_path / "nowhere", index=tmp_path / "index"), encoder)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_document_of_stop_words_only_can_be_indexed(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"hamlet.txt": "To be, or not to be."})
    index, report = build(Settings(corpus=corpus, index=tmp_path / "index"), encoder)
    assert report.added == ["hamlet.txt"]


def test_is_stale_is_false_right_after_a_build(built: tuple[Settings, Index]) -> None:
    settings, index = built
    assert indexing.is_stale(settings, index) is False
    assert indexing.is_stale(settings, store.read_manifest(settings.index)) is False


def test_is_stale_notices_an_added_document(built: tuple[Settings, Index]) -> None:
    settings, index = built
    write_corpus(settings.corpus, {"more/fuji.md": NEW_DOC})
    assert indexing.is_stale(settings, index) is True


def test_is_stale_notices_a_changed_document(built: tuple[Settings, Index]) -> None:
    settings, index = built
    rewrite(settings.corpus / "tea.txt", SMALL_DOCS["tea.txt"].replace("May", "June"))
    assert indexing.is_stale(settings, index) is True


def test_is_stale_notices_a_removed_document(built: tuple[Settings, Index]) -> None:
    settings, index = built
    (settings.corpus / "trains" / "shinkansen.txt").unlink()
    assert indexing.is_stale(settings, index) is True


def test_a_touched_but_unchanged_document_is_not_stale_and_not_re_embedded(
    built: tuple[Settings, Index], encoder: Encoder
) -> None:
    settings, index = built
    rewrite(settings.corpus / "tea.txt", SMALL_DOCS["tea.txt"])
    assert indexing.is_stale(settings, index) is False
    rebuilt, report = build(settings, encoder)
    assert report.chunks_embedded == 0
    entry = next(d for d in rebuilt.documents if d.source == "tea.txt")
    assert entry.mtime_ns == (settings.corpus / "tea.txt").stat().st_mtime_ns


def test_an_unchanged_unreadable_file_does_not_make_the_index_stale(small_corpus: Settings, encoder: Encoder) -> None:
    write_corpus(small_corpus.corpus, {"empty.txt": ""})
    index, _ = build(small_corpus, encoder)
    assert indexing.is_stale(small_corpus, index) is False


def test_is_stale_notices_a_skipped_file_that_became_readable(small_corpus: Settings, encoder: Encoder) -> None:
    write_corpus(small_corpus.corpus, {"draft.txt": ""})
    index, _ = build(small_corpus, encoder)
    rewrite(small_corpus.corpus / "draft.txt", "The draft now has text in it.")
    assert indexing.is_stale(small_corpus, index) is True


@pytest.mark.parametrize(
    "interruption", [RuntimeError("encoder crashed"), KeyboardInterrupt()], ids=["error", "ctrl-c"]
)
def test_a_build_that_fails_midway_leaves_the_previous_index(
    small_corpus: Settings,
    encoder: Encoder,
    monkeypatch: pytest.MonkeyPatch,
    interruption: BaseException,
) -> None:
    settings = dataclasses.replace(small_corpus, batch_size=2)
    before, _ = build(settings, encoder)
    write_corpus(settings.corpus, {"fuji.txt": NEW_DOC})
    rewrite(settings.corpus / "tea.txt", "Green Tea Notes\n\nSencha is the most common green tea.")

    original = Encoder.encode
    calls = []

    def encode_then_fail(self: Encoder, texts: Any, batch_size: int = 32, progress: Any = None) -> np.ndarray:
        calls.append(len(texts))
        original(self, texts[:batch_size], batch_size, progress)  # the first batch goes through
        raise interruption

    monkeypatch.setattr(Encoder, "encode", encode_then_fail)
    with pytest.raises(type(interruption)):
        build(settings, encoder)
    monkeypatch.undo()
    assert calls, "the build reached the encoder"
    assert_same_index(before, load(settings, encoder))
    assert indexing.is_stale(settings, before)
    index, report = build(settings, encoder)  # the next build picks up the same work
    assert report.added == ["fuji.txt"]
    assert report.changed == ["tea.txt"]
    assert not list(settings.index.parent.glob(".index.new-*"))
