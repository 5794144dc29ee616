"""A full disk (or a read-only index folder) while the index is written (issue #11, item 5).

A failed build must leave the old index byte-identical and remove what it wrote; `rag index` fails with one clear
line (exit 2); `rag ask`, `rag serve` and the server's background rebuild go on answering from the old index, with
one warning that says it is out of date, why and what to do. The full disk is simulated deterministically: files
a save writes (into a full build's `.index.new-*` folder, or, for an update saved in place, into the index's
`segments/.NAME.tmp` folder and its `.manifest.*.tmp`) store half of their first write, then raise ENOSPC.
"""

from __future__ import annotations

import builtins
import dataclasses
import errno
import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rag import embedding, indexing
from rag.cli import main
from rag.config import FIELDS, Settings
from rag.embedding import Encoder
from rag.errors import RagError
from rag.indexing import store
from rag.pipeline import Assistant

from .helpers import ROOT, SMALL_DOCS, reuse, small_index
from .server_support import serve, snapshot

pytestmark = pytest.mark.slow  # the real model

QUESTION = "When did the first Shinkansen line open?"
TEA_V2 = SMALL_DOCS["tea.txt"] + " The second flush is picked in late June and tastes stronger."
WAIT = 60.0
# Every file a save writes (local engine), in the order written: a segment's files, then the manifest.
WRITES = [
    "documents.jsonl",
    "chunks.jsonl",
    "sentence_terms.npz",
    "sentence_vocabulary.json",
    "texts.jsonl",
    "texts.offsets.npy",
    "vectors.npy",
    "sentences.npy",
    "postings.npz",
    "manifest.json",
]


# ---------------------------------------------------------------------------------------------------------------
# The full disk


