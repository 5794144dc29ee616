"""Shared apps, fixtures, constants and helpers of the `test_server_*` modules (the web edge through TestClient).

Every app here serves a private copy of a corpus (the bundled one, or a small hostile one) with the real model.
The bundled index is built once by conftest's session `assistant` and copied, so each app's own
`indexing.build` only checks that nothing changed. The module-scoped fixtures (`plain`, `admin`, `hostile`) are
imported by each test module, so each of those modules gets its own apps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag import indexing
from rag.answer import Response
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server.api import create_app

from .helpers import SMALL_DOCS, write_corpus

TOKEN = "s3cret"


AUTH = {"Authorization": f"Bearer {TOKEN}"}


RESPONSE_KEYS = {"question", "abstained", "confidence", "answer", "citations", "context", "note"}


QUESTION = "When did Japan establish diplomatic relations with Ukraine?"


ACCORD = "What is the Accord on Support for Ukraine and Cooperation?"


OFF_TOPIC = "How do I bake sourdough bread at home?"


UPLOAD_LIMIT = 20_000


WAIT = 120.0  # seconds a background rebuild may take at most (the builder loads its own copy of the model)


XSS_SOURCE = "spice<b>notes.txt"


XSS_TEXT = (
    # (A first line that starts with a tag is passed over as a title, as README badges are: this one has a word first.)
    "Zanzibar <b>Spice Notes</b> <script>alert(1)</script>\n\n"
    "The Zanzibar clove harvest begins in July and lasts until October. <script>alert(1)</script> "
    "Growers dry the clove buds on woven mats for four days. <img src=x onerror=alert(1)> "
    "Traders warn buyers about javascript:alert(1) links in forged clove price lists.\n"
)


XSS_QUESTION = "When does the Zanzibar clove harvest begin?"


ODD_SOURCE = "faq?.txt"  # a legal file name with a character that means something in a URL


ODD_TEXT = "Ferry Questions\n\nThe ferry to Awaji Island leaves the Akashi pier every forty minutes."


# ---------------------------------------------------------------------------------------------------------------
# Apps


@dataclass
class Served:
    app: FastAPI
    assistant: Assistant
    client: TestClient
    root: Path

    @property
    def service(self) -> Any:
        return self.app.state.service

    @property
    def corpus(self) -> Path:
        return self.assistant.settings.corpus

    def settle(self) -> None:
        """Wait for a background rebuild to end (bounded) and check it went well."""
        self.service.wait(WAIT)
        assert not self.service.state.running, "the background rebuild did not finish in time"
        assert self.service.state.last_error is None

    def ask(self, question: str, **body: Any) -> dict[str, Any]:
        r = self.client.post("/api/ask", json={"question": question, **body})
        assert r.status_code == 200, r.text
        return r.json()


def serve(assistant: Assistant) -> Served:
    app = create_app(assistant)
    client = TestClient(app, raise_server_exceptions=False)  # a crash shows up as a 500 response, not a raise
    return Served(app, assistant, client, assistant.settings.corpus.parent)


def serve_copy(root: Path, source: Settings, encoder: Encoder, **overrides: Any) -> Served:
    """An app over a copy of `source`'s corpus and index in `root` (the build only checks nothing changed)."""
    shutil.copytree(source.corpus, root / "corpus")
    shutil.copytree(source.index, root / "index")
    settings = dataclasses.replace(source, corpus=root / "corpus", index=root / "index", **overrides)
    index, report = indexing.build(settings, encoder, progress=False)
    assert report.chunks_embedded == 0 and len(report.unchanged) == 5
    return serve(Assistant(settings, index, encoder))


@pytest.fixture(scope="module")
def bundled(assistant: Assistant) -> Settings:
    """conftest's bundled corpus with its index built (once per session)."""
    return assistant.settings


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, bundled: Settings, encoder: Encoder) -> Served:
    """The bundled corpus, no admin token: admin routes are off. Nothing here changes its corpus."""
    return serve_copy(tmp_path_factory.mktemp("plain"), bundled, encoder)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, bundled: Settings, encoder: Encoder) -> Iterator[Served]:
    """The bundled corpus with admin token "s3cret" and a 20 kB upload limit; uploads change its corpus."""
    served = serve_copy(
        tmp_path_factory.mktemp("admin"), bundled, encoder, admin_token=TOKEN, max_upload_bytes=UPLOAD_LIMIT
    )
    yield served
    served.service.wait(WAIT)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Served:
    """Three small documents plus one full of markup (and with `<b>` in its name) and one named `faq?.txt`."""
    root = tmp_path_factory.mktemp("hostile")
    write_corpus(root / "corpus", {**SMALL_DOCS, XSS_SOURCE: XSS_TEXT, ODD_SOURCE: ODD_TEXT})
    settings = Settings(corpus=root / "corpus", index=root / "index")
    index, report = indexing.build(settings, encoder, progress=False)
    assert sorted(report.added) == sorted([*SMALL_DOCS, XSS_SOURCE, ODD_SOURCE])
    return serve(Assistant(settings, index, encoder))


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def assert_error(r: Any, statuses: Any = range(400, 500)) -> dict[str, str]:
    """The one error shape: {"error": {"code", "message"}} as JSON, with an expected (4xx) status."""
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def inner_text(page: str, tag: str, marker: str) -> str | None:
    """The unescaped text of the first `<tag ...>` whose start tag contains `marker` (same-name tags may nest)."""
    start = re.search(rf"<{tag}\b[^>]*{re.escape(marker)}[^>]*>", page)
    if start is None:
        return None
    depth = 1
    for t in re.finditer(rf"<(/?){tag}\b[^>]*>", page[start.end() :]):
        depth += -1 if t.group(1) else 1
        if depth == 0:
            inside = page[start.end() : start.end() + t.start()]
            return html.unescape(re.sub(r"<[^>]*>", "", inside))
    raise AssertionError(f"<{tag} {marker}> is not closed")


