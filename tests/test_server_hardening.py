"""What a hostile client found at the HTTP edge (issue #11), each pinned by a test that failed before the fix:
bodies over the limit counted as they arrive, uploads refused before they are read, the security headers on a
crash, HEAD and OPTIONS on every route, a redirect that does not trust `Host`, and questions that cannot starve the
status routes or wait without bound."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag import indexing
from rag.answer import Response
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server import pages, views
from rag.server.api import create_app

from .helpers import write_corpus
from .server_support import (
    AUTH,
    QUESTION,
    UPLOAD_LIMIT,
    WAIT,
    Served,
    admin,  # noqa: F401  (fixtures)
    bundled,  # noqa: F401
    links,
    multipart,
    plain,  # noqa: F401
    raw_request,
    serve,
)

MB = 1_000_000


def test_a_body_longer_than_its_length_is_cut_off_at_the_limit(plain: Served) -> None:  # noqa: F811
    """The limit holds for the bytes that arrive, not only for the length the headers declare."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"20")]
    chunks = [json.dumps({"question": "x" * MB}).encode()[i : i + 65_536] for i in range(0, MB, 65_536)]
    status, response_headers, body, received = raw_request(plain.app, "POST", "/api/ask", headers, chunks)
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "too_large"
    assert received <= 5, f"{received} chunks of 64 kB read past a 256 kB limit"
    assert b"content-security-policy" in response_headers


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 401)])
def test_an_upload_without_the_token_is_refused_before_its_body_is_read(
    admin: Served,  # noqa: F811
    token: str | None,
    status: int,
) -> None:
    """FastAPI read a declared `File` (the whole body, spooled to disk) before the route's token check."""
    body, content_type = multipart(b"notes.txt", b"x" * (UPLOAD_LIMIT // 2))
    headers = [(b"content-type", content_type["content-type"].encode()), (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    got, _, reply, received = raw_request(admin.app, "POST", "/api/documents", headers, chunks)
    assert got == status, reply
    assert received == 0, f"{received} chunks of the body were read before the {status}"


def test_an_upload_with_the_token_is_still_read_and_checked(admin: Served) -> None:  # noqa: F811
    r = admin.client.post("/api/documents", headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    body, headers = multipart(b"hardening-notes.txt", b"Hardening Notes\n\nThe owl ledger is blue.\n")
    r = admin.client.post("/api/documents", content=body, headers={**headers, **AUTH})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "hardening-notes.txt"
    admin.settle()


def test_a_crash_carries_the_security_headers(plain: Served, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(plain.assistant, "ask", crash)
    r = plain.client.post("/api/ask", json={"question": QUESTION})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/api/health", "/api/documents", "/api/index", "/metrics", "/", "/admin"])
def test_head_answers_every_get_route_with_its_headers_and_no_body(plain: Served, path: str) -> None:  # noqa: F811
    get, head = plain.client.get(path), plain.client.head(path)
    assert get.status_code == head.status_code == 200, (get.status_code, head.status_code)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if "content-length" in get.headers and path not in ("/metrics", "/api/index"):  # those two change between calls
        assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/documents", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/documents/a.txt", {"GET", "HEAD", "DELETE", "OPTIONS"}),
        ("/api/ask", {"POST", "OPTIONS"}),
        ("/", {"GET", "HEAD", "POST", "OPTIONS"}),
    ],
)
def test_options_and_405_name_every_method_of_the_path(
    plain: Served,  # noqa: F811
    path: str,
    allowed: set[str],
) -> None:
    r = plain.client.options(path)
    assert r.status_code == 204, r.text
    assert set(r.headers["allow"].split(", ")) == allowed
    r = plain.client.put(path)
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == allowed


@pytest.mark.parametrize("host", [b"evil.example", b"testserver"])
def test_a_trailing_slash_redirects_without_trusting_the_host(plain: Served, host: bytes) -> None:  # noqa: F811
    status, headers, _, _ = raw_request(plain.app, "GET", "/admin/?x=1", [(b"host", host)])
    assert status == 307 and headers[b"location"] == b"/admin?x=1"
    for path in ["//evil.example/", "/no-such-page/"]:
        assert raw_request(plain.app, "GET", path)[0] == 404


@pytest.fixture
def held(plain: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:  # noqa: F811
    """Every question waits until the event is set."""
    release = threading.Event()

    def slow_ask(*args: Any, **kwargs: Any) -> Response:
        assert release.wait(WAIT)
        return Response("q", True, 0.0, None, [])

    monkeypatch.setattr(plain.assistant, "ask", slow_ask)
    yield release
    release.set()


def test_status_routes_answer_while_questions_hold_every_thread(plain: Served, held: threading.Event) -> None:  # noqa: F811
    """50 questions in flight took the 40 threads of the shared pool and /api/health waited behind them."""
    app = create_app(plain.assistant)
    with TestClient(app) as client, ThreadPoolExecutor(51) as threads:  # one event loop, as under uvicorn
        asks = [threads.submit(client.post, "/api/ask", json={"question": QUESTION}) for _ in range(50)]
        health = threads.submit(client.get, "/api/health")
        assert health.result(timeout=WAIT).status_code == 200
        assert not any(a.done() for a in asks), "a question was answered before it was let go"
        held.set()
        assert all(a.result(timeout=WAIT).status_code == 200 for a in asks)


def test_a_question_over_the_queue_depth_is_a_503_with_retry_after(plain: Served, held: threading.Event) -> None:  # noqa: F811
    app = create_app(plain.assistant)
    app.state.asks.depth = 2
    with TestClient(app) as client, ThreadPoolExecutor(2) as threads:
        waiting = [threads.submit(client.post, "/api/ask", json={"question": QUESTION}) for _ in range(2)]
        while app.state.asks.pending < 2:
            threading.Event().wait(0.01)
        r = client.post("/api/ask", json={"question": QUESTION})
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
        assert int(r.headers["retry-after"]) >= 1
        r = client.post("/turn", data={"q": QUESTION, "n": "1"})
        assert r.status_code == 503 and "retry-after" in r.headers
        held.set()
        assert all(w.result(timeout=WAIT).status_code == 200 for w in waiting)


# ---------------------------------------------------------------------------------------------------------------
# Pages that must not grow with the corpus (item 9)

MANY = 45  # more than the sidebar shows (pages.SIDEBAR)
LONG_SOURCE = "long.txt"
LONG_SENTENCE = "The quiet lighthouse keeper counted {} gulls on the rocks today. "


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Served:
    """45 short documents and one of ~20,000 characters, served with parts of 2,000 characters (see `parts`)."""
    root = tmp_path_factory.mktemp("many")
    docs = {f"notes/{i:03d}.txt": f"Ledger {i:03d}\n\nThe ledger number {i} lists {i} owls." for i in range(MANY)}
    docs[LONG_SOURCE] = "Long Ledger\n\n" + "".join(LONG_SENTENCE.format(i) for i in range(300))
    write_corpus(root / "corpus", docs)
    settings = Settings(corpus=root / "corpus", index=root / "index")
    index, _ = indexing.build(settings, encoder, progress=False)
    return serve(Assistant(settings, index, encoder))


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(views, "PART_CHARS", 2_000)
    return 2_000


def test_every_page_shows_a_bounded_sidebar_and_links_the_full_list(many: Served) -> None:
    for path in ["/", "/admin", "/documents/no-such.txt", f"/documents/{LONG_SOURCE}"]:
        page = many.client.get(path).text
        assert len(links(page, "/documents/")) <= pages.SIDEBAR + 1, path  # the page's own link may add one
        assert f"All {MANY + 1} documents" in page and 'action="/documents"' in page


def test_the_document_list_filters_and_pages(many: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "LIST_PAGE", 20)
    first = many.client.get("/documents").text
    assert "46 documents" in first and "page 1 of 3" in first
    listed = [link for p in (1, 2, 3) for link in links(many.client.get(f"/documents?page={p}").text, "/documents/")]
    assert len(set(listed)) >= MANY + 1
    found = many.client.get("/documents", params={"q": "ledger 017"}).text
    assert "1 document holds" in found and "/documents/notes/017.txt" in found
    assert many.client.get("/documents?page=999").status_code == 200  # clamped to the last page


def test_a_long_document_is_shown_a_part_at_a_time(many: Served, parts: int) -> None:
    text = many.client.get(f"/api/documents/{LONG_SOURCE}").json()["text"]
    count = -(-len(text) // parts)
    page = many.client.get(f"/documents/{LONG_SOURCE}").text
    assert f"Part 1 of {count}" in page and "?part=2" in page
    assert len(page) < 3 * parts + 20_000, "the whole document was drawn"
    start = text.index(LONG_SENTENCE.format(250))
    end = start + len(LONG_SENTENCE.format(250)) - 1
    page = many.client.get(f"/documents/{LONG_SOURCE}", params={"start": start, "end": end}).text
    assert re.search(r'<mark id="passage"[^>]*>' + re.escape(html.escape(text[start:end])) + "</mark>", page)
    assert f"Part {start // parts + 1} of {count}" in page or f"Part {start // parts} of {count}" in page


def test_the_parts_of_a_document_join_into_it() -> None:
    text = "".join(LONG_SENTENCE.format(i) for i in range(5_000))  # ~330,000 characters
    shown = [views.document_part(text, k, None) for k in range(1, 10)]
    assert shown[0].start == 0 and shown[-1].end == len(text) and shown[0].count == 4
    assert all(a.end == b.start for a, b in zip(shown, shown[1:], strict=False) if a.number != b.number)
    assert all(text[p.start - 1] == " " for p in shown if p.start > 0)  # a part starts after a space
    for start in (0, 99_999, 100_010, 250_000, len(text) - 5):
        p = views.document_part(text, None, (start, min(start + 500, len(text))))
        assert p.start <= start and min(start + 500, len(text)) <= p.end


def test_document_pages_over_the_render_queue_get_a_503(many: Served) -> None:
    app = create_app(many.assistant)
    app.state.renders.depth = 0
    r = TestClient(app).get(f"/documents/{LONG_SOURCE}")
    assert r.status_code == 503 and r.headers["retry-after"] and "Busy" in r.text


def test_a_phrase_repeated_is_embedded_once(tmp_path: Path, encoder: Encoder) -> None:
    """A 300 kB file of one word repeated is some 400 sentences of 120 words; its distinct texts are two, and only
    those are encoded (the 5 MB file of issue #11 took 290 s, almost all of it embedding the same text)."""
    counted = Counting(encoder)
    settings = Settings(
        corpus=write_corpus(tmp_path / "corpus", {"lorem.txt": "lorem " * 50_000}), index=tmp_path / "i"
    )
    _, report = indexing.build(settings, counted, progress=False)  # type: ignore[arg-type]
    assert report.sentences_embedded >= 400
    assert counted.texts <= 3, f"{counted.texts} texts encoded for {report.sentences_embedded} sentences"


class Counting:
    """An encoder that counts the texts it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.texts = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: list[str], batch_size: int = 32, progress: Any = None) -> Any:
        self.texts += len(texts)
        return self.inner.encode(texts, batch_size, progress=progress)


def test_a_running_rebuild_can_be_cancelled_and_the_old_index_keeps_serving(
    admin: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = admin.service
    before = [d.source for d in admin.assistant.index.documents]
    (admin.corpus / "slow-notes.txt").write_text("Slow Notes\n\nThe heron ledger is kept in the boathouse.\n")
    entered = threading.Event()

    def endless(texts: list[str], batch_size: int = 32, progress: Any = None) -> Any:
        entered.set()
        while True:  # a batch after a batch, until the build is told to stop
            progress(1)
            time.sleep(0.01)

    monkeypatch.setattr(service.rebuilder.encoder(), "encode", endless)
    assert admin.client.delete("/api/reindex", headers=AUTH).status_code == 409  # nothing runs yet
    assert admin.client.post("/api/reindex", headers=AUTH).status_code == 202
    assert entered.wait(WAIT)
    assert admin.client.post("/api/reindex", headers=AUTH).json()["error"]["message"].endswith("(DELETE /api/reindex)")
    assert admin.client.delete("/api/reindex").status_code == 401
    r = admin.client.delete("/api/reindex", headers=AUTH)
    assert r.status_code == 202 and r.json()["running"]
    service.wait(WAIT)
    state = admin.client.get("/api/index").json()["rebuild"]
    assert not state["running"] and "cancelled" in state["last_error"]
    assert [d.source for d in admin.assistant.index.documents] == before
    assert not list(admin.root.glob(".index.new-*")), "the cancelled build left its folder"
    monkeypatch.undo()
    assert admin.client.post("/api/reindex", headers=AUTH).status_code == 202  # the next one is not cancelled
    admin.settle()
    assert "slow-notes.txt" in {d.source for d in admin.assistant.index.documents}
