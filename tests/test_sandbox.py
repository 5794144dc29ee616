"""Readers in child processes with limits (issue #20): a file that aborts its reader, needs gigabytes or takes
minutes is skipped with its reason; the build, the server and its start-up go on; a cancel ends a read at once; text
past max_text_chars is cut with a note.

The hostile files are built here (tests/hostile_files.py). Whatever could take the test run down with it runs in a
reader process with its own memory limit, or in a `rag` subprocess under `resource.setrlimit`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag import indexing
from rag.config import Settings
from rag.embedding import Encoder
from rag.errors import Cancelled
from rag.pipeline import Assistant
from rag.readers import Unreadable
from rag.readers.base import Extracted
from rag.readers.sandbox import ReaderLimits, ReaderPool, pool_for
from rag.readers.worker import cut

from .helpers import with_memory_limit
from .hostile_files import inflating_pdf, nested_forms_pdf, plain_pdf
from .test_live import RAG, WAIT, copy_bundled, rag_server
from .test_reader_attacks import docx_with, page_of

LIMITS = ReaderLimits(memory_mb=1024, seconds=60, max_chars=10_000_000)
ADDRESS_SPACE = 8 << 30  # for a `rag` subprocess: room for its model, never the whole machine


def test_a_reader_that_aborts_skips_only_its_file() -> None:
    pool = ReaderPool(LIMITS, size=1)
    try:
        with pytest.raises(Unreadable, match=r"reader stopped \(SIGABRT\).*1024 MB \(reader_memory_mb\)"):
            pool.read(".pdf", nested_forms_pdf(30))
        with pytest.raises(Unreadable, match="reader_memory_mb"):
            pool.read(".pdf", inflating_pdf(200))
        assert pool.read(".pdf", plain_pdf(b"Still reading.")).extracted.text.strip() == "Still reading."
    finally:
        pool.close()


def test_a_slow_file_is_skipped_after_reader_seconds() -> None:
    pool = ReaderPool(dataclasses.replace(LIMITS, seconds=1.0), size=1)
    try:
        started = time.monotonic()
        with pytest.raises(Unreadable, match=r"could not be read within 1 s \(reader_seconds\)"):
            pool.read(".pdf", nested_forms_pdf(21))  # about 8 s of PDFium on two cores
        assert time.monotonic() - started < 3
        assert pool.read(".txt", b"After the slow one.").extracted.text == "After the slow one."
    finally:
        pool.close()


def test_a_cancel_ends_the_running_reader_at_once() -> None:
    pool = ReaderPool(LIMITS, size=1)
    cancel, raised = threading.Event(), []

    def read() -> None:
        try:
            pool.read(".pdf", nested_forms_pdf(21), cancel)
        except Cancelled as exc:
            raised.append((time.monotonic(), exc))

    try:
        pool.read(".txt", b"warm")  # the worker is up: the cancel below meets a read, not a start
        thread = threading.Thread(target=read)
        thread.start()
        time.sleep(0.5)
        cancelled = time.monotonic()
        cancel.set()
        thread.join(10)
        assert raised and raised[0][0] - cancelled < 0.5
        # The worker that was reading is stopped, never handed the next file with the old one's text pending.
        assert pool.read(".txt", b"The next file.").extracted.text == "The next file."
    finally:
        pool.close()


def test_text_past_max_text_chars_is_cut_with_a_note(tmp_path: Path, encoder: Encoder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "long.txt").write_text("The lighthouse keeper lit the lamp each night. " * 300, encoding="utf-8")
    (corpus / "short.txt").write_text("The ferry leaves at noon.", encoding="utf-8")
    settings = Settings(corpus=corpus, index=tmp_path / "index", max_text_chars=1000)
    index, report = indexing.build(settings, encoder, progress=False)
    assert [c.source for c in report.cut] == ["long.txt"]
    assert "max_text_chars" in report.cut[0].reason and "cut long.txt" in "\n".join(report.skip_lines())
    assert 500 < len(index.texts.get("long.txt")) <= 1000
    assert index.texts.get("short.txt") == "The ferry leaves at noon."


def _hostile_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "ferry.txt").write_text("The ferry to Skarn leaves at noon every day.", encoding="utf-8")
    (corpus / "forms.pdf").write_bytes(nested_forms_pdf(30))
    (corpus / "inflated.pdf").write_bytes(inflating_pdf(200))
    return corpus


@pytest.mark.slow
def test_rag_index_finishes_with_hostile_files_and_reports_them(tmp_path: Path) -> None:
    corpus = _hostile_corpus(tmp_path)
    where = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    done = subprocess.run(
        with_memory_limit([RAG, *where, "index"], ADDRESS_SPACE), capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "1 added" in output and "2 skipped" in output
    assert re.search(r"skipped forms\.pdf: the reader stopped \(SIGABRT\)", output), output
    assert re.search(r"skipped inflated\.pdf: the reader stopped", output), output


def _get(url: str, token: str | None = None) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=5) as reply:
        body = json.loads(reply.read())
    return time.monotonic() - started, body


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


@pytest.mark.slow
def test_serve_watch_keeps_answering_while_hostile_files_arrive(tmp_path: Path, assistant: Assistant) -> None:
    """Copied into a watched corpus, then uploaded: /api/health answers within 1 s throughout, the server's memory
    stays within 1 GB of its idle size, and the files are listed as skipped with their reasons; a server started
    with them present starts."""
    settings = copy_bundled(tmp_path, assistant)
    token = "hostile-admin"
    with rag_server(settings, "--watch", env={"RAG_ADMIN_TOKEN": token}) as (url, process):
        idle = _rss_mb(process.pid)
        (settings.corpus / "forms.pdf").write_bytes(nested_forms_pdf(30))
        (settings.corpus / "inflated.pdf").write_bytes(inflating_pdf(200))
        (settings.corpus / "deep.html").write_text(page_of("<div/>", 100_000), encoding="utf-8")
        paragraphs = "<w:p><w:r><w:t>The same line.</w:t></w:r></w:p>" * 85_000  # one text to embed, not 85,000
        (settings.corpus / "paragraphs.docx").write_bytes(docx_with(paragraphs))
        hostile = {"forms.pdf", "inflated.pdf", "deep.html"}
        slowest, peak, deadline = 0.0, idle, time.monotonic() + WAIT
        while True:
            took, _ = _get(f"{url}/api/health")
            slowest, peak = max(slowest, took), max(peak, _rss_mb(process.pid))
            _, status = _get(f"{url}/api/index", token)
            if hostile <= set(status.get("skipped", {})) and not status["rebuild"]["running"]:
                break
            assert time.monotonic() < deadline and process.poll() is None, status
            time.sleep(0.2)
        assert slowest < 1.0 and peak - idle < 1024
        assert "reader_memory_mb" in status["skipped"]["forms.pdf"]["reason"]
        assert "nesting" in status["skipped"]["deep.html"]["reason"]
        assert "paragraphs.docx" not in status["skipped"]  # 85,000 paragraphs: read in seconds, and indexed
        log = (settings.corpus.parent / "server.log").read_text(errors="replace")
        assert re.search(r"index rebuilt: .*skipped forms\.pdf: the reader stopped", log)  # issue #21
        request = urllib.request.Request(
            f"{url}/api/documents",
            *_form("forms-again.pdf", nested_forms_pdf(30), token),
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=WAIT)
        assert refused.value.code == 400 and b"reader stopped" in refused.value.read()
        assert _get(f"{url}/api/health")[0] < 1.0 and process.poll() is None
    with rag_server(settings) as (url, process):  # starts with the hostile files in its corpus
        assert _get(f"{url}/api/health")[1]


def _form(name: str, data: bytes, token: str) -> tuple[bytes, dict[str, str]]:
    boundary = "----rag-sandbox-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"}
    return body, headers


def test_the_pool_of_settings_is_shared_and_bounded() -> None:
    settings = Settings(reader_memory_mb=900, reader_seconds=5, max_text_chars=100)
    pool = pool_for(settings)
    assert pool is pool_for(Settings(reader_memory_mb=900, reader_seconds=5, max_text_chars=100))
    assert pool.limits == ReaderLimits(900, 5, 100) and 1 <= pool.size <= 2


def test_a_module_planted_where_the_server_runs_does_not_run_in_a_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader process imports its libraries from the installation, never from the folder `rag` was started in
    (python -P): a `pypdfium2.py` dropped there must not run."""
    (tmp_path / "pypdfium2.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    pool = ReaderPool(LIMITS, size=1)
    try:
        assert pool.read(".pdf", plain_pdf(b"Read by PDFium.")).extracted.text.strip() == "Read by PDFium."
    finally:
        pool.close()
    assert not (tmp_path / "ran").exists()


def test_a_reader_sees_none_of_the_servers_settings_and_ends_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ADMIN_TOKEN", "do-not-leak")
    pool = ReaderPool(LIMITS, size=1)
    try:
        pool.read(".txt", b"warm")
        reader = pool._idle.queue[-1]
        assert reader is not None
        environment = Path(f"/proc/{reader.process.pid}/environ").read_bytes()
        assert b"RAG_" not in environment and b"do-not-leak" not in environment
    finally:
        pool.close()
    server = (
        "from rag.readers.sandbox import ReaderLimits, ReaderPool\n"
        "pool = ReaderPool(ReaderLimits(1024, 60, 100), size=1)\n"
        "pool.read('.txt', b'warm')\n"
        "print(pool._idle.queue[-1].process.pid, flush=True)\n"
        "import os; os._exit(0)\n"  # gone without closing its pool, as a killed server is
    )
    done = subprocess.run([sys.executable, "-c", server], capture_output=True, text=True, timeout=60)
    orphan = Path(f"/proc/{int(done.stdout)}")
    deadline = time.monotonic() + 5
    while orphan.exists() and "State:\tZ" not in _status(orphan) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not orphan.exists() or "State:\tZ" in _status(orphan)


def _status(proc: Path) -> str:
    try:
        return (proc / "status").read_text()
    except OSError:
        return "State:\tZ (gone)"


@given(
    text=st.text(alphabet=st.sampled_from("ab \n\r\u3000x"), min_size=1, max_size=80),
    max_chars=st.integers(1, 60),
    pages=st.lists(st.integers(0, 79), max_size=5, unique=True),
)
def test_text_is_cut_at_max_chars_with_pages_inside_it(text: str, max_chars: int, pages: list[int]) -> None:
    page_starts = tuple(sorted({0, *(p for p in pages if p < len(text))}))
    extracted, note = cut(Extracted(text, "pdf", None, page_starts), max_chars)
    assert text.startswith(extracted.text) and len(extracted.text) <= max_chars
    assert (note is None) == (len(text) <= max_chars)
    assert all(0 <= p < max(len(extracted.text), 1) for p in extracted.pages)
    assert not extracted.text.endswith("\r") or text[len(extracted.text) : len(extracted.text) + 1] != "\n"


def test_a_reader_ended_by_a_signal_without_a_name_is_explained() -> None:
    pool = ReaderPool(LIMITS, size=1)
    assert "signal 40" in pool._death(-40) and "SIGABRT" in pool._death(-6)
    assert "reader_seconds" in pool._death(-24)  # SIGXCPU: the worker's own CPU limit


def test_a_cancel_reaches_through_the_build_s_reading_threads(tmp_path: Path, encoder: Encoder) -> None:
    """A rebuild's cancel (what DELETE /api/reindex sets) ends a build that is reading a slow file at once: the
    Cancelled raised in read_corpus's thread comes out of `indexing.build`, and the index on disk is untouched."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("The ferry leaves at noon.", encoding="utf-8")
    settings = Settings(corpus=corpus, index=tmp_path / "index")
    indexing.build(settings, encoder, progress=False)
    before = (settings.index / "manifest.json").read_bytes()
    (corpus / "slow.pdf").write_bytes(nested_forms_pdf(21))  # about 8 s of PDFium
    flag = threading.Event()
    cancel = threading.Timer(1.0, flag.set)
    cancel.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        indexing.build(settings, encoder, progress=False, cancel=flag)
    assert time.monotonic() - started < 3.0
    assert (settings.index / "manifest.json").read_bytes() == before
