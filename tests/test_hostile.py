"""Hostile input: a corpus full of files that cannot be indexed, bad questions through the CLI and the HTTP API,
request body limits, error bodies that must not leak internals, and a 50 MB document.

The CLI runs in-process (click's CliRunner) with the session's real model. Tests run as root in CI, where
`chmod 000` does not stop a read: there the unreadable file is simulated by making `Path.read_bytes` and
`os.open` raise `PermissionError` for that one path.

The 50 MB document is over the `max_file_bytes` limit (40 MB by default), so `rag index` skips it, from its size,
without reading it. Embedding it instead is out of reach of a test: splitting 1 MB into sentences takes ~4 s and the
model embeds ~100-200 sentences a second on two cores, so 50 MB (~300,000 sentences) would take about an hour.
Reading it whole (a reader called without a limit) is checked separately, for time and memory."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import resource
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag import embedding, indexing
from rag.cli import main
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.readers.documents import Document, Skipped, read_corpus, read_document
from rag.readers.sandbox import ReaderLimits, ReaderPool
from rag.server.api import create_app

from .helpers import ROOT, SMALL_DOCS, reuse, write_corpus
from .server_support import raw_request

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
LATIN1 = b"Caf\xe9 Notes\n\nThe caf\xe9 on the corner serves cr\xe8me br\xfbl\xe9e every morning.\n"
OUTSIDE_TEXT = "Quokka Notes\n\nThe quokka ledger is kept on Rottnest Island in a locked drawer.\n"
LOCKED_TEXT = "Locked Notes\n\nThe locked ledger lists every lighthouse keeper of the Seto Inland Sea.\n"
HIDDEN_TEXT = "Hidden Notes\n\nThe hidden ledger names the owner of the walrus farm.\n"

# File name -> a word the reason given for skipping it must contain.
SKIPPED = {
    "empty.txt": "empty",
    "image.txt": "binary",
    "outside.txt": "outside the corpus",
    "locked.txt": "cannot be read",
    "report.pdf": "corrupt",
}
IGNORED = [".hidden.txt", ".private/notes.txt", "sheet.xlsx"]  # left out by design: hidden, or no reader for it
GOOD = sorted([*SMALL_DOCS, "latin1.txt"])  # the documents that are indexed (Latin-1 is decoded, not skipped)

SHINKANSEN = "When did the first Shinkansen line open?"
QUOKKA = "Where is the quokka ledger kept?"

# Questions that must be refused, by the CLI (exit 2) and the API (4xx).
BAD_QUESTIONS = [
    pytest.param("", id="empty"),
    pytest.param(" \t\n  ", id="whitespace"),
    pytest.param("\u3000\u00a0\u2028", id="unicode-whitespace"),
    pytest.param("x" * 100_000, id="100kB"),
    pytest.param("What\x00 is this?", id="nul"),
    pytest.param("ring the bell\x07", id="bell"),
    pytest.param("\x1b[2J\x1b[31mWhen did it open?", id="terminal-escape"),
    pytest.param("When did it open?\x7f", id="del"),
    pytest.param("When\x85 did it open?", id="c1-control"),
    pytest.param("When did \ud800 it open?", id="lone-surrogate"),
]

# Unusual but legitimate questions: answered or abstained, never refused.
ODD_QUESTIONS = [
    pytest.param("Who is Андрій Sybiha 東京?", id="mixed-script"),
    pytest.param("When did the Shinkansen 🚄 open?", id="emoji"),
    pytest.param("Whe\u0301n di\u0301d the\u0301 train open?", id="combining-marks"),
    pytest.param("\u202eWhen did the bridge open?", id="rtl-override"),
    pytest.param("\u200b\u200b", id="zero-width-only"),
    pytest.param("When did the first line open?\tAnd\r\nwhere?", id="tab-and-crlf"),
]

JSON = {"content-type": "application/json"}
BAD_TOP_K = [0, -1, 10**9, "abc", 1.5, True, [5], {"k": 5}]

# ---------------------------------------------------------------------------------------------------------------
# An unreadable file, even as root

LOCKED: set[Path] = set()
_real_read_bytes = Path.read_bytes


def _read_bytes(self: Path) -> bytes:
    """`Path.read_bytes`, except that it fails as `chmod 000` does for the paths in `LOCKED`."""
    if self.absolute() in LOCKED:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
    return _real_read_bytes(self)


_real_open = os.open


def _open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
    """`os.open`, failing as `chmod 000` does for the paths in `LOCKED` (the reader opens each file once, by
    `os.open`: rag.readers.documents.read_corpus_file)."""
    if Path(os.path.abspath(path)) in LOCKED:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return _real_open(path, flags, *args, **kwargs)


def lock(mp: pytest.MonkeyPatch, path: Path) -> None:
    """Make `path` unreadable: `chmod 000`, and for root (who reads it anyway) a failing `read_bytes` and
    `os.open`."""
    path.chmod(0)
    if os.geteuid() == 0 or os.access(path, os.R_OK):
        LOCKED.add(path.absolute())
        mp.setattr(Path, "read_bytes", _read_bytes)
        mp.setattr(os, "open", _open)


# ---------------------------------------------------------------------------------------------------------------
# The hostile corpus, indexed once with `rag index`


@dataclass
class Workspace:
    root: Path
    corpus: Path
    index: Path
    build: Result

    def args(self, *rest: str) -> list[str]:
        return ["--corpus", str(self.corpus), "--index", str(self.index), *rest]


def run(*args: str) -> Result:
    no_env = {f"RAG_{f.name.upper()}": None for f in dataclasses.fields(Settings)}
    return CliRunner().invoke(main, list(args), env=no_env, catch_exceptions=True)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """(content hash, modification time) of every file below `folder`."""
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def skip_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("skipped ")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Workspace]:
    """Three good documents among an empty file, a PNG named .txt, a Latin-1 file, a link out of the corpus, an
    unreadable file, hidden files and a PDF; indexed by `rag index`, whose result is kept."""
    root = tmp_path_factory.mktemp("hostile-corpus")
    corpus = write_corpus(
        root / "corpus",
        {
            **SMALL_DOCS,
            "empty.txt": b"",
            "image.txt": PNG,
            "latin1.txt": LATIN1,
            "locked.txt": LOCKED_TEXT,
            ".hidden.txt": HIDDEN_TEXT,
            ".private/notes.txt": HIDDEN_TEXT,
            "sheet.xlsx": b"PK\x03\x04 a spreadsheet",
            "report.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        },
    )
    (root / "outside.txt").write_text(OUTSIDE_TEXT, encoding="utf-8")
    (corpus / "outside.txt").symlink_to(root / "outside.txt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedding.Encoder, "_load", reuse(encoder))  # the real model, loaded once per session
        lock(mp, corpus / "locked.txt")
        build = run("--corpus", str(corpus), "--index", str(root / "index"), "index")
        yield Workspace(root, corpus, root / "index", build)
    LOCKED.discard((corpus / "locked.txt").absolute())
    (corpus / "locked.txt").chmod(0o644)


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    assistant: Assistant


@pytest.fixture(scope="module")
def served(workspace: Workspace, encoder: Encoder) -> Served:
    """The web app over the hostile corpus and the index `rag index` built (nothing is embedded again)."""
    settings = Settings(corpus=workspace.corpus, index=workspace.index)
    index, report = indexing.build(settings, encoder, progress=False)
    assert report.chunks_embedded == 0 and sorted(report.unchanged) == GOOD
    assistant = Assistant(settings, index, encoder)
    app = create_app(assistant)
    return Served(app, TestClient(app, raise_server_exceptions=False), assistant)


@pytest.fixture(scope="module")
def private_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Strings that no error body may contain: traceback markers and the file-system paths of this machine."""
    return ["Traceback", 'File "', "/work/", str(ROOT), str(tmp_path_factory.getbasetemp())]


