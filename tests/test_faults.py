"""Fault tolerance: a build killed at any moment, a swap cut between its two renames, damaged index files, the
corpus changing under a build, two builds at once, and a rebuild through the server while questions are asked.

Everything here uses the real model and throw-away corpora in `tmp_path`; the `rag` processes started here are
killed (their whole process group) whatever happens.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import errno
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from rag import embedding, indexing
from rag.cli import main
from rag.config import FIELDS, Settings
from rag.embedding import Encoder
from rag.errors import IndexCorrupt
from rag.indexing import builder, store
from rag.pipeline import Assistant
from rag.readers.documents import content_hash
from rag.server.api import create_app

from .helpers import SMALL_DOCS, reuse, small_index, write_corpus

pytestmark = pytest.mark.slow  # the real model, and `rag` processes

RAG = Path(sys.executable).parent / "rag"
QUESTION = "When did the first Shinkansen line open?"
WAIT = 60.0  # seconds anything here may take at most (a build, a server start, a background rebuild)

DocSet = frozenset[tuple[str, str]]  # (source, sha256) of each document of an index or a corpus


# ---------------------------------------------------------------------------------------------------------------
# Helpers

_PLACES = [
    "Kyoto", "Lisbon", "Valparaiso", "Tromso", "Hobart", "Cusco", "Tbilisi", "Zanzibar", "Quebec", "Bergen",
    "Nagasaki", "Porto", "Dubrovnik", "Galway", "Oaxaca", "Sapporo", "Tallinn", "Cork", "Hue", "Ushuaia",
]  # fmt: skip
_SITES = [
    "harbour", "library", "observatory", "railway station", "botanical garden", "lighthouse", "market hall",
    "cathedral", "tram network", "textile mill", "ferry terminal", "fish market", "university", "museum",
]  # fmt: skip
_EVENTS = [
    "was rebuilt after a fire", "opened to the public", "was extended by a new wing", "was restored by volunteers",
    "received a national heritage listing", "was connected to the regional grid", "hosted an international fair",
    "closed for two years of repairs", "was bought by the city council", "won an architecture prize",
]  # fmt: skip
_REMARKS = [
    "Visitors often arrive by boat in the early morning.",
    "The local council publishes its budget for the site every spring.",
    "Most of the original timber came from forests in the north.",
    "A small exhibition explains the history of the place.",
    "Guided tours run twice a day during the summer months.",
    "The building stands on reclaimed land near the river mouth.",
    "Engineers have monitored the foundations with sensors since 2011.",
    "Schools bring their pupils to see the old machinery.",
    "The roof was covered with slate from a nearby quarry.",
    "Local musicians give a free concert there on the first Sunday of each month.",
]


def generated_docs(seed: int, count: int, prefix: str = "gen") -> dict[str, str]:
    """`count` documents of plausible prose (a title line, then one paragraph of 8 to 12 sentences)."""
    rng = random.Random(seed)
    docs = {}
    for i in range(count):
        place, site = _PLACES[i % len(_PLACES)], rng.choice(_SITES)
        sentences = []
        for _ in range(rng.randint(8, 12)):
            year, kind = rng.randint(1850, 2020), rng.random()
            if kind < 0.45:
                sentences.append(f"The {site} of {place} {rng.choice(_EVENTS)} in {year}.")
            elif kind < 0.7:
                sentences.append(f"In {year} about {rng.randint(2, 900) * 100:,} people visited the {site} in {place}.")
            else:
                sentences.append(rng.choice(_REMARKS))
        docs[f"{prefix}/{place.lower()}_{i:02d}.txt"] = f"The {site.title()} of {place}\n\n" + " ".join(sentences)
    return docs


def doc_set(built: Mapping[str, Any] | store.Index) -> DocSet:
    """The documents of a loaded index, or of a manifest as `store.read_manifest` reads it (an index's manifest in
    memory lists no documents: the local engine's are in its segments)."""
    if isinstance(built, store.Index):
        return frozenset((d.source, d.sha256) for d in built.documents)
    return frozenset((d["source"], d["sha256"]) for d in built["documents"])


def corpus_set(docs: Mapping[str, str]) -> DocSet:
    return frozenset((source, content_hash(text.encode("utf-8"))) for source, text in docs.items())


def set_corpus(folder: Path, docs: Mapping[str, str]) -> None:
    """Make `folder` hold exactly `docs`: write what differs, delete what is not in `docs`."""
    for path in [p for p in folder.rglob("*") if p.is_file()]:
        if path.relative_to(folder).as_posix() not in docs:
            path.unlink()
    for source, text in docs.items():
        path = folder / source
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_corpus(folder, {source: text})


def leftovers(index: Path) -> list[str]:
    """The temporary folders of a save (`.index.new-PID`, `.index.old-PID`) next to `index`."""
    return sorted(p.name for p in index.parent.glob(f".{index.name}.*-*") if p.is_dir())


def in_place_leftovers(index: Path) -> list[str]:
    """What an update saved in place leaves in `index` when it is killed: its segment folder in the writing
    (`segments/.NAME.tmp`), a segment folder its manifest does not name (yet, or any more: merged away), or the
    manifest's temporary file (`.manifest.*.tmp`)."""
    try:
        named = {s["name"] for s in json.loads((index / "manifest.json").read_text(encoding="utf-8"))["segments"]}
    except (OSError, ValueError, KeyError):
        named = set()
    root = index / "segments"
    found = [f"segments/{p.name}" for p in (root.iterdir() if root.is_dir() else ()) if p.name not in named]
    return sorted(found + [p.name for p in index.glob(".manifest.*.tmp")])


def rag_env() -> dict[str, str]:
    """This environment without any RAG_* setting (RAG_CACHE, where the ONNX export lives, is kept)."""
    settings = {f"RAG_{name.upper()}" for name, _, _ in FIELDS}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_NO_ADVISORY_WARNINGS="1", PYTHONUNBUFFERED="1")
    return env


