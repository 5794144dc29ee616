"""The local engine's segments: an index brought up to date one document at a time, with its merges, answers as
one built from scratch over the same documents does; what an update writes is the new segment and the manifest;
a crash at any step of it leaves a loadable index."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant, Settings, indexing
from rag.embedding import Encoder
from rag.errors import IndexCorrupt
from rag.indexing import segmented, segments, store
from tests.helpers import CORPUS, ROOT


def _paragraphs() -> dict[str, str]:
    """The bundled corpus cut into documents of a few paragraphs each: many small documents of real text."""
    docs = {}
    for path in sorted(CORPUS.glob("*.txt")):
        parts = [p for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.split()) > 5]
        for i in range(0, len(parts), 3):
            docs[f"{path.stem}/{i // 3:02d}.txt"] = "\n\n".join(parts[i : i + 3])
    return docs


def _questions() -> list[str]:
    lines = (ROOT / "bench" / "tuning.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _bundled(root: Path, encoder: Encoder) -> tuple[Path, Settings, segmented.SegmentedIndex]:
    """A copy of the bundled corpus below `root`, its settings, and its index built in full."""
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(corpus=corpus, index=root / "index")
    index, _ = indexing.build(settings, encoder)
    assert isinstance(index, segmented.SegmentedIndex)
    return corpus, settings, index


def _answers(assistant: Assistant, questions: list[str]) -> list[tuple]:
    out = []
    for question in questions:
        response = assistant.ask(question)
        answer = response.answer
        if answer is not None:  # every quote is the served text at its offsets
            assert assistant.index.document(answer.source).text[answer.start : answer.end] == answer.text
        out.append(
            (
                response.abstained,
                answer and (answer.source, answer.start, answer.end),
                round(response.confidence, 4),
                [(c.source, c.start, c.end) for c in response.citations],
            )
        )
    return out


@pytest.fixture(scope="module")
def updated_and_full(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> tuple[Assistant, Assistant]:
    """The same final corpus indexed by 80 single-document updates (adds, changes, removals, with their merges)
    and by one full build."""
    root = tmp_path_factory.mktemp("segments")
    docs = _paragraphs()
    names = sorted(docs)
    rng = random.Random(7)
    corpus = root / "corpus"
    corpus.mkdir()
    settings = Settings(corpus=corpus, index=root / "index")
    first = names[:5]
    for name in first:
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(docs[name], encoding="utf-8")
    indexing.build(settings, encoder)
    present = set(first)
    for step in range(80):
        absent = [n for n in names if n not in present]
        action = "add" if absent and (step % 4 != 3) else rng.choice(["change", "remove"])
        if action == "add":
            name = absent[0]
            (corpus / name).parent.mkdir(parents=True, exist_ok=True)
            (corpus / name).write_text(docs[name], encoding="utf-8")
            present.add(name)
        elif action == "change":
            name = rng.choice(sorted(present))
            (corpus / name).write_text(docs[name] + f"\n\nRevised in step {step}.", encoding="utf-8")
        else:
            name = rng.choice(sorted(present))
            (corpus / name).unlink()
            present.discard(name)
        _, report = indexing.build(settings, encoder)
        assert len(report.added) + len(report.changed) + len(report.removed) == 1  # one document's, not the index's
    updated = Assistant(settings, indexing.load(settings, encoder), encoder)
    full_settings = Settings(corpus=corpus, index=root / "full")
    full = Assistant(full_settings, indexing.build(full_settings, encoder)[0], encoder)
    return updated, full


def test_updates_and_merges_answer_as_a_full_build(updated_and_full: tuple[Assistant, Assistant]) -> None:
    updated, full = updated_and_full
    assert len(updated.index.stored) > 1  # segments were written and some merged, not one index rebuilt
    assert {d.source for d in updated.index.documents} == {d.source for d in full.index.documents}
    questions = _questions()
    assert _answers(updated, questions) == _answers(full, questions)


def test_bm25_and_sentence_statistics_equal_a_full_build(updated_and_full: tuple[Assistant, Assistant]) -> None:
    updated, full = updated_and_full
    assert updated.index.engine.count() == full.index.engine.count()
    a, b = updated.index.vocabulary, full.index.vocabulary
    assert a.sentences == b.sentences
    live = {t: int(a.doc_freq[i]) for i, t in enumerate(a.terms) if a.doc_freq[i] > 0}
    assert live == {t: int(b.doc_freq[i]) for i, t in enumerate(b.terms)}
    for question in _questions():
        terms = b.query_terms(question)
        everything = full.index.engine.count()  # all of them: chunks that tie may come in another order
        got = dict(updated.index.engine.search_lexical(terms, everything))
        expected = dict(full.index.engine.search_lexical(terms, everything))
        assert got.keys() == expected.keys()
        assert np.allclose([got[i] for i in expected], list(expected.values()), rtol=1e-5)


def test_a_removed_document_is_never_cited(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, _ = _bundled(tmp_path, encoder)
    (corpus / "harbour.txt").write_text("Kobe Harbour\n\nThe port of Kobe was rebuilt after the 1995 earthquake.")
    index, _ = indexing.build(settings, encoder, merge=False)
    assert Assistant(settings, index, encoder).ask("When was the port of Kobe rebuilt?").answer.source == "harbour.txt"
    (corpus / "harbour.txt").unlink()
    index, report = indexing.build(settings, encoder, merge=False)
    assert report.removed == ["harbour.txt"] and report.chunks_embedded == 0
    assert any("harbour.txt" in dead for dead in index.dead)  # its chunks are still on disk, marked dead
    for reopened in (index, indexing.load(settings, encoder)):
        response = Assistant(settings, reopened, encoder).ask("When was the port of Kobe rebuilt?")
        assert "harbour.txt" not in [c.source for c in response.citations]
        assert "harbour.txt" not in [i.split("#")[0] for i, _ in reopened.engine.search_lexical(["kobe", "port"], 50)]


def test_an_update_writes_one_segment_and_the_manifest(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, index = _bundled(tmp_path, encoder)
    base = settings.index / segments.FOLDER / index.stored[0].name
    before = {p: p.stat().st_mtime_ns for p in base.iterdir()}
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    index, report = indexing.build(settings, encoder)
    assert report.added == ["new.txt"] and len(index.stored) == 2
    assert {p: p.stat().st_mtime_ns for p in base.iterdir()} == before  # the old segment is not written again
    assert sorted(p.name for p in (settings.index / segments.FOLDER).iterdir()) == sorted(s.name for s in index.stored)


def test_an_update_from_disk_reads_no_chunk_or_vector_of_the_older_segments(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, settings, _ = _bundled(tmp_path, encoder)
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    read: list[str] = []
    real = segments.read_chunks
    monkeypatch.setattr(segments, "read_chunks", lambda folder: read.append(folder.name) or real(folder))
    index, report = indexing.build(settings, encoder, merge=False)  # as `rag index` does: from disk
    (corpus / "000_db4dff55abc0f5d8.txt").unlink()
    index, removal = indexing.build(settings, encoder, merge=False)
    assert report.added == ["new.txt"] and removal.removed == ["000_db4dff55abc0f5d8.txt"] and read == []
    bot = Assistant(settings, index, encoder)  # served: what was left on disk is read before the first question
    assert sorted(read) == sorted(s.name for s in index.stored)
    assert bot.ask("Where will Japan fund a hydrogen plant?").answer.source == "new.txt"
    assert _answers(bot, _questions()[:8]) == _answers(
        Assistant(settings, indexing.load(settings, encoder), encoder), _questions()[:8]
    )


def test_a_file_damaged_since_a_lazy_load_is_named_when_it_is_read(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, index = _bundled(tmp_path, encoder)
    chunks = settings.index / segments.FOLDER / index.stored[0].name / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:-40])  # a torn end
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    index, report = indexing.build(settings, encoder, merge=False)  # reads no chunk of the damaged segment
    assert report.added == ["new.txt"]
    with pytest.raises(IndexCorrupt, match="chunks.jsonl.*rag index --full"):
        indexing.merge_segments(settings, index, everything=True)  # a merge reads it: a clear error, not a crash
    with pytest.raises(IndexCorrupt, match="chunks.jsonl"):
        indexing.load(settings, encoder)  # as `rag ask` and `rag serve` find it


def test_other_word_rules_make_the_terms_again_and_embed_only_what_changed(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, _ = _bundled(tmp_path, encoder)
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    other = dataclasses.replace(settings, language="none")  # no stop words, no stems: every term differs
    index, report = indexing.build(other, encoder)
    assert report.rebuilt is not None and "other word rules" in report.rebuilt
    assert report.added == ["new.txt"] and report.chunks_embedded == 1  # the others' vectors are kept
    assert isinstance(index, segmented.SegmentedIndex) and len(index.stored) == 1
    assert indexing.load(other, encoder).manifest["text"]["language"] is None
    full = dataclasses.replace(other, index=tmp_path / "full")
    fresh, _ = indexing.build(full, encoder, full=True)
    assert index.vocabulary.terms == fresh.vocabulary.terms
    questions = _questions()[:10]
    assert _answers(Assistant(other, index, encoder), questions) == _answers(Assistant(full, fresh, encoder), questions)


def test_compact_joins_every_segment_and_answers_the_same(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, _ = _bundled(tmp_path, encoder)
    for i in range(3):
        (corpus / f"n{i}.txt").write_text(f"Note {i}\n\nThe museum number {i} opened in {1990 + i} in Kyiv.")
        index, _ = indexing.build(settings, encoder)
    (corpus / "n1.txt").unlink()
    index, _ = indexing.build(settings, encoder)
    before = _answers(Assistant(settings, index, encoder), ["When did museum number 2 open?", "What opened in 1991?"])
    compacted = indexing.merge_segments(settings, index, everything=True)
    assert len(compacted.stored) == 1 and not compacted.dead[0]
    reopened = indexing.load(settings, encoder)
    assert len(reopened.stored) == 1
    after = _answers(Assistant(settings, reopened, encoder), ["When did museum number 2 open?", "What opened in 1991?"])
    assert after == before


def test_the_merge_policy() -> None:
    def picked(sizes: list[int], dead: list[int] | None = None) -> range | None:
        stored = [_FakeStored(n, d) for n, d in zip(sizes, dead or [0] * len(sizes), strict=True)]
        return segments.policy(stored, [frozenset(s.dead_sources) for s in stored])  # type: ignore[arg-type]

    assert picked([5000] + [3] * 9) is None
    assert picked([5000] + [3] * 10) == range(1, 11)  # ten of one size level, the newest
    assert picked([5000] + [30] * 10 + [2] * 3) == range(1, 11)  # the oldest run of ten, newer ones or not
    assert picked([5000] + [2] * 3) is None
    assert picked([5000, 0, 0, 3, 40]) == range(1, 4)  # left without chunks: merged with the next up to a small one
    assert picked([0] * 12 + [300] * 2) == range(0, 12)
    assert picked([5000, 40] + [60] * 9) == range(1, 11)
    assert picked([5000, 10, 10], dead=[0, 6, 0]) == range(1, 2)  # mostly dead: rewritten without them
    assert picked([5000, 10], dead=[2000, 0]) is None


class _FakeStored:
    """What the policy reads of a segment: its chunks and how many of them each dead source held."""

    def __init__(self, chunks: int, dead: int) -> None:
        self.dead_sources = [f"d{i}" for i in range(dead)]
        self.part = self
        self.size = chunks

    def chunk_rows(self, source: str) -> range:
        return range(1)


@pytest.mark.parametrize("step", range(6))
def test_a_crash_at_any_step_of_an_update_leaves_a_loadable_index(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    corpus, settings, old = _bundled(tmp_path, encoder)
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    (corpus / "001_6cd020ec01843fcd.txt").unlink()
    calls = {"n": 0}
    real = {name: getattr(os, name) for name in ("rename", "replace", "fsync")}

    def crashing(name: str):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == step + 1:
                raise KeyboardInterrupt  # a kill: nothing after it runs
            return real[name](*args, **kwargs)

        return call

    for name in real:
        monkeypatch.setattr(segments.os, name, crashing(name))
    with pytest.raises(KeyboardInterrupt):
        indexing.build(settings, encoder, merge=False)
    monkeypatch.undo()
    loaded = indexing.load(settings, encoder)
    sources = {d.source for d in loaded.documents}
    assert sources in (
        {d.source for d in old.documents},
        {d.source for d in old.documents} - {"001_6cd020ec01843fcd.txt"} | {"new.txt"},
    )
    response = Assistant(settings, loaded, encoder).ask("What did Japan and Ukraine agree on in the security sector?")
    assert response.answer is None or response.answer.source in sources
    index, _ = indexing.build(settings, encoder)  # the next build finishes the job and clears what was left
    assert {d.source for d in index.documents} == {p.name for p in corpus.iterdir()}
    assert sorted(p.name for p in (settings.index / segments.FOLDER).iterdir()) == sorted(s.name for s in index.stored)
    assert not list(settings.index.glob(".manifest.*"))


def test_a_server_update_starts_from_the_index_it_serves(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, settings, served = _bundled(tmp_path, encoder)
    (corpus / "new.txt").write_text("Hydrogen Plans\n\nJapan will fund a hydrogen plant near Odesa from 2027.")

    def no_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the index was read from disk")

    monkeypatch.setattr(store, "load", no_load)
    index, report = indexing.build(settings, encoder, loaded=served)
    assert report.added == ["new.txt"] and isinstance(index, segmented.SegmentedIndex)
    monkeypatch.undo()
    other, _ = indexing.build(settings, encoder)  # another process's update: `served` is no longer on disk
    (corpus / "later.txt").write_text("Later\n\nThe embassy moved to a new building in 2028.")
    assert other.manifest["id"] != index.manifest["id"]
    index, report = indexing.build(settings, encoder, loaded=served)  # stale: read from disk instead
    assert report.added == ["later.txt"] and "new.txt" in {d.source for d in index.documents}


def test_a_targeted_update_looks_at_its_paths_only(tmp_path: Path, encoder: Encoder) -> None:
    corpus, settings, index = _bundled(tmp_path, encoder)
    (corpus / "news").mkdir()
    (corpus / "news" / "a.txt").write_text("Hydrogen\n\nJapan will fund a hydrogen plant near Odesa from 2027.")
    (corpus / "news" / ".draft.txt").write_text("Hidden\n\nA hidden draft is never indexed.")
    (corpus / "other.txt").write_text("Other\n\nThis file changed too, but the update is not told about it.")
    index, report = indexing.build(settings, encoder, loaded=index, paths=["news"])
    assert (report.added, report.removed) == (["news/a.txt"], [])
    assert "other.txt" not in {d.source for d in index.documents}
    shutil.rmtree(corpus / "news")
    (corpus / "000_db4dff55abc0f5d8.txt").unlink()
    index, report = indexing.build(settings, encoder, loaded=index, paths=["news", "000_db4dff55abc0f5d8.txt"])
    assert (report.added, report.removed) == ([], ["000_db4dff55abc0f5d8.txt", "news/a.txt"])
    (corpus / ".hidden.txt").write_text("Hidden\n\nA hidden file is never indexed.")
    index, report = indexing.build(settings, encoder, loaded=index, paths=["unknown.bin", ".hidden.txt"])
    assert (report.added, report.changed, report.removed) == ([], [], [])
    index, report = indexing.build(settings, encoder, loaded=index)  # a full scan finds the rest
    assert report.added == ["other.txt"]
    assert {d.source for d in index.documents} == {p.name for p in corpus.glob("*.txt") if p.name != ".hidden.txt"}