def assert_no_leak(text: str, private: list[str]) -> None:
    for marker in private:
        assert marker not in text, f"{marker!r} leaked into an error body: {text[:500]!r}"


def assert_error(r: Any, private: list[str], statuses: Any = range(400, 500)) -> dict[str, str]:
    """The one error shape, {"error": {"code", "message"}}, with a 4xx status and nothing private in it."""
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert_no_leak(r.text, private)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def post_json(client: TestClient, path: str, body: Any) -> Any:
    """POST `body` as JSON with ASCII escapes, so that a lone surrogate reaches the server as `\\ud800`."""
    return client.post(path, content=json.dumps(body).encode(), headers=JSON)


def assert_one_line_error(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# `rag index` over the hostile corpus


@pytest.mark.slow
def test_index_exits_0_and_indexes_only_the_good_files(workspace: Workspace) -> None:
    result = workspace.build
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output and "error:" not in result.output
    assert f"{len(GOOD)} added" in result.stdout
    assert f"{len(SKIPPED)} skipped" in result.stdout


@pytest.mark.slow
def test_each_skip_is_reported_on_its_own_line_with_its_reason(workspace: Workspace) -> None:
    lines = skip_lines(workspace.build)
    assert len(lines) == len(SKIPPED), workspace.build.stderr
    for name, reason in SKIPPED.items():
        mine = [line for line in lines if line.startswith(f"skipped {name}: ")]
        assert len(mine) == 1, (name, lines)
        assert reason in mine[0], (name, mine[0])


@pytest.mark.slow
def test_hidden_files_and_other_suffixes_are_left_out_silently(workspace: Workspace) -> None:
    for name in IGNORED:
        assert name not in workspace.build.output
    result = run(*workspace.args("index", "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(report["unchanged"]) == GOOD
    assert report["chunks_embedded"] == 0 and report["added"] == report["changed"] == []
    assert {s["source"] for s in report["skipped"]} == set(SKIPPED)
    assert all(s["reason"] for s in report["skipped"])


@pytest.mark.slow
def test_ask_answers_from_the_good_files(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", SHINKANSEN, "--json"))
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["abstained"] is False
    assert response["answer"]["source"] == "trains/shinkansen.txt"
    assert "1964" in response["answer"]["text"]


@pytest.mark.slow
def test_a_latin1_file_is_decoded_and_quoted_exactly(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", "What does the café on the corner serve every morning?", "--json"))
    response = json.loads(result.stdout)
    assert response["answer"]["source"] == "latin1.txt" and "crème brûlée" in response["answer"]["text"]
    shown = run(*workspace.args("show", "latin1.txt"))
    assert shown.stdout.rstrip("\n") == LATIN1.decode("latin-1").rstrip("\n")
    a = response["answer"]
    assert LATIN1.decode("latin-1")[a["start"] : a["end"]] == a["text"]


@pytest.mark.slow
def test_nothing_is_answered_from_the_files_that_were_skipped(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", QUOKKA, "--json", "--top-k", "10"))
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert {c["source"] for c in response["citations"]} <= set(GOOD)
    assert "quokka" not in result.stdout.lower().replace(QUOKKA.lower(), "")


# ---------------------------------------------------------------------------------------------------------------
# Bad questions through the CLI: one line, exit 2, the index untouched


@pytest.mark.slow
@pytest.mark.parametrize("question", BAD_QUESTIONS)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_bad_question_is_one_error_line_and_leaves_the_index_alone(
    workspace: Workspace, question: str, as_json: bool
) -> None:
    before = snapshot(workspace.index)
    line = assert_one_line_error(run(*workspace.args("ask", question, *(["--json"] if as_json else []))))
    assert "question" in line
    assert snapshot(workspace.index) == before


@pytest.mark.slow
@pytest.mark.parametrize("question", ODD_QUESTIONS)
def test_an_odd_but_legitimate_question_is_answered_or_abstained(workspace: Workspace, question: str) -> None:
    before = snapshot(workspace.index)
    result = run(*workspace.args("ask", question, "--json"))
    assert result.exit_code == 0, (result.output, result.exception)
    response = json.loads(result.stdout)
    assert response["question"] == question.strip()
    assert isinstance(response["abstained"], bool)
    assert response["abstained"] == (response["answer"] is None)
    assert snapshot(workspace.index) == before


# ---------------------------------------------------------------------------------------------------------------
# Bugs found here (strict xfails: they fail now, and will say so once fixed)


@pytest.mark.slow
def test_a_symlink_loop_is_skipped_not_fatal(tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))
    corpus = write_corpus(tmp_path / "corpus", {"tea.txt": SMALL_DOCS["tea.txt"]})
    (corpus / "loop.txt").symlink_to("loop.txt")
    result = run("--corpus", str(corpus), "--index", str(tmp_path / "index"), "index")
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in skip_lines(result)] == ["skipped loop.txt"]


def test_a_named_pipe_in_the_corpus_does_not_hang_reading(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"tea.txt": SMALL_DOCS["tea.txt"]})
    fifo = corpus / "pipe.txt"
    os.mkfifo(fifo)
    items: list[Document | Skipped] = []
    reader = threading.Thread(target=lambda: items.extend(read_corpus(corpus)), daemon=True)
    reader.start()
    reader.join(5)
    hung = reader.is_alive()
    if hung:  # let the reader go: open the pipe for writing and close it, so that its read sees the end
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
    assert not hung, "reading the corpus blocked on a named pipe"
    assert [(s.source, "pipe" in s.reason or "regular" in s.reason) for s in items if isinstance(s, Skipped)] == [
        ("pipe.txt", True)
    ]


@pytest.mark.slow
def test_a_file_name_cannot_forge_skip_lines(tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))
    corpus = write_corpus(
        tmp_path / "corpus", {"tea.txt": SMALL_DOCS["tea.txt"], "a\nskipped tea.txt: forged.txt": b""}
    )
    result = run("--corpus", str(corpus), "--index", str(tmp_path / "index"), "index")
    assert result.exit_code == 0, result.output
    assert len(skip_lines(result)) == 1, skip_lines(result)


# ---------------------------------------------------------------------------------------------------------------
# A 50 MB document

BIG_BYTES = 50_000_000


def real_looking_text(size: int) -> str:
    """About `size` bytes of ASCII prose: the sentences of the small corpus, repeated in numbered paragraphs."""
    sentences = [s.strip() + "." for text in SMALL_DOCS.values() for s in text.split(".") if len(s.split()) > 3]
    paragraphs, total, n = [], 0, 0
    while total < size:
        n += 1
        body = " ".join(sentences[(n + i) % len(sentences)] for i in range(7))
        paragraph = f"Section {n}\n\n{body}\n\n"
        paragraphs.append(paragraph)
        total += len(paragraph)
    return "".join(paragraphs)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus with one good document and a ~50 MB one, written once."""
    corpus = write_corpus(tmp_path_factory.mktemp("big") / "corpus", {"tea.txt": SMALL_DOCS["tea.txt"]})
    (corpus / "big.txt").write_text(real_looking_text(BIG_BYTES), encoding="utf-8")
    return corpus


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.slow
def test_rag_index_skips_a_50_mb_document_with_its_size_and_answers_from_the_rest(
    big_corpus: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = (big_corpus / "big.txt").stat().st_size
    if Settings().max_file_bytes >= size:  # it would be embedded: about an hour on two cores
        pytest.fail(f"max_file_bytes ({Settings().max_file_bytes}) no longer keeps a {size}-byte file out")
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))
    index = big_corpus.parent / "index"
    before, started = peak_rss(), time.perf_counter()
    result = run("--corpus", str(big_corpus), "--index", str(index), "index")
    seconds, grown = time.perf_counter() - started, peak_rss() - before
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output and "error:" not in result.output
    assert "1 added" in result.stdout and "1 skipped" in result.stdout
    [line] = skip_lines(result)
    assert line.startswith("skipped big.txt: ") and "MB" in line and "max_file_bytes" in line, line
    assert seconds < 60, f"rag index took {seconds:.1f} s"
    assert grown < 4 * 2**30, f"peak RSS grew by {grown / 2**20:.0f} MiB"
    asked = run("--corpus", str(big_corpus), "--index", str(index), "ask", "Where is green tea grown?", "--json")
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["answer"]["source"] == "tea.txt"
    assert "skipped" not in asked.stderr  # the skipped file is not read again while it stays the same


def test_reading_a_50_mb_document_is_quick_and_bounded_in_memory(big_corpus: Path) -> None:
    """Below the size limit (a reader called without one, and a text limit above its size) the whole file is read, in
    a reader process: in bounded time and memory, here and there."""
    path = big_corpus / "big.txt"
    size = path.stat().st_size
    assert size >= BIG_BYTES
    pool = ReaderPool(ReaderLimits(memory_mb=1536, seconds=60, max_chars=size), size=1)
    before = peak_rss()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        doc = read_document(big_corpus, path, pool=pool)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pool.close()
    seconds, grown = time.perf_counter() - started, peak_rss() - before
    assert doc.source == "big.txt" and doc.title == "Section 1"
    assert len(doc.text) == size and doc.size == size  # ASCII: one character per byte
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert grown < 4 * 2**30, f"peak RSS grew by {grown / 2**20:.0f} MiB"
    assert peak < 6 * size, f"{peak / 2**20:.0f} MiB held at once to read a {size / 2**20:.0f} MiB file"
    assert seconds < 60, f"reading took {seconds:.1f} s"


# ---------------------------------------------------------------------------------------------------------------
# Bad questions and odd values through POST /api/ask


@pytest.mark.slow
@pytest.mark.parametrize("question", BAD_QUESTIONS)
def test_a_bad_question_is_a_4xx_json_error(served: Served, question: str, private_paths: list[str]) -> None:
    error = assert_error(post_json(served.client, "/api/ask", {"question": question}), private_paths, {400})
    assert error["code"] == "bad_question"


@pytest.mark.slow
@pytest.mark.parametrize("question", BAD_QUESTIONS)
def test_a_bad_question_in_the_history_is_a_4xx_json_error(
    served: Served, question: str, private_paths: list[str]
) -> None:
    body = {"question": SHINKANSEN, "history": [SHINKANSEN, question]}
    assert_error(post_json(served.client, "/api/ask", body), private_paths, {400})


@pytest.mark.slow
@pytest.mark.parametrize("question", ODD_QUESTIONS)
def test_an_odd_but_legitimate_question_gets_a_200(served: Served, question: str) -> None:
    r = post_json(served.client, "/api/ask", {"question": question})
    assert r.status_code == 200, r.text[:500]
    assert r.json()["question"] == question.strip()


@pytest.mark.slow
@pytest.mark.parametrize("top_k", BAD_TOP_K, ids=repr)
def test_a_bad_top_k_is_a_4xx_json_error(served: Served, top_k: Any, private_paths: list[str]) -> None:
    assert_error(post_json(served.client, "/api/ask", {"question": SHINKANSEN, "top_k": top_k}), private_paths)


@pytest.mark.slow
def test_a_null_top_k_means_the_default(served: Served) -> None:
    r = post_json(served.client, "/api/ask", {"question": SHINKANSEN, "top_k": None})
    assert r.status_code == 200, r.text
    chunks = len(served.assistant.index.chunks)
    assert len(r.json()["citations"]) == min(served.assistant.settings.top_k, chunks)


@pytest.mark.slow
def test_a_top_k_with_more_digits_than_python_prints_is_a_4xx(served: Served, private_paths: list[str]) -> None:
    body = b'{"question": "When did it open?", "top_k": ' + b"9" * 5000 + b"}"
    r = served.client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert_error(r, private_paths)


# ---------------------------------------------------------------------------------------------------------------
# No error body says more than it should

ERROR_REQUESTS = [
    pytest.param("GET", "/documents/nothing-here.txt", {}, id="unknown-document"),
    pytest.param("GET", "/documents/empty.txt", {}, id="skipped-empty"),
    pytest.param("GET", "/documents/outside.txt", {}, id="skipped-outside-link"),
    pytest.param("GET", "/documents/locked.txt", {}, id="skipped-unreadable"),
    pytest.param("GET", "/documents/.hidden.txt", {}, id="hidden"),
    pytest.param("GET", "/documents/report.pdf", {}, id="pdf"),
    pytest.param("GET", "/documents/trains/shinkansen.txt?start=x", {}, id="bad-offset"),
    pytest.param("GET", "/api/nothing", {}, id="unknown-route"),
    pytest.param("DELETE", "/api/ask", {}, id="wrong-method"),
    pytest.param("POST", "/api/reindex", {}, id="admin-off"),
    pytest.param("POST", "/api/reindex?full=maybe", {"headers": {"authorization": "Bearer x"}}, id="admin-bad"),
    pytest.param("POST", "/api/documents", {"files": {"file": ("a.txt", b"hello", "text/plain")}}, id="upload"),
    pytest.param("POST", "/api/ask", {"content": b'{"question": "When', "headers": JSON}, id="truncated"),
    pytest.param("POST", "/api/ask", {"content": b"\xff\xfe\x00", "headers": JSON}, id="not-utf8"),
    pytest.param("POST", "/api/ask", {"json": {"question": ["a"] * 3}}, id="list-question"),
    pytest.param("POST", "/api/ask", {"json": {"question": "hi", "history": [{"a": 1}]}}, id="object-history"),
    pytest.param("POST", "/api/ask", {"json": {"question": "hi", "top_k": "1e9"}}, id="string-top_k"),
    pytest.param("POST", "/", {"data": {"q": "\x00"}}, id="form-nul"),
    pytest.param("POST", "/turn", {"data": {"q": "", "n": "x"}}, id="turn-bad-n"),
    pytest.param("POST", "/turn", {"data": {"q": "hi", "n": "9" * 5000}}, id="turn-huge-n"),
]


@pytest.mark.slow
@pytest.mark.parametrize("method,path,kwargs", ERROR_REQUESTS)
def test_error_bodies_hold_no_traceback_and_no_path(
    served: Served, method: str, path: str, kwargs: dict[str, Any], private_paths: list[str]
) -> None:
    r = served.client.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert_no_leak(r.text, private_paths)
    if r.headers["content-type"].startswith("application/json"):
        assert_error(r, private_paths)


@pytest.mark.slow
def test_a_document_that_became_unreadable_is_still_shown_as_indexed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Citations refer to the text as indexed, which the index keeps: the file is not read again to show it.
    path = (served.assistant.settings.corpus / "tea.txt").absolute()
    monkeypatch.setattr(Path, "read_bytes", _read_bytes)
    LOCKED.add(path)
    try:
        r = served.client.get("/documents/tea.txt")
    finally:
        LOCKED.discard(path)
    assert r.status_code == 200 and served.assistant.document_text("tea.txt") == SMALL_DOCS["tea.txt"]


def test_the_original_of_a_vanished_file_is_a_404_without_its_path(
    served: Served, tmp_path: Path, private_paths: list[str]
) -> None:
    path = served.assistant.settings.corpus / "tea.txt"
    kept = tmp_path / "tea.txt"
    path.rename(kept)
    try:
        error = assert_error(served.client.get("/files/tea.txt"), private_paths, {404})
    finally:
        kept.rename(path)
    assert "tea.txt" in error["message"]
    assert_error(served.client.get("/files/..%2f..%2fetc%2fpasswd"), private_paths, {404})


# ---------------------------------------------------------------------------------------------------------------
# Request body limits: refused by the middleware before any route reads the body


def assert_raw_error(status: int, headers: dict[bytes, bytes], body: str, private: list[str]) -> dict[str, str]:
    assert headers[b"content-type"].startswith(b"application/json"), headers
    assert_no_leak(body, private)
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and error["code"] and error["message"]
    return error


MB_JSON = json.dumps({"question": "x" * 1_000_000}).encode()
MB_FORM = b"q=" + b"x" * 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize(
    "path,content,content_type",
    [
        ("/api/ask", MB_JSON, "application/json"),
        ("/", MB_FORM, "application/x-www-form-urlencoded"),
        ("/turn", MB_FORM, "application/x-www-form-urlencoded"),
    ],
    ids=["api-ask", "chat-form", "turn"],
)
def test_a_1_mb_body_is_a_413_json_error(
    served: Served, path: str, content: bytes, content_type: str, private_paths: list[str]
) -> None:
    r = served.client.post(path, content=content, headers={"content-type": content_type})
    assert assert_error(r, private_paths, {413})["code"] == "too_large"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/ask", "/", "/turn", "/api/documents"])
def test_a_chunked_body_without_length_is_a_411_before_the_route(
    served: Served, path: str, private_paths: list[str]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    chunks = [b'{"question": ', b'"When did the first Shinkansen line open?"}']
    status, response_headers, body, received = raw_request(served.app, "POST", path, headers, chunks)
    assert status == 411, body
    assert assert_raw_error(status, response_headers, body, private_paths)["code"] == "length_required"
    assert received == 0, "the body was read before it was refused"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/ask", "/", "/api/documents"])
def test_a_chunked_body_behind_a_small_length_is_refused_unread(
    served: Served, path: str, private_paths: list[str]
) -> None:
    """Issue #11: Content-Length 10 and Transfer-Encoding chunked together: the server reads the chunks, so the
    length said nothing; a 1 MB body came through. Now it is refused before a byte is read, with the CSP."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"10"),
        (b"transfer-encoding", b"chunked"),
    ]
    status, response_headers, body, received = raw_request(served.app, "POST", path, headers, [MB_JSON])
    assert status == 411, body
    assert assert_raw_error(status, response_headers, body, private_paths)["code"] == "length_required"
    assert received == 0, "the body was read before it was refused"
    assert b"content-security-policy" in response_headers


@pytest.mark.slow
def test_a_1_mb_body_is_refused_from_its_length_before_the_route(served: Served, private_paths: list[str]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(MB_JSON)).encode())]
    status, response_headers, body, received = raw_request(served.app, "POST", "/api/ask", headers, [MB_JSON])
    assert status == 413, body
    assert assert_raw_error(status, response_headers, body, private_paths)["code"] == "too_large"
    assert received == 0, "the body was read before it was refused"
    assert b"content-security-policy" in response_headers  # issue #11: refusals carried no CSP


@pytest.mark.slow
@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e6", b" 12", b"\xd9\xa1\xd9\xa2", b"9" * 400])
def test_a_malformed_content_length_is_refused_before_the_route(
    served: Served, length: bytes, private_paths: list[str]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    status, response_headers, body, received = raw_request(served.app, "POST", "/api/ask", headers, [b"{}"])
    assert 400 <= status < 500, (status, body)
    assert_raw_error(status, response_headers, body, private_paths)
    assert received == 0, "the body was read before it was refused"