def start_rag(*args: str | Path, **kwargs: Any) -> subprocess.Popen[str]:
    """`rag ARGS` in its own process group (so that killing the group kills all of it)."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen([str(RAG), *map(str, args)], env=rag_env(), start_new_session=True, text=True, **kwargs)


def kill_group(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Signal the process group of `proc` (if still there) and reap `proc`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def run_rag(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = start_rag(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.returncode is None:
            kill_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def load(settings: Settings, encoder: Encoder) -> store.Index:
    return indexing.load(settings, encoder)


def assert_answers(settings: Settings, index: store.Index, encoder: Encoder, question: str = QUESTION) -> None:
    response = Assistant(settings, index, encoder).ask(question)
    assert response.citations, f"no citation for {question!r}"


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> None:
    """Encoders made inside the code under test (`Assistant.open`, the CLI) reuse the session's model."""
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))


@pytest.fixture
def small(tmp_path: Path, encoder: Encoder) -> Settings:
    """SMALL_DOCS in `tmp_path/corpus`, indexed in `tmp_path/index`."""
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", SMALL_DOCS), index=tmp_path / "index")
    indexing.build(settings, encoder, progress=False)
    return settings


def rewrite(path: Path, text: str) -> None:
    """Write `text` and move the modification time on, so a change is visible even on coarse clocks."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


TEA_V2 = SMALL_DOCS["tea.txt"] + " The second flush is picked in late June and tastes stronger."


# ---------------------------------------------------------------------------------------------------------------
# 1. SIGKILL during `rag index`, at 20+ moments of a build


@dataclass
class Kill:
    delay: float  # seconds from the start of the process to the kill
    fraction: float  # delay / the duration of one whole build
    # "save": sent once the `.index.new-PID` folder (an update: its `segments/.NAME.tmp` folder) had appeared;
    # "swap": once it was renamed
    aim: str = ""
    exited_first: bool = False  # the build had already finished when the kill came
    found: list[str] = field(default_factory=list)  # leftover folders (an update: files too) of the save
    index_missing: bool = False  # the kill came between the two renames of the swap
    outcome: str = ""  # "old" or "new": which index the kill left behind
    save_seen: float = 0.0  # for an aimed kill: when the save began

    @property
    def in_save(self) -> bool:
        return bool(self.found) or self.index_missing

    @property
    def marks(self) -> str:
        found = " ".join(self.found)
        return "".join(
            mark
            for mark, on in [
                ("N", ".new-" in found or ".tmp" in found),
                ("U", "segments/" in found and ".tmp" not in found),  # a segment renamed, not named yet
                ("M", self.index_missing),
                ("L", ".old-" in found and not self.index_missing),
                ("+", self.aim == "save"),
                ("^", self.aim == "swap"),
                ("(done)", self.exited_first),
            ]
            if on
        )


def writing_segments(index: Path) -> set[str]:
    """The segment folders an update is writing in `index` (`segments/.NAME.tmp`)."""
    return {p.name for p in (index / "segments").glob(".*.tmp")}


def own_new_folder(index: Path, pid: int, full: bool = True, known: frozenset[str] = frozenset()) -> bool:
    """Whether the build `pid` is writing its copy: a full build's `.index.new-PID-*` folder, an update's segment
    folder (one not in `known`, those of killed builds before it)."""
    if not full:
        return bool(writing_segments(index) - known)
    return any(index.parent.glob(f".{index.name}.new-{pid}-*"))


def wait_for_save(
    proc: subprocess.Popen[str], index: Path, deadline: float, full: bool = True, known: frozenset[str] = frozenset()
) -> bool:
    """Poll until the build's `.index.new-PID-*` folder (an update: its segment folder) appears (True) or the
    process ends (False)."""
    while proc.poll() is None and time.monotonic() < deadline:
        if own_new_folder(index, proc.pid, full, known):
            return True
        time.sleep(0.001)
    return False


# `rag index --full` writes a new index folder and swaps it in; `rag index` (an update) writes a new segment and
# the manifest in place, in the index folder, and merges segments as the policy says, each merge saved in place too.
@pytest.mark.parametrize("full", [True, False], ids=["full", "update"])
def test_sigkill_at_any_moment_of_rag_index_leaves_the_old_or_the_new_index(
    tmp_path: Path, encoder: Encoder, full: bool
) -> None:
    started = time.monotonic()
    rng = random.Random(20240611)
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    settings = Settings(corpus=corpus, index=index)
    v1 = {**SMALL_DOCS, **generated_docs(seed=1, count=15)}
    v2 = dict(v1)
    gen = sorted(s for s in v1 if s.startswith("gen/"))
    for source in gen[:2]:  # two changed, two removed, two added
        v2[source] = v1[source] + " A new visitor centre opened beside it last autumn."
    for source in gen[2:4]:
        del v2[source]
    v2.update(generated_docs(seed=2, count=2, prefix="added"))
    versions = {corpus_set(v1): v1, corpus_set(v2): v2}
    assert len(versions) == 2

    write_corpus(corpus, v1)
    first = run_rag("--corpus", corpus, "--index", index, "index")
    assert first.returncode == 0, first.stderr
    assert doc_set(store.read_manifest(index)) == corpus_set(v1)

    # One whole build, on a copy, to spread the kills over its duration and see when the save starts.
    build = ["index", "--full"] if full else ["index"]
    probe = tmp_path / "probe"
    shutil.copytree(index, probe)
    set_corpus(corpus, v2)
    t0 = time.monotonic()
    proc = start_rag("--corpus", corpus, "--index", probe, *build)
    try:
        saw_save = wait_for_save(proc, probe, t0 + 120, full)
        save_at = time.monotonic() - t0
        assert proc.wait(120) == 0
    finally:
        kill_group(proc)
    duration = time.monotonic() - t0
    assert saw_save, "the probe build never showed its .new- folder (an update: its segment folder)"
    shutil.rmtree(probe)

    cli_checked, current = False, corpus_set(v2)

    def trial(kill: Kill) -> None:
        """One `rag index --full` (or `rag index`: an update) killed as `kill` says; then check what it left."""
        nonlocal cli_checked, current
        before = doc_set(store.read_manifest(index))
        new = corpus_set(v2) if before == corpus_set(v1) else corpus_set(v1)
        set_corpus(corpus, versions[new])  # the corpus always differs from the index the killed run replaces
        current = new
        known = frozenset(writing_segments(index))  # what killed updates left: the next build removes it
        left_before = set(in_place_leftovers(index))
        t0 = time.monotonic()
        proc = start_rag("--corpus", corpus, "--index", index, *build)
        try:
            if kill.aim:
                assert wait_for_save(proc, index, t0 + 120, full, known), "the build ended before its save was seen"
                kill.save_seen = time.monotonic() - t0
                while kill.aim == "swap" and proc.poll() is None and own_new_folder(index, proc.pid, full, known):
                    time.sleep(0.001)
                time.sleep(kill.delay)
                kill.delay = time.monotonic() - t0
            else:
                time.sleep(max(0.0, kill.delay - (time.monotonic() - t0)))
            kill.exited_first = proc.poll() is not None
        finally:
            kill_group(proc)
        kill.found = [n for n in leftovers(index) if f"-{proc.pid}-" in n]  # this run's, not older ones
        kill.found += [n for n in in_place_leftovers(index) if n not in left_before]
        kill.index_missing = not index.exists()
        if not full:
            assert not kill.index_missing and not leftovers(index), "an update moved the index folder"

        if kill.in_save and not cli_checked:
            # What `rag ask` makes of this state (no corpus: it answers from the index as it is, never rebuilds).
            cli_checked = True
            r = run_rag("--corpus", tmp_path / "no-corpus", "--index", index, "ask", QUESTION, "--json")
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["citations"]

        # The state the kill left, read directly (`rag ask` over the corpus would rebuild a stale index first).
        manifest = store.read_manifest(index)  # finishes a swap cut between its two renames
        loaded = load(settings, encoder)
        after = doc_set(loaded)
        assert after == doc_set(manifest)
        assert after in (before, new), f"a mix after a kill at {kill.delay:.2f} s: {sorted(after ^ before)}"
        kill.outcome = "old" if after == before else "new"
        assert len(loaded.chunks) > 0 and len(loaded.documents) == len(after)
        assert loaded.engine.count() == len(loaded.chunks) == sum(d.chunks for d in loaded.documents)
        assert_answers(settings, loaded, encoder)
        if kill.exited_first:
            assert kill.outcome == "new"

    # First 3 kills aimed at the save (once the .new- folder, or the update's segment folder, exists, after 0 to
    # 100 ms more) and 1 right after the swap (once that folder is gone: renamed; an update's manifest is replaced
    # after that): load times vary too much for chance alone to hit them reliably. They also tell when the save
    # begins now, to correct the probe's duration.
    kills: list[Kill] = []
    for aim, extra in [("save", 0.0), ("save", 0.0), ("save", rng.uniform(0, 0.1)), ("swap", 0.0)]:
        kills.append(Kill(extra, 0.0, aim))
        trial(kills[-1])
    estimate = max(duration, statistics.median(k.save_seen for k in kills) + duration - save_at)
    for kill in kills:
        kill.fraction = kill.delay / estimate

    # Then 20 kills spread over the build: one at a random moment of each twentieth of it, in random order. A
    # build that ends before its kill shows that builds now take less time: the estimate shrinks, and that
    # twentieth is drawn again.
    strata = list(range(20))
    rng.shuffle(strata)
    while strata and len(kills) < 40:
        delay = estimate * (strata[0] + rng.random()) / 20
        kill = Kill(delay, delay / estimate)
        trial(kill)
        kills.append(kill)
        if kill.exited_first:
            estimate = min(estimate, kill.delay)
        else:
            strata.pop(0)

    landed = [k for k in kills if not k.exited_first]
    summary = (
        f"build {duration:.2f} s (save from {save_at:.2f} s, estimate at the end {estimate:.2f} s); kills "
        "(N: its .new- folder or segment folder in the writing left, U: a segment folder no manifest names left, "
        "M: the index missing, L: its .old- folder left, +: aimed at the save, ^: aimed just after the swap): "
        + ", ".join(f"{k.delay:.2f}s={k.outcome}{k.marks}" for k in kills)
        + f"; landed in the build: {len(landed)}, in the save: {sum(k.in_save for k in landed)}"
        + f"; unaimed ones after 80%: {sum(k.fraction >= 0.8 for k in landed if not k.aim)}"
    )
    print(summary)
    assert len(landed) >= 20, summary
    assert any(k.in_save for k in kills) or any(k.fraction >= 0.8 for k in landed), summary
    assert {k.outcome for k in kills} == {"old", "new"}, summary

    # The corpus is v1 or v2: a plain `rag index` brings the index up to date, and the next one has nothing to do.
    final = run_rag("--corpus", corpus, "--index", index, "index")
    assert final.returncode == 0, final.stderr
    assert not [n for n in leftovers(index) if ".new-" in n]
    assert in_place_leftovers(index) == []  # the build removed what killed updates left in the index folder
    again = run_rag("--corpus", corpus, "--index", index, "index", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["chunks_embedded"] == 0
    assert doc_set(store.read_manifest(index)) == current
    print(f"whole test: {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------------------------------------------------------
# 2. A swap interrupted between its two renames


def crash_between_the_renames(mp: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Make the second `os.rename` fail as if the process died there; returns the renames asked for."""
    real, calls = os.rename, []

    def rename(src: Any, dst: Any) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise OSError(errno.EIO, "simulated crash between the two renames of the swap")
        real(src, dst)

    mp.setattr(os, "rename", rename)
    return calls