def hidden_history(page: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(r'<input type="hidden" name="history" value="([^"]*)">', page)]


def links(page: str, prefix: str) -> list[str]:
    """Every href on the page that starts with `prefix`, unescaped, without its fragment."""
    return [html.unescape(h).split("#")[0] for h in re.findall(r'href="([^"]*)"', page) if h.startswith(prefix)]


def csp(r: Any) -> dict[str, str]:
    policy = r.headers["content-security-policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


def snapshot(folder: Path) -> dict[str, str]:
    """Every path below `folder` with a hash of its content: a failed upload must change none of it."""
    out = {}
    for p in sorted(folder.rglob("*")):
        key = p.relative_to(folder).as_posix()
        out[key] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def multipart(filename: bytes, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body built by hand, so the file name reaches the server byte for byte."""
    boundary = b"----rag-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}


def upload(served: Served, name: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    return served.client.post(
        "/api/documents", files={"file": (name, data, "text/plain")}, headers=AUTH if headers is None else headers
    )


def raw_get(app: FastAPI, raw_path: str) -> tuple[int, str]:
    """GET a path exactly as a client could send it (TestClient normalises `..` away; uvicorn does not)."""
    status, _, body, _ = raw_request(app, "GET", raw_path)
    return status, body


def raw_request(
    app: FastAPI,
    method: str,
    raw_path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, dict[bytes, bytes], str, int]:
    """Send one request straight through the ASGI app, its body in `chunks` whatever the headers say; returns
    (status, headers, body, how often the app called receive)."""
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pending = list(chunks or [])
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body.decode("utf-8", "replace"), received


# ---------------------------------------------------------------------------------------------------------------
# Holding a rebuild


def hold_builds(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make every build wait, once started (`entered` is set), until `release` is set."""
    entered, release = threading.Event(), threading.Event()
    real_build = indexing.build

    def held_build(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(WAIT)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(indexing, "build", held_build)
    return entered, release


# ---------------------------------------------------------------------------------------------------------------
# Canned answers


def canned(body: dict[str, Any]) -> Response:
    """The response whose JSON is `body` (through JSON first, as a client would send it), as `Response.from_dict`
    reads it: a malformed exact span is dropped there, as it was by the pages when they read dicts."""
    return Response.from_dict(json.loads(json.dumps(body)))


def answer_with(monkeypatch: pytest.MonkeyPatch, served: Served, body: dict[str, Any]) -> None:
    """Every question is answered with `body`, read when asked (a test may change `body` after this call)."""
    monkeypatch.setattr(served.assistant, "ask", lambda *args, **kwargs: canned(body))


def strong_exact(fragment: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<strong class="exact">(.*?)</strong>', fragment, re.S)]


# ---------------------------------------------------------------------------------------------------------------
# Injected markup stays text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def assert_inert(page: str) -> None:
    """No injected element or attribute: the only scripts are this server's files, no handlers, no js: URLs."""
    assert "<script>alert" not in page and "<script>window" not in page and "<b>" not in page
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in {"img", "b", "iframe", "object", "embed"}, (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not [v for v in attrs.values() if v.strip().lower().startswith("javascript:")], (tag, attrs)


# ---------------------------------------------------------------------------------------------------------------
# A document page with a marked passage


DOCUMENT_PAGE = "/documents/001_6cd020ec01843fcd.txt?start=542&end=1163&hs=542&he=643"


# ---------------------------------------------------------------------------------------------------------------
# Marks on a page


class _Marked(HTMLParser):
    """The text inside each `<mark>` of a page (a nested mark's text counts for both), and all the text inside
    the marks of class `cls` (once, however they nest)."""

    def __init__(self, cls: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.cls = cls
        self.stack: list[tuple[bool, list[str]]] = []
        self.marks: list[str] = []
        self.in_cls = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mark":
            classes = (dict(attrs).get("class") or "").split()
            self.stack.append((bool(self.cls) and self.cls in classes, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self.stack:
            is_cls, parts = self.stack.pop()
            self.marks.append("".join(parts))
            if is_cls and not any(c for c, _ in self.stack):
                self.in_cls += "".join(parts)

    def handle_data(self, data: str) -> None:
        for _, parts in self.stack:
            parts.append(data)


def marks_of(page: str, cls: str = "") -> _Marked:
    parser = _Marked(cls)
    parser.feed(page)
    return parser