class _FillingFile:
    """A file on a disk that fills up as it is written: the first write stores half its data, then fails."""

    def __init__(self, file: Any, name: str, fail: Callable[[str], BaseException]) -> None:
        self._file, self._name, self._fail = file, name, fail

    def write(self, data: Any) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise self._fail(self._name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def no_space(name: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)


def saved_as(path: Path) -> str | None:
    """The name of the index file a save writes at `path`, or None when `path` is not one a save writes: a file of
    a full build's `.NAME.new-*` folder (a segment's file by its own name), one of the temporary segment folder
    `segments/.NAME.tmp` of an update saved in place, or its manifest's temporary file `.manifest.*.tmp`."""
    parts = path.parts
    if any(part.startswith(".") and ".new-" in part for part in parts[:-1]):
        return path.name
    if len(parts) >= 3 and parts[-3] == "segments" and parts[-2].startswith(".") and parts[-2].endswith(".tmp"):
        return path.name
    if path.name.startswith(".manifest.") and path.name.endswith(".tmp"):
        return "manifest.json"
    return None


def fill_disk(
    target: str = "vectors.npy",
    fail: Callable[[str], BaseException] = no_space,
    setattr_: Callable[[Any, str, Any], None] = setattr,
) -> None:
    """From now on, writing `target` (the name of a file a save writes, `saved_as`; "*": any file a save writes)
    fails part-way with `fail(path)`. `setattr_`: a monkeypatch's, to undo it; plain `setattr` in a subprocess."""
    real = builtins.open

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = real(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            path = Path(os.fspath(file))
            name = saved_as(path)
            if name is not None and target in ("*", name):
                return _FillingFile(opened, str(path), fail)
        return opened

    setattr_(builtins, "open", opener)
    setattr_(io, "open", opener)  # pathlib's write_text opens through io.open


def interrupt(name: str) -> BaseException:
    return KeyboardInterrupt()


# ---------------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Settings:
    """SMALL_DOCS and its index, built once; each test works on a copy."""
    settings: Settings = small_index(tmp_path_factory.mktemp("full-disk"), encoder)
    return settings


@pytest.fixture
def small(base: Settings, tmp_path: Path) -> Settings:
    """A copy of the base corpus and index in which tea.txt changed since the index was built (so stale)."""
    shutil.copytree(base.corpus, tmp_path / "corpus")
    shutil.copytree(base.index, tmp_path / "index")
    settings = dataclasses.replace(base, corpus=tmp_path / "corpus", index=tmp_path / "index")
    rewrite(settings.corpus / "tea.txt", TEA_V2)
    return settings


@pytest.fixture(autouse=True)
def shared_model(monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> None:
    """Encoders made inside the code under test reuse the session's model."""
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))


def rewrite(path: Path, text: str) -> None:
    """Write `text` and move the modification time on, so a change is visible even on coarse clocks."""
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def leftovers(index: Path) -> list[str]:
    """The temporary folders of a save (`.index.new-*`, `.index.old-*`) next to `index`."""
    return sorted(p.name for p in index.parent.glob(f".{index.name}.*-*") if p.is_dir())


def state_of(index: Path) -> tuple[dict[str, str], int]:
    """Every file of the index folder by content hash, and the manifest's inode (a swap would change it)."""
    return snapshot(index), (index / "manifest.json").stat().st_ino


def run(settings: Settings, *args: str) -> Result:
    env = {f"RAG_{name.upper()}": None for name, _, _ in FIELDS}
    where = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    return CliRunner().invoke(main, [*where, *args], env=env, catch_exceptions=True)


def assert_one_line_error(result: Result) -> str:
    """Exit code 2 and one `error:` line, the last on stderr, without a traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr
    return last


def assert_says_what_to_do(message: str, why: str = "No space left on device") -> None:
    assert why in message and "rag index" in message, message


# ---------------------------------------------------------------------------------------------------------------
# The build


# An update writes a new segment and the manifest in place, in the index folder; a full build a new index folder.
BUILDS = pytest.mark.parametrize("full", [False, True], ids=["update", "full"])


@BUILDS
@pytest.mark.parametrize("target", WRITES)
def test_a_full_disk_at_any_file_of_the_save_leaves_the_old_index_and_nothing_else(
    small: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, target: str, full: bool
) -> None:
    before = state_of(small.index)
    with monkeypatch.context() as mp:
        fill_disk(target, setattr_=mp.setattr)
        with pytest.raises(RagError) as raised:
            indexing.build(small, encoder, full=full, progress=False)
    assert_says_what_to_do(str(raised.value))
    assert state_of(small.index) == before
    assert leftovers(small.index) == []
    # With space again, the next build goes through.
    _, report = indexing.build(small, encoder, progress=False)
    assert report.changed == ["tea.txt"]
    assert leftovers(small.index) == []


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EDQUOT, "Disk quota exceeded"),
        (errno.EROFS, "Read-only file system"),
        (errno.EACCES, "Permission denied"),
    ],
    ids=["ENOSPC", "EDQUOT", "EROFS", "EACCES"],
)
@BUILDS
def test_any_error_writing_the_index_is_reported_with_what_to_do(
    small: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, code: int, why: str, full: bool
) -> None:
    before = state_of(small.index)
    with monkeypatch.context() as mp:
        fill_disk("sentences.npy", lambda name: OSError(code, os.strerror(code), name), mp.setattr)
        with pytest.raises(RagError) as raised:
            indexing.build(small, encoder, full=full, progress=False)
    assert_says_what_to_do(str(raised.value), why)
    # The file named by its name in the index, not by the temporary folder it was written in.
    assert ".index.new-" not in str(raised.value) and ".tmp" not in str(raised.value)
    assert state_of(small.index) == before and leftovers(small.index) == []


@BUILDS
@pytest.mark.parametrize("target", ["chunks.jsonl", "vectors.npy", "manifest.json"])
def test_ctrl_c_while_the_index_is_written_removes_what_was_written(
    small: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, target: str, full: bool
) -> None:
    before = state_of(small.index)
    with monkeypatch.context() as mp:
        fill_disk(target, interrupt, mp.setattr)
        with pytest.raises(KeyboardInterrupt):
            indexing.build(small, encoder, full=full, progress=False)
    assert state_of(small.index) == before and leftovers(small.index) == []


def test_a_folder_left_by_a_killed_build_is_removed_by_the_next_build(small: Settings, encoder: Encoder) -> None:
    stale = small.index.parent / f".index.new-{2**22 + 1}-deadbeef"  # above any pid_max: never a live process
    shutil.copytree(small.index, stale)
    (stale / "manifest.json").unlink()  # killed before its manifest was written
    indexing.build(small, encoder, progress=False)
    assert leftovers(small.index) == []


def test_what_a_killed_update_left_in_the_index_folder_is_removed_by_the_next_build(
    small: Settings, encoder: Encoder
) -> None:
    # An update killed while it wrote its segment, after it renamed it (before the manifest named it), or while
    # it wrote the manifest's temporary file.
    segments = small.index / "segments"
    (named,) = [p for p in segments.iterdir()]
    shutil.copytree(named, segments / ".20000101000000-deadbeef.tmp")
    shutil.copytree(named, segments / "20000101000000-0badcafe")
    (small.index / ".manifest.0123abcd.tmp").write_text("{", encoding="utf-8")
    _, report = indexing.build(small, encoder, progress=False)
    assert report.changed == ["tea.txt"]
    manifest = store.read_manifest(small.index)
    assert sorted(p.name for p in segments.iterdir()) == sorted(s["name"] for s in manifest["segments"])
    assert not list(small.index.glob(".manifest.*")) and leftovers(small.index) == []
    assert indexing.load(small, encoder).engine.count() > 0


def test_a_build_that_cannot_take_the_lock_leaves_other_builds_folders_alone(small: Settings, encoder: Encoder) -> None:
    # The lock file cannot be created (here: a folder holds its name; on a full disk, creating it fails): this
    # build cannot tell a live build's folder from a dead one's, so it removes none.
    (small.index.parent / ".index.lock").mkdir()
    live = small.index.parent / ".index.new-1-0123abcd"
    live.mkdir()
    indexing.build(small, encoder, progress=False)
    assert live.is_dir()


# ---------------------------------------------------------------------------------------------------------------
# The commands and the Python API


def test_rag_index_on_a_full_disk_fails_with_one_clear_line(small: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    before = state_of(small.index)
    fill_disk("vectors.npy", setattr_=monkeypatch.setattr)
    line = assert_one_line_error(run(small, "index"))
    assert_says_what_to_do(line)
    assert "unchanged" in line
    assert state_of(small.index) == before and leftovers(small.index) == []


@pytest.mark.parametrize("target", ["vectors.npy", "manifest.json"])
def test_rag_ask_answers_from_the_old_index_with_one_warning_when_it_cannot_update_it(
    small: Settings, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    before = state_of(small.index)
    fill_disk(target, setattr_=monkeypatch.setattr)
    result = run(small, "ask", QUESTION)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "October 1964" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "out of date" in warnings[0]
    assert_says_what_to_do(warnings[0])
    assert state_of(small.index) == before and leftovers(small.index) == []


def test_rag_ask_without_an_index_on_a_full_disk_fails_with_one_clear_line(
    small: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(small.index)
    fill_disk("*", setattr_=monkeypatch.setattr)
    assert_says_what_to_do(assert_one_line_error(run(small, "ask", QUESTION)))
    assert not small.index.exists() and leftovers(small.index) == []


@pytest.mark.parametrize("repair", [False, True], ids=["ask", "serve"])  # `rag serve` opens with repair=True
def test_assistant_open_serves_the_old_index_and_logs_a_warning(
    small: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, repair: bool
) -> None:
    old = store.read_manifest(small.index)["documents"]
    fill_disk("texts.jsonl", setattr_=monkeypatch.setattr)
    with caplog.at_level(logging.WARNING, logger="rag"):
        bot = Assistant.open(small, repair=repair, progress=False, say=lambda _: None)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "out of date" in warnings[0].getMessage()
    assert_says_what_to_do(warnings[0].getMessage())
    assert [dataclasses.asdict(d) for d in bot.index.documents] == old
    assert bot.ask(QUESTION).answer is not None
    assert leftovers(small.index) == []


# ---------------------------------------------------------------------------------------------------------------
# The server's background rebuild


def test_the_background_rebuild_on_a_full_disk_keeps_serving_the_old_index(
    small: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = indexing.load(small, encoder)
    served = serve(Assistant(small, index, encoder))
    before = state_of(small.index)
    with monkeypatch.context() as mp:
        fill_disk("vectors.npy", setattr_=mp.setattr)
        served.service.start_rebuild()
        served.service.wait(WAIT)
    state = served.service.state
    assert not state.running and state.last_error is not None
    assert_says_what_to_do(state.last_error)
    assert served.assistant.index is index  # still the old one
    assert served.ask(QUESTION)["answer"] is not None
    assert state_of(small.index) == before and leftovers(small.index) == []
    served.service.start_rebuild()  # with space again
    served.settle()
    assert served.assistant.index is not index


# ---------------------------------------------------------------------------------------------------------------
# The real command, in a process of its own

BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from tests.test_full_disk import fill_disk; fill_disk(sys.argv[2]);"
    "from rag.cli import main; main(sys.argv[3:], prog_name='rag')"
)


def rag_on_a_full_disk(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    settings_vars = {f"RAG_{name.upper()}" for name, _, _ in FIELDS}  # RAG_CACHE (the ONNX export) is kept
    env = {k: v for k, v in os.environ.items() if k not in settings_vars}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    where = ["--corpus", str(settings.corpus), "--index", str(settings.index)]
    command = [sys.executable, "-c", BOOT, str(ROOT), "vectors.npy", *where, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_rag_ask_and_rag_index_processes_on_a_full_disk(small: Settings) -> None:
    before = state_of(small.index)
    asked = rag_on_a_full_disk(small, "ask", QUESTION)
    assert asked.returncode == 0, asked.stderr
    assert "October 1964" in asked.stdout
    assert "Traceback" not in asked.stderr
    assert_says_what_to_do(next(line for line in asked.stderr.splitlines() if line.startswith("warning:")))
    indexed = rag_on_a_full_disk(small, "index")
    assert indexed.returncode == 2, indexed.stderr
    assert "Traceback" not in indexed.stderr
    assert_says_what_to_do(indexed.stderr.strip().splitlines()[-1])
    assert state_of(small.index) == before and leftovers(small.index) == []