@pytest.mark.parametrize("reader", ["read_manifest", "load", "Assistant.open"])
def test_a_swap_cut_between_its_two_renames_leaves_the_old_index(
    small: Settings, encoder: Encoder, shared_model: None, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    old = doc_set(store.read_manifest(small.index))
    rewrite(small.corpus / "tea.txt", TEA_V2)
    with monkeypatch.context() as mp:
        calls = crash_between_the_renames(mp)
        with pytest.raises(OSError, match="simulated crash"):
            indexing.build(small, encoder, full=True, progress=False)  # an update is saved in place: no swap
    pid = os.getpid()
    assert [(a, b.rsplit("-", 1)[0]) for a, b in calls[:1]] == [("index", f".index.old-{pid}")]
    assert [(a.rsplit("-", 1)[0], b) for a, b in calls[1:]] == [(f".index.new-{pid}", "index")]
    assert not small.index.exists()  # the state a crash there leaves: only the two temporary folders
    assert [n.rsplit("-", 1)[0] for n in leftovers(small.index)] == [f".index.new-{pid}", f".index.old-{pid}"]

    if reader == "read_manifest":
        assert doc_set(store.read_manifest(small.index)) == old
        loaded = load(small, encoder)
    elif reader == "load":
        loaded = load(small, encoder)
    else:
        loaded = Assistant.open(small, refresh=False, progress=False, say=lambda _: None).index
    assert doc_set(loaded) == old
    assert small.index.is_dir()
    assert [n.rsplit("-", 1)[0] for n in leftovers(small.index)] == [f".index.new-{pid}"]  # goes at the next build
    assert_answers(small, loaded, encoder)

    _, report = indexing.build(small, encoder, progress=False)
    assert report.changed == ["tea.txt"] and sorted(report.unchanged) == ["bridges.md", "trains/shinkansen.txt"]
    assert report.rebuilt is None
    assert leftovers(small.index) == []
    assert doc_set(store.read_manifest(small.index)) == corpus_set({**SMALL_DOCS, "tea.txt": TEA_V2})
    assert not indexing.is_stale(small, store.read_manifest(small.index))


def test_a_reader_between_the_two_renames_does_not_make_the_build_fail(
    small: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = doc_set(store.read_manifest(small.index))
    rewrite(small.corpus / "tea.txt", TEA_V2)
    new = corpus_set({**SMALL_DOCS, "tea.txt": TEA_V2})
    real = os.rename
    seen: list[DocSet | Exception] = []
    readers: list[threading.Thread] = []

    def read() -> None:  # another process (`rag ask`, a server starting) opening the index at that moment
        try:
            seen.append(doc_set(store.read_manifest(small.index)))
        except Exception as exc:
            seen.append(exc)

    def rename(src: Any, dst: Any) -> None:
        real(src, dst)
        if Path(dst).name.startswith(".index.old-") and not readers:
            readers.append(threading.Thread(target=read, daemon=True))
            readers[0].start()
            readers[0].join(2)  # a reader that waits for the build instead is fine too: the build goes on

    monkeypatch.setattr(os, "rename", rename)
    try:
        indexing.build(small, encoder, full=True, progress=False)  # the swap of a full build
    finally:
        monkeypatch.undo()
        for t in readers:
            t.join(WAIT)
    assert readers and seen and seen[0] in (old, new)
    assert doc_set(store.read_manifest(small.index)) == new
    assert leftovers(small.index) == []


def vectors(index: Path) -> Path:
    """The chunk vectors file of the (first) segment of the index in `index`."""
    return next(p for p in sorted((index / "segments").iterdir()) if not p.name.startswith(".")) / "vectors.npy"


def test_a_leftover_old_copy_with_this_pid_does_not_block_the_save(small: Settings, encoder: Encoder) -> None:
    leftover = small.index.parent / f".index.old-{os.getpid()}"
    shutil.copytree(small.index, leftover)
    vectors(leftover).unlink()  # half removed by the rmtree that was cut short
    rewrite(small.corpus / "tea.txt", TEA_V2)
    _, report = indexing.build(small, encoder, full=True, progress=False)  # saved by a swap
    assert sorted(report.added) == sorted(SMALL_DOCS)
    assert doc_set(store.read_manifest(small.index)) == corpus_set({**SMALL_DOCS, "tea.txt": TEA_V2})


def test_the_next_build_removes_an_old_copy_a_killed_build_left(small: Settings, encoder: Encoder) -> None:
    leftover = small.index.parent / f".index.old-{2**22 + 1}"  # above any pid_max: never a live process
    shutil.copytree(small.index, leftover)
    vectors(leftover).unlink()
    rewrite(small.corpus / "tea.txt", TEA_V2)
    _, report = indexing.build(small, encoder, progress=False)
    assert report.changed == ["tea.txt"]
    assert leftovers(small.index) == []


# ---------------------------------------------------------------------------------------------------------------
# 2b. A crash at any step of an update or a merge saved in place, in the index folder


def test_a_crash_at_any_step_of_a_save_in_place_leaves_the_old_or_the_new_index(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update (a new segment, then the manifest, in the index folder) and a merge of its segments, stopped as a
    kill would stop them just before each file is opened for writing, each fsync, rename, replace and removal of
    the save: a copy of the index folder at that instant is what a crash there leaves. Each copy loads as the old
    index or the new, and the next build clears what the crash left."""
    docs = {**SMALL_DOCS, **generated_docs(seed=8, count=4)}
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", docs), index=tmp_path / "index")
    indexing.build(settings, encoder, progress=False)
    old = corpus_set(docs)
    rewrite(settings.corpus / "tea.txt", TEA_V2)
    (settings.corpus / "bridges.md").unlink()
    write_corpus(settings.corpus, {"news/ferry.txt": FERRY})
    now = {**{s: t for s, t in docs.items() if s != "bridges.md"}, "tea.txt": TEA_V2, "news/ferry.txt": FERRY}
    new = corpus_set(now)
    index = settings.index.absolute()
    crashes: list[tuple[str, Path]] = []

    def crash_here(step: str) -> None:
        copy = tmp_path / "crashes" / f"{len(crashes):03d}" / "index"
        shutil.copytree(index, copy)
        crashes.append((step, copy))

    def inside(path: Any) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(os.fspath(path))).is_relative_to(index)

    real_open, real_rename, real_replace, real_fsync, real_rmtree = open, os.rename, os.replace, os.fsync, shutil.rmtree

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if inside(file) and any(c in mode for c in "wax+"):
            crash_here(f"open {Path(os.fspath(file)).relative_to(index)}")
        return real_open(file, mode, *args, **kwargs)

    def rename(src: Any, dst: Any) -> None:
        if inside(dst):
            crash_here(f"rename to {Path(os.fspath(dst)).relative_to(index)}")
        real_rename(src, dst)

    def replace(src: Any, dst: Any) -> None:
        if inside(dst):
            crash_here(f"replace {Path(os.fspath(dst)).relative_to(index)}")
        real_replace(src, dst)

    def fsync(fd: int) -> None:
        crash_here("fsync")
        real_fsync(fd)

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path):
            crash_here(f"remove {Path(os.fspath(path)).relative_to(index)}")
        real_rmtree(path, *args, **kwargs)

    with monkeypatch.context() as mp:
        for module, name, fake in [
            (builtins, "open", opener),
            (io, "open", opener),  # pathlib's write_text, zipfile (np.savez)
            (os, "rename", rename),
            (os, "replace", replace),
            (os, "fsync", fsync),
            (shutil, "rmtree", rmtree),
        ]:
            mp.setattr(module, name, fake)
        updated, report = indexing.build(settings, encoder, progress=False, merge=False)
        update_steps = len(crashes)
        assert isinstance(updated, indexing.SegmentedIndex) and len(updated.stored) == 2
        merged = indexing.merge_segments(settings, updated, everything=True)
        assert len(merged.stored) == 1
    assert report.changed == ["tea.txt"] and report.removed == ["bridges.md"] and report.added == ["news/ferry.txt"]
    assert not leftovers(settings.index), "an update or a merge moved the index folder"
    steps = [step for step, _ in crashes]
    assert update_steps and len(crashes) > update_steps, steps  # both the update and the merge were cut
    for wanted in ("open segments/.", "rename to segments/", "open .manifest.", "replace manifest.json", "remove "):
        assert any(step.startswith(wanted) for step in steps), (wanted, steps)

    outcomes = []
    for step, copy in crashes:
        at = dataclasses.replace(settings, index=copy)
        loaded = load(at, encoder)
        got = doc_set(loaded)
        assert got == doc_set(store.read_manifest(copy)), step
        assert got in (old, new), f"a mix after a crash at {step}: {sorted(got ^ old)}"
        assert loaded.engine.count() == len(loaded.chunks) == sum(d.chunks for d in loaded.documents), step
        outcomes.append("old" if got == old else "new")
    first_new = outcomes.index("new")
    shown = list(zip(steps, outcomes, strict=True))
    assert outcomes == ["old"] * first_new + ["new"] * (len(outcomes) - first_new), shown
    assert 0 < first_new < update_steps  # the update's manifest replaced: from then on, the new index

    # What the crash left (a segment in the writing, one no manifest names, a manifest's temporary file) goes
    # at the next build, which brings the index up to date; it answers from there.
    messy = [(step, copy) for step, copy in crashes if in_place_leftovers(copy)]
    assert messy, steps
    print(f"{len(crashes)} crashes ({update_steps} in the update), {len(messy)} leaving something to clear")
    for step, copy in [messy[0], messy[len(messy) // 2], messy[-1]]:
        at = dataclasses.replace(settings, index=copy)
        indexing.build(at, encoder, progress=False)
        assert in_place_leftovers(copy) == [], step
        loaded = load(at, encoder)
        assert doc_set(loaded) == new, step
        assert_answers(at, loaded, encoder, FERRY_QUESTION)


# ---------------------------------------------------------------------------------------------------------------
# 3. A damaged index file found at start-up

# The manifest, then files of the index's segment (`segments/NAME/`).
DAMAGED = [
    "manifest.json",
    "documents.jsonl",
    "chunks.jsonl",
    "sentence_terms.npz",
    "vectors.npy",
    "sentences.npy",
    "postings.npz",
]


def file_of(index: Path, name: str) -> Path:
    """The file `name` of the index in `index`: the manifest, or a file of its (one) segment."""
    if name == "manifest.json":
        return index / name
    (segment,) = (index / "segments").iterdir()
    return segment / name


def truncate(path: Path) -> None:
    """Keep the first half, as a torn write would (never cut exactly at a line end)."""
    data = path.read_bytes()
    cut = len(data) // 2
    path.write_bytes(data[: cut - 1 if data[cut - 1 : cut] == b"\n" else cut])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage \xff\xfe not what it should be {[")


def named(name: str) -> str:
    """What the error names for a damaged `name`: the file."""
    return name


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Settings:
    """SMALL_DOCS and its index, built once; tests damage copies."""
    settings: Settings = small_index(tmp_path_factory.mktemp("base"), encoder)
    return settings


def copy_of(settings: Settings, root: Path) -> Settings:
    shutil.copytree(settings.corpus, root / "corpus")
    shutil.copytree(settings.index, root / "index")
    return dataclasses.replace(settings, corpus=root / "corpus", index=root / "index")


def clean_env() -> dict[str, str | None]:
    return {f"RAG_{name.upper()}": None for name, _, _ in FIELDS}


@pytest.mark.parametrize("damage", [truncate, garble], ids=["truncated", "garbage"])
@pytest.mark.parametrize("name", DAMAGED)
def test_a_damaged_index_file_is_named_and_repair_rebuilds_it(
    tmp_path: Path, base: Settings, encoder: Encoder, shared_model: None, name: str, damage: Callable[[Path], None]
) -> None:
    settings = copy_of(base, tmp_path)
    damage(file_of(settings.index, name))

    with pytest.raises(IndexCorrupt) as caught:
        Assistant.open(settings, progress=False, say=lambda _: None)
    assert named(name) in str(caught.value) and "rag index --full" in str(caught.value)

    args = ["--corpus", str(settings.corpus), "--index", str(settings.index), "ask", QUESTION]
    result = CliRunner().invoke(main, args, env=clean_env())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert named(name) in lines[0] and "rag index --full" in lines[0]

    said: list[str] = []
    bot = Assistant.open(settings, repair=True, progress=False, say=said.append)  # what `rag serve` does
    assert any(named(name) in line and "rebuilding" in line for line in said), said
    response = bot.ask(QUESTION)
    assert response.answer is not None and response.answer.source == "trains/shinkansen.txt"
    assert doc_set(load(settings, encoder)) == corpus_set(SMALL_DOCS)
    assert leftovers(settings.index) == []


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.mark.parametrize(
    "name,damage", [("manifest.json", truncate), ("vectors.npy", garble)], ids=["manifest", "vectors"]
)
def test_rag_serve_over_a_damaged_index_repairs_it_and_answers(
    tmp_path: Path, base: Settings, name: str, damage: Callable[[Path], None]
) -> None:
    settings = copy_of(base, tmp_path)
    damage(file_of(settings.index, name))
    where = ("--corpus", settings.corpus, "--index", settings.index)

    r = run_rag(*where, "ask", QUESTION)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named(name) in lines[0], r.stderr

    port = free_port()
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with open(log, "w") as out:
        proc = start_rag(*where, "serve", "--port", str(port), stdout=out, stderr=subprocess.STDOUT)
    try:
        status: int | None = None
        while time.monotonic() - started < WAIT and proc.poll() is None:
            try:
                status, health = http(f"http://127.0.0.1:{port}/api/health")
            except OSError:  # not listening yet
                time.sleep(0.1)
                continue
            if status == 200:
                break
        assert status == 200, f"not ready in {WAIT} s (exit code {proc.poll()}): {log.read_text()[-2000:]}"
        assert health["status"] == "ready" and health["documents"] == len(SMALL_DOCS)
        status, body = http(f"http://127.0.0.1:{port}/api/ask", {"question": QUESTION})
        assert status == 200, body
        assert body["answer"]["source"] == "trains/shinkansen.txt" and body["citations"]
    finally:
        kill_group(proc, signal.SIGTERM)
    assert named(name) in log.read_text()  # it said what it was rebuilding, and why
    assert doc_set(store.read_manifest(settings.index)) == corpus_set(SMALL_DOCS)


# ---------------------------------------------------------------------------------------------------------------
# 4. The corpus changes while a build embeds

FERRY = (
    "Ferry Timetable\n\n"
    "The Varnholm ferry leaves the north pier every forty minutes. Captain Idris Calloway has steered it since "
    "2009. The crossing to Lindqvist Island takes twenty-two minutes in calm weather."
)
FERRY_QUESTION = "Who has steered the Varnholm ferry since 2009?"


def test_documents_edited_added_and_deleted_during_a_build(tmp_path: Path, encoder: Encoder) -> None:
    docs = {**SMALL_DOCS, **generated_docs(seed=3, count=3)}
    corpus = write_corpus(tmp_path / "corpus", docs)
    settings = Settings(corpus=corpus, index=tmp_path / "index")
    calls: list[int] = []

    class EditingEncoder:
        """The session's encoder; its first call edits, adds and deletes a document (all were read already)."""

        dimension, precision = encoder.dimension, encoder.precision

        def encode(self, texts: Any, batch_size: int = 32, progress: Any = None) -> Any:
            if not calls:
                rewrite(corpus / "tea.txt", TEA_V2)
                write_corpus(corpus, {"news/ferry.txt": FERRY})
                (corpus / "bridges.md").unlink()
            calls.append(len(texts))
            return encoder.encode(texts, batch_size, progress=progress)

    _, report = indexing.build(settings, EditingEncoder(), progress=False)  # type: ignore[arg-type]
    assert calls, "the build embedded nothing"
    assert sorted(report.added) == sorted(docs)

    # The index is what was read: the old tea.txt, bridges.md, no ferry; each hash is that of the text chunked.
    manifest = store.read_manifest(settings.index)
    assert doc_set(manifest) == corpus_set(docs)
    loaded = load(settings, encoder)
    assert {c.source for c in loaded.chunks} == set(docs)
    for chunk in loaded.chunks:
        assert chunk.text == docs[chunk.source][chunk.start : chunk.end]
    assert indexing.is_stale(settings, manifest)

    _, report = indexing.build(settings, encoder, progress=False)
    assert report.changed == ["tea.txt"]
    assert report.added == ["news/ferry.txt"]
    assert report.removed == ["bridges.md"]
    assert sorted(report.unchanged) == sorted(set(docs) - {"tea.txt", "bridges.md"})
    now = {**{s: t for s, t in docs.items() if s != "bridges.md"}, "tea.txt": TEA_V2, "news/ferry.txt": FERRY}
    manifest = store.read_manifest(settings.index)
    assert doc_set(manifest) == corpus_set(now)
    assert not indexing.is_stale(settings, manifest)
    loaded = load(settings, encoder)
    for chunk in loaded.chunks:
        assert chunk.text == now[chunk.source][chunk.start : chunk.end]
    response = Assistant(settings, loaded, encoder).ask(FERRY_QUESTION)
    assert response.answer is not None and response.answer.source == "news/ferry.txt"


# ---------------------------------------------------------------------------------------------------------------
# 5. Two builds of one index at once


def test_two_builds_at_once_in_one_process_are_serialized(
    tmp_path: Path, encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    docs = {**SMALL_DOCS, **generated_docs(seed=5, count=4)}
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", docs), index=tmp_path / "index")
    barrier = threading.Barrier(2)
    reports: list[indexing.BuildReport] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            barrier.wait(WAIT)
            reports.append(indexing.build(settings, encoder, progress=False)[1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a build is stuck"
    assert errors == [] and len(reports) == 2
    loaded = load(settings, encoder)
    # One built everything; the other waited for it, then found nothing to do (without the lock, both embed all).
    assert sorted(r.chunks_embedded for r in reports) == [0, len(loaded.chunks)]
    assert "waiting for another build" in caplog.text  # a warning of the `rag` logger: the CLI prints it
    assert doc_set(loaded) == corpus_set(docs)
    assert leftovers(settings.index) == []
    assert_answers(settings, loaded, encoder)


def test_two_rag_index_processes_at_once_are_serialized(tmp_path: Path, encoder: Encoder) -> None:
    docs = {**SMALL_DOCS, **generated_docs(seed=6, count=8)}
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", docs), index=tmp_path / "index")
    where = ("--corpus", settings.corpus, "--index", settings.index)
    procs = [start_rag(*where, "index", "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    loaded = load(settings, encoder)
    assert sorted(r["chunks_embedded"] for r in reports) == [0, len(loaded.chunks)]
    assert any("waiting for another build" in err for _, err in outputs)  # they did overlap
    assert doc_set(loaded) == corpus_set(docs)
    assert leftovers(settings.index) == []
    assert_answers(settings, loaded, encoder)


# ---------------------------------------------------------------------------------------------------------------
# 6. Rebuilding through the server while questions are asked

AUTH = {"Authorization": "Bearer t"}


def test_questions_are_answered_while_the_server_rebuilds(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = {**SMALL_DOCS, **generated_docs(seed=7, count=6)}
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", docs), index=tmp_path / "index")
    settings = dataclasses.replace(settings, admin_token="t")
    index, _ = indexing.build(settings, encoder, progress=False)
    # An update that reads and embeds one new file is over in a moment: each rebuild's embedding takes a second
    # longer, so that questions surely come while it runs.
    embed = builder.embed_documents

    def slow_embed(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        return embed(*args, **kwargs)

    monkeypatch.setattr(builder, "embed_documents", slow_embed)
    app = create_app(Assistant(settings, index, encoder))
    service = app.state.service
    write_corpus(settings.corpus, {"news/ferry.txt": FERRY})  # added before the reindex

    questions = [
        QUESTION,
        "How long is the central span of the Akashi Kaikyo Bridge?",
        "Where is green tea grown?",
        FERRY_QUESTION,
        "How many people visited the museum in Kyoto?",
        "How do I bake sourdough bread at home?",
        "When did the bridge open?",
    ]
    statuses: list[int] = []
    failures: list[str] = []
    during_rebuild = [0]
    stop = threading.Event()

    def ask_in_a_loop(offset: int) -> None:
        client = TestClient(app, raise_server_exceptions=False)
        i = offset
        while not stop.is_set():
            question, top_k = questions[i % len(questions)], 1 + i % 5
            i += 1
            running = service.state.running
            r = client.post("/api/ask", json={"question": question, "top_k": top_k})
            statuses.append(r.status_code)
            if r.status_code != 200:
                failures.append(f"{question}: {r.status_code} {r.text[:300]}")
            elif running and service.state.running:
                during_rebuild[0] += 1

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(statuses) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(statuses) >= count, "the askers are stuck"

    threads = [threading.Thread(target=ask_in_a_loop, args=(i,), daemon=True) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        wait_for(8)
        admin = TestClient(app, raise_server_exceptions=False)
        first = admin.post("/api/reindex", headers=AUTH)
        assert first.status_code == 202, first.text
        second = admin.post("/api/reindex?full=true", headers=AUTH)  # while the first runs: 409 (or 202 after it)
        assert second.status_code in (202, 409), second.text
        if second.status_code == 409:
            assert second.json()["error"]["code"] == "conflict"
        time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
        service.wait(WAIT)
        assert not service.state.running, "the rebuild did not finish in time"
        wait_for(len(statuses) + 8)  # and answers go on from the new index
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert set(statuses) == {200} and len(statuses) >= 16
    assert during_rebuild[0] > 0, "no question was answered while the rebuild ran"
    assert service.state.last_error is None
    assert service.state.runs == (2 if second.status_code == 202 else 1)

    body = TestClient(app).post("/api/ask", json={"question": FERRY_QUESTION}).json()
    assert body["answer"] and body["answer"]["source"] == "news/ferry.txt"
    assert "news/ferry.txt" in {c["source"] for c in body["citations"]}
    assert doc_set(store.read_manifest(settings.index)) == corpus_set({**docs, "news/ferry.txt": FERRY})
