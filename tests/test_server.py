"""The web edge through FastAPI's TestClient: the JSON API, the HTML pages, admin routes, uploads and headers.

Every app here serves a private copy of a corpus (the bundled one, or a small hostile one) with the real model.
The bundled index is built once by conftest's session `assistant` and copied, so each app's own
`indexing.build` only checks that nothing changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape

from rag import cli, indexing, pages, pipeline
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server import create_app

from .helpers import ROOT, SMALL_DOCS, write_corpus

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
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------------
# POST /api/ask: the CLI's JSON


def test_api_ask_returns_exactly_the_response_keys(plain: Served) -> None:
    body = plain.ask(QUESTION)
    assert set(body) | {"note"} == RESPONSE_KEYS  # "note" is new: tolerated missing until rag.answer has it
    assert body["question"] == QUESTION
    assert body["abstained"] is False and body["context"] is None
    assert "1992" in body["answer"]["text"]
    assert body["citations"] and all(c["n"] == i + 1 for i, c in enumerate(body["citations"]))


@pytest.mark.parametrize(
    "question,top_k", [(QUESTION, None), (ACCORD, 3), (OFF_TOPIC, None)], ids=["answered", "top-k", "abstains"]
)
def test_api_ask_equals_the_python_api(plain: Served, question: str, top_k: int | None) -> None:
    body = plain.ask(question, top_k=top_k)
    expected = plain.assistant.ask(question, top_k=top_k).to_dict()
    assert body == json.loads(json.dumps(expected))


@pytest.mark.parametrize(
    "question,top_k", [(QUESTION, None), (ACCORD, 3), (OFF_TOPIC, None)], ids=["answered", "top-k", "abstains"]
)
def test_api_ask_equals_rag_ask_json(
    plain: Served, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, question: str, top_k: int | None
) -> None:
    monkeypatch.setattr(pipeline, "Encoder", lambda *args, **kwargs: encoder)  # the same model, loaded once
    settings = plain.assistant.settings
    args = ["--corpus", str(settings.corpus), "--index", str(settings.index), "ask", question, "--json"]
    args += [] if top_k is None else ["--top-k", str(top_k)]
    no_env = {f"RAG_{f.name.upper()}": None for f in dataclasses.fields(Settings)}
    result = CliRunner().invoke(cli.main, args, env=no_env)
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)
    assert from_cli == plain.ask(question, top_k=top_k)
    assert set(from_cli) | {"note"} == RESPONSE_KEYS


@pytest.mark.parametrize(
    "question",
    [QUESTION, ACCORD, OFF_TOPIC, "What did Japan do after Chernobyl?", "Who met Minister Kuleba in New York?"],
)
def test_every_quoted_text_is_the_corpus_text_at_its_offsets(plain: Served, question: str) -> None:
    body = plain.ask(question, top_k=10)
    assert len(body["citations"]) == 10
    for c in body["citations"]:
        text = plain.assistant.document_text(c["source"])
        assert text[c["start"] : c["end"]] == c["text"]
        assert c["start"] <= c["highlight"]["start"] < c["highlight"]["end"] <= c["end"]
    if body["answer"]:
        a = body["answer"]
        assert plain.assistant.document_text(a["source"])[a["start"] : a["end"]] == a["text"]
        cited = body["citations"][a["citation"] - 1]
        assert cited["source"] == a["source"] and cited["start"] <= a["start"] < a["end"] <= cited["end"]


# ---------------------------------------------------------------------------------------------------------------
# Errors: one JSON shape, a 4xx status, never a 500

BAD_BODIES = [
    pytest.param({"question": ""}, id="empty"),
    pytest.param({"question": " \n\t "}, id="whitespace"),
    pytest.param({"question": "x" * 2001}, id="2001-chars"),
    pytest.param({"question": "x" * 100_000}, id="100kB"),
    pytest.param({"question": "x" * 300_000}, id="300kB-over-the-body-limit"),
    pytest.param({"question": "what\x00is this"}, id="nul"),
    pytest.param({"question": "bell\x07"}, id="control-char"),
    pytest.param({"question": QUESTION, "top_k": 0}, id="top_k-0"),
    pytest.param({"question": QUESTION, "top_k": -1}, id="top_k-negative"),
    pytest.param({"question": QUESTION, "top_k": 51}, id="top_k-51"),
    pytest.param({"question": QUESTION, "top_k": 10**9}, id="top_k-huge"),
    pytest.param({"question": QUESTION, "top_k": "abc"}, id="top_k-text"),
    pytest.param({"question": QUESTION, "top_k": 2.5}, id="top_k-fraction"),
    pytest.param({"question": QUESTION, "top_k": True}, id="top_k-true"),  # was coerced to 1 (fixed: StrictInt)
    pytest.param({"question": QUESTION, "top_k": "5"}, id="top_k-numeric-string"),
    pytest.param({"question": QUESTION, "top_k": 2.0}, id="top_k-float"),
    pytest.param({}, id="missing-question"),
    pytest.param({"top_k": 3}, id="only-top_k"),
    pytest.param({"question": None}, id="null-question"),
    pytest.param({"question": 42}, id="number-question"),
    pytest.param({"question": ["a list"]}, id="list-question"),
    pytest.param({"question": QUESTION, "history": "not a list"}, id="history-string"),
    pytest.param({"question": QUESTION, "history": {"a": 1}}, id="history-object"),
    pytest.param({"question": QUESTION, "history": [1, 2]}, id="history-numbers"),
    pytest.param({"question": QUESTION, "history": [""]}, id="history-empty-question"),
    pytest.param({"question": QUESTION, "history": ["bad\x00"]}, id="history-nul"),
    pytest.param([QUESTION], id="body-is-a-list"),
    pytest.param(QUESTION, id="body-is-a-string"),
    pytest.param(None, id="body-is-null"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_ask_bodies_get_a_4xx_json_error(plain: Served, body: Any) -> None:
    assert_error(plain.client.post("/api/ask", json=body))


@pytest.mark.parametrize("body", ["", " ", "x" * 2001, "a\x00b"], ids=["empty", "space", "long", "nul"])
def test_a_bad_question_is_a_400_bad_question(plain: Served, body: str) -> None:
    error = assert_error(plain.client.post("/api/ask", json={"question": body}), {400})
    assert error["code"] == "bad_question"


def test_the_body_limit_is_a_413_before_the_route(plain: Served) -> None:
    error = assert_error(plain.client.post("/api/ask", json={"question": "x" * 300_000}), {413})
    assert error["code"] == "too_large"


@pytest.mark.parametrize(
    "content,content_type",
    [
        (b'{"question": "When', "application/json"),
        (b"{'question': 'hi'}", "application/json"),
        (b"question=hi", "text/plain"),
        (json.dumps({"question": QUESTION}).encode(), "text/plain"),
        (b"\xff\xfe\xfd", "application/json"),
        (b"", "application/json"),
        (b'{"question": "When did \\ud800 it open?"}', "application/json"),
        (b'{"question": "When did it open?", "history": ["\\udfff"]}', "application/json"),
        (b'{"question": "hi", "question": "x' + b"x" * 2001 + b'"}', "application/json"),
    ],
    ids=[
        "truncated-json",
        "single-quotes",
        "text-plain-form",
        "text-plain-json",
        "not-utf8",
        "empty-body",
        "lone-surrogate",
        "lone-surrogate-in-history",
        "duplicate-key-last-wins",
    ],
)
def test_malformed_bodies_get_a_4xx_json_error(plain: Served, content: bytes, content_type: str) -> None:
    assert_error(plain.client.post("/api/ask", content=content, headers={"content-type": content_type}))


def test_a_chunked_body_without_length_is_refused(plain: Served) -> None:
    r = plain.client.post(
        "/api/ask", content=iter([b'{"question": "hi"}']), headers={"content-type": "application/json"}
    )
    assert_error(r, {411})


def test_get_on_api_ask_is_405_with_the_error_shape(plain: Served) -> None:
    assert assert_error(plain.client.get("/api/ask"), {405})["code"] == "method_not_allowed"


def test_an_unknown_api_route_is_404_with_the_error_shape(plain: Served) -> None:
    assert assert_error(plain.client.get("/api/nothing-here"), {404})["code"] == "not_found"


# ---------------------------------------------------------------------------------------------------------------
# Follow-up questions


def test_a_follow_up_is_read_with_the_earlier_question(plain: Served) -> None:
    first = plain.ask(ACCORD)
    assert first["context"] is None
    assert first["answer"] and "Accord on Support for Ukraine" in first["answer"]["text"]
    second = plain.ask("When was it signed?", history=[ACCORD])
    assert second["question"] == "When was it signed?"
    assert second["context"] == ACCORD
    assert set(second) | {"note"} == RESPONSE_KEYS


def test_the_follow_up_uses_the_last_question_of_the_history(plain: Served) -> None:
    second = plain.ask("When was it signed?", history=[OFF_TOPIC, ACCORD])
    assert second["context"] == ACCORD


def test_an_off_topic_question_abstains(plain: Served) -> None:
    body = plain.ask(OFF_TOPIC)
    assert body["abstained"] is True and body["answer"] is None and body["context"] is None
    assert body["confidence"] < plain.assistant.settings.min_confidence
    assert body["citations"]  # the closest passages are still shown


def test_an_off_topic_question_in_a_conversation_still_abstains(plain: Served) -> None:
    """A change of subject is not answered with the earlier topic (it was, when the combined reading won)."""
    body = plain.ask(OFF_TOPIC, history=[QUESTION])
    assert body["abstained"] is True and body["answer"] is None and body["context"] is None


def test_a_self_contained_question_ignores_the_history(plain: Served) -> None:
    body = plain.ask(QUESTION, history=["What did Japan do after the Chernobyl disaster?"])
    assert body["context"] is None
    assert body == plain.ask(QUESTION)


# ---------------------------------------------------------------------------------------------------------------
# Status, documents, API docs


def test_health(plain: Served) -> None:
    r = plain.client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["documents"] == 5 and body["chunks"] == len(plain.assistant.index.chunks)
    assert body["model"] == plain.assistant.settings.model
    assert isinstance(body["version"], str)


def test_documents_lists_the_five_corpus_files(plain: Served) -> None:
    r = plain.client.get("/api/documents")
    assert r.status_code == 200
    docs = r.json()
    assert len(docs) == 5
    assert all(set(d) == {"source", "title", "format", "pages", "chunks", "size"} for d in docs)
    files = sorted(p.name for p in plain.corpus.glob("*.txt"))
    assert [d["source"] for d in docs] == files
    for d in docs:
        assert d["size"] == (plain.corpus / d["source"]).stat().st_size
        assert d["title"] and d["chunks"] >= 1
    assert sum(d["chunks"] for d in docs) == len(plain.assistant.index.chunks)


def test_index_status(plain: Served) -> None:
    r = plain.client.get("/api/index")
    assert r.status_code == 200
    body = r.json()
    assert body["documents"] == 5 and body["chunks"] == len(plain.assistant.index.chunks)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["built_at"])
    assert body["model"]["name"] == plain.assistant.settings.model and body["model"]["dimension"] == 384
    assert body["rebuild"]["running"] is False and body["rebuild"]["queued"] is False
    assert {"started_at", "finished_at", "last_report", "last_error", "runs"} <= set(body["rebuild"])


def test_openapi_describes_the_api(plain: Served) -> None:
    r = plain.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"/api/ask", "/api/health", "/api/documents", "/api/index", "/api/reindex"} <= set(paths)
    assert "/documents/{source}" not in paths and "/" not in paths  # pages are not API


def test_api_docs_are_served_offline(plain: Served) -> None:
    r = plain.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static-offline-docs/" in r.text
    assets = re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', r.text)
    assert assets
    for asset in assets:
        assert plain.client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc", "/admin", "/documents/001_6cd020ec01843fcd.txt"])
def test_no_page_loads_anything_from_another_site(plain: Served, path: str) -> None:
    r = plain.client.get(path)
    assert r.status_code == 200
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", r.text, re.I), path
    assert "@import" not in r.text


def test_the_stylesheet_and_scripts_load_nothing_from_another_site(plain: Served) -> None:
    for asset in ["/static/style.css", "/static/chat.js", "/static/admin.js"]:
        r = plain.client.get(asset)
        assert r.status_code == 200, asset
        assert not re.search(r"https?://", r.text), asset


# ---------------------------------------------------------------------------------------------------------------
# Admin routes


def test_admin_routes_are_off_without_a_token(plain: Served) -> None:
    before = snapshot(plain.root)
    for r in [
        plain.client.post("/api/reindex"),
        plain.client.post("/api/reindex", headers=AUTH),
        upload(plain, "new.txt", b"Some new text.", headers={}),
        upload(plain, "new.txt", b"Some text."),
    ]:
        error = assert_error(r, {403})
        assert "RAG_ADMIN_TOKEN" in error["message"]
    assert snapshot(plain.root) == before
    assert plain.service.state.runs == 0 and not plain.service.state.running


def test_the_admin_page_says_how_to_turn_admin_on(plain: Served) -> None:
    page = plain.client.get("/admin").text
    assert "RAG_ADMIN_TOKEN" in page and 'id="token"' not in page
    assert 'href="/admin"' not in plain.client.get("/").text


def test_the_admin_page_has_its_form_when_a_token_is_set(admin: Served) -> None:
    page = admin.client.get("/admin").text
    assert 'id="token"' in page and TOKEN not in page
    assert 'href="/admin"' in admin.client.get("/").text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer "},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Token {TOKEN}"},
    ],
    ids=["none", "wrong", "longer", "empty", "no-scheme", "basic", "other-scheme"],
)
def test_admin_routes_need_the_right_bearer_token(admin: Served, headers: dict[str, str]) -> None:
    admin.settle()
    before = snapshot(admin.root)
    assert assert_error(admin.client.post("/api/reindex", headers=headers), {401})["code"] == "unauthorized"
    assert_error(upload(admin, "sneaky.txt", b"Sneaky text.", headers=headers), {401})
    assert not admin.service.state.running
    assert snapshot(admin.root) == before


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


def test_reindex_with_the_token_is_202_and_a_second_one_meanwhile_is_409(
    admin: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.settle()
    runs = admin.service.state.runs
    entered, release = hold_builds(monkeypatch)
    try:
        r = admin.client.post("/api/reindex", headers=AUTH)
        assert r.status_code == 202, r.text
        assert r.json()["running"] is True
        assert entered.wait(WAIT), "the rebuild did not start"
        assert admin.client.get("/api/index").json()["rebuild"]["running"] is True
        error = assert_error(admin.client.post("/api/reindex", headers=AUTH), {409})
        assert error["code"] == "conflict"
        assert_error(admin.client.post("/api/reindex?full=true", headers=AUTH), {409})
        assert admin.ask(QUESTION)["answer"]  # the old index keeps answering meanwhile
    finally:
        release.set()
        admin.service.wait(WAIT)
    admin.settle()
    rebuild = admin.client.get("/api/index").json()["rebuild"]
    assert rebuild["running"] is False and rebuild["runs"] == runs + 1
    assert rebuild["last_report"]["unchanged"] and rebuild["last_report"]["chunks_embedded"] == 0


# ---------------------------------------------------------------------------------------------------------------
# Uploads (the admin app's own corpus)

LIGHTHOUSE = (
    b"Harbour Log\n\n"
    b"The Kestrel Point lighthouse was painted vermilion in 1911 by its keeper, Ottoline Brask. "
    b"Its lamp could be seen from thirty-one kilometres away on a clear night.\n"
)


def test_an_uploaded_text_file_is_indexed_and_answered_from(admin: Served) -> None:
    admin.settle()
    r = upload(admin, "lighthouse.txt", LIGHTHOUSE)
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "lighthouse.txt"
    assert "rebuild" in r.json()
    assert (admin.corpus / "lighthouse.txt").read_bytes() == LIGHTHOUSE
    assert not list(admin.corpus.glob(".upload-*"))
    admin.settle()
    docs = {d["source"]: d for d in admin.client.get("/api/documents").json()}
    assert docs["lighthouse.txt"]["title"] == "Harbour Log"
    assert docs["lighthouse.txt"]["size"] == len(LIGHTHOUSE)
    body = admin.ask("Who painted the Kestrel Point lighthouse?")
    assert body["answer"] and body["answer"]["source"] == "lighthouse.txt"
    assert "Ottoline Brask" in body["answer"]["text"]


def test_a_markdown_upload_is_accepted(admin: Served) -> None:
    r = upload(admin, "Glossary.MD", b"# Glossary\n\nA quoin is an external angle of a wall.\n")
    assert r.status_code == 201, r.text
    admin.settle()
    assert "Glossary.MD" in {d["source"] for d in admin.client.get("/api/documents").json()}


@pytest.mark.parametrize(
    "size,statuses", [(UPLOAD_LIMIT + 1, {400, 413}), (500_000, {413})], ids=["just-over", "far-over"]
)
def test_an_oversized_upload_is_refused_and_writes_nothing(admin: Served, size: int, statuses: set[int]) -> None:
    admin.settle()
    before = snapshot(admin.root)
    line = b"The archive holds many pages of notes about nothing in particular.\n"
    data = (line * (size // len(line) + 1))[:size]
    assert_error(upload(admin, "big.txt", data), statuses)
    assert snapshot(admin.root) == before
    assert not admin.service.state.running


def test_an_upload_at_the_limit_is_accepted(admin: Served) -> None:
    admin.settle()
    sentence = b"Quarry notes: the granite blocks were cut by hand in the quarry at Mikage. "
    data = (sentence * (UPLOAD_LIMIT // len(sentence) + 1))[:UPLOAD_LIMIT]
    data = data[: data.rfind(b" ")].ljust(UPLOAD_LIMIT, b".")
    assert len(data) == UPLOAD_LIMIT
    assert upload(admin, "quarry.txt", data).status_code == 201
    admin.settle()


@pytest.mark.parametrize("name", ["tool.exe", "sheet.xlsx", "noext", "notes.txt.exe", "notes.txt."])
def test_an_upload_with_another_suffix_is_400(admin: Served, name: str) -> None:
    admin.settle()
    before = snapshot(admin.root)
    assert_error(upload(admin, name, b"Plain words."), {400})
    assert snapshot(admin.root) == before


BAD_NAMES = [
    b"../evil.txt",
    b"/etc/evil.txt",
    b"a/b.txt",
    b".hidden.txt",
    b"con.txt",
    b"CON.txt",
    b"nul.md",
    b"x\x00.txt",
    b"..",
    b"../../../tmp/evil.txt",
    b"a\\b.txt",
    b" ",
    b"tab\there.txt",
    b"x" * 300 + b".txt",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[2:-1][:40] for n in BAD_NAMES])
def test_an_unsafe_file_name_is_400_and_writes_nothing(admin: Served, name: bytes) -> None:
    admin.settle()
    before = snapshot(admin.root)
    outside = [Path("/etc/evil.txt"), Path("/tmp/evil.txt"), admin.root / "evil.txt", admin.root.parent / "evil.txt"]
    existed = [p.exists() for p in outside]
    body, headers = multipart(name, b"Evil words.")
    r = admin.client.post("/api/documents", content=body, headers={**AUTH, **headers})
    assert_error(r, {400})
    assert snapshot(admin.root) == before
    assert [p.exists() for p in outside] == existed
    assert not admin.service.state.running


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00",
        b"text with a NUL\x00 byte",
        b"",
        b"   \n\t  ",
    ],
    ids=["binary", "nul-byte", "empty", "blank"],
)
def test_an_upload_that_is_not_text_is_400(admin: Served, data: bytes) -> None:
    admin.settle()
    before = snapshot(admin.root)
    assert_error(upload(admin, "notes.txt", data), {400})
    assert snapshot(admin.root) == before


@pytest.mark.parametrize(
    ("name", "data"),
    [("bad.pdf", b"%PDF-1.4 not really a PDF"), ("bad.docx", b"PK\x03\x04 not really a zip")],
)
def test_a_damaged_document_upload_is_400(admin: Served, name: str, data: bytes) -> None:
    admin.settle()
    before = snapshot(admin.root)
    assert_error(upload(admin, name, data), {400})
    assert snapshot(admin.root) == before


def test_the_same_name_twice_is_409_and_keeps_the_first(admin: Served) -> None:
    first = b"Twice\n\nThe first version of this note mentions the harbour at Tomonoura.\n"
    assert upload(admin, "twice.txt", first).status_code == 201
    admin.settle()
    before = snapshot(admin.root)
    assert assert_error(upload(admin, "twice.txt", b"A second version."), {409})["code"] == "conflict"
    assert (admin.corpus / "twice.txt").read_bytes() == first
    assert snapshot(admin.root) == before


def test_an_upload_over_a_bundled_document_is_409(admin: Served) -> None:
    admin.settle()
    before = snapshot(admin.root)
    assert_error(upload(admin, "000_db4dff55abc0f5d8.txt", b"Replaced!"), {409})
    assert snapshot(admin.root) == before


def test_a_failed_upload_leaves_the_corpus_and_the_index_as_they_were(admin: Served) -> None:
    admin.settle()
    before, status = snapshot(admin.root), admin.client.get("/api/index").json()
    answer = admin.ask(QUESTION)
    for name, data in [("bad.exe", b"x"), ("bad.txt", b"\xff\xfe"), ("../bad.txt", b"x"), ("big.txt", b"x" * 30_000)]:
        assert_error(upload(admin, name, data))
    assert_error(admin.client.post("/api/documents", headers=AUTH))  # no file at all
    assert_error(admin.client.post("/api/documents", data={"file": "not a file"}, headers=AUTH))
    assert snapshot(admin.root) == before
    assert admin.client.get("/api/index").json() == status
    assert admin.ask(QUESTION) == answer


@pytest.mark.parametrize("data", [b"...\n", b"#\n", "\U0001f600 ".encode() * 3], ids=["dots", "bare-heading", "emoji"])
def test_an_upload_without_words_is_refused_or_indexed_without_error(
    tmp_path: Path, encoder: Encoder, data: bytes
) -> None:
    settings = Settings(
        corpus=write_corpus(tmp_path / "corpus", SMALL_DOCS), index=tmp_path / "index", admin_token=TOKEN
    )
    index, _ = indexing.build(settings, encoder, progress=False)
    served = serve(Assistant(settings, index, encoder))
    r = upload(served, "wordless.txt", data)
    if r.status_code == 201:
        served.service.wait(WAIT)
        assert not served.service.state.running
        assert served.client.get("/api/index").json()["rebuild"]["last_error"] is None
    else:
        assert_error(r, {400})
        assert not (served.corpus / "wordless.txt").exists()


# ---------------------------------------------------------------------------------------------------------------
# Rebuilding while questions are asked


def test_questions_are_answered_while_the_index_is_rebuilt(
    tmp_path_factory: pytest.TempPathFactory, bundled: Settings, encoder: Encoder
) -> None:
    served = serve_copy(tmp_path_factory.mktemp("busy"), bundled, encoder, admin_token=TOKEN)
    write_corpus(
        served.corpus,
        {
            "observatory.txt": (
                "Astronomy Notes\n\nThe Hallerby Observatory was founded in 1887 by the astronomer Maren Quist. "
                "Its great refractor has a lens of sixty-eight centimetres.\n"
            )
        },
    )
    new_question = "Who founded the Hallerby Observatory?"
    questions = [QUESTION, ACCORD, OFF_TOPIC, new_question]
    statuses: list[int] = []
    failures: list[str] = []
    sources: list[tuple[float, str | None]] = []
    stop = threading.Event()

    def ask_in_a_loop(offset: int) -> None:
        client = TestClient(served.app, raise_server_exceptions=False)
        i = offset
        while not stop.is_set():
            question = questions[i % len(questions)]
            i += 1
            r = client.post("/api/ask", json={"question": question})
            statuses.append(r.status_code)
            if r.status_code != 200:
                failures.append(f"{question}: {r.status_code} {r.text[:200]}")
            elif question == new_question:
                answer = r.json()["answer"]
                sources.append((time.monotonic(), answer and answer["source"]))

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(statuses) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(statuses) >= count, "the askers are stuck"

    threads = [threading.Thread(target=ask_in_a_loop, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(6)
        r = served.client.post("/api/reindex", headers=AUTH)
        assert r.status_code == 202, r.text
        asked_during = len(statuses)
        served.settle()
        swapped = time.monotonic()
        wait_for(len(statuses) + 8)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(statuses) > asked_during and set(statuses) == {200}
    assert served.service.state.last_report["added"] == ["observatory.txt"]
    assert all(source == "observatory.txt" for at, source in sources if at > swapped + 1.0 and source)
    body = served.ask(new_question)
    assert body["answer"] and body["answer"]["source"] == "observatory.txt"
    assert "Maren Quist" in body["answer"]["text"]
    assert "observatory.txt" in {d["source"] for d in served.client.get("/api/documents").json()}


# ---------------------------------------------------------------------------------------------------------------
# The document page


def test_the_cited_passage_is_marked_on_the_document_page(plain: Served) -> None:
    body = plain.ask(QUESTION)
    for c in body["citations"][:3]:
        r = plain.client.get(
            f"/documents/{c['source']}",
            params={"start": c["start"], "end": c["end"], "hs": c["highlight"]["start"], "he": c["highlight"]["end"]},
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        text = plain.assistant.document_text(c["source"])
        assert inner_text(r.text, "mark", 'id="passage"') == c["text"] == text[c["start"] : c["end"]]
        assert (
            inner_text(r.text, "mark", 'class="answer-mark"') == text[c["highlight"]["start"] : c["highlight"]["end"]]
        )
        assert str(escape(text[c["highlight"]["start"] : c["highlight"]["end"]])) in r.text
        assert inner_text(r.text, "div", 'class="document"') == text  # the whole document, nothing added or lost


def test_the_open_in_the_document_links_of_a_reply_lead_to_the_passage(plain: Served) -> None:
    fragment = plain.client.post("/turn", data={"q": QUESTION, "n": "1"}).text
    hrefs = links(fragment, "/documents/")
    cards = pages.citation_cards(plain.ask(QUESTION))  # overlapping passages of one document are one card
    assert len(hrefs) == 1 + len(cards)  # the answer's link, then one per card
    for href, card in zip(hrefs[1:], cards, strict=True):
        r = plain.client.get(href)
        assert r.status_code == 200, href
        text = plain.assistant.document_text(card["source"])
        assert card["text"] == text[card["start"] : card["end"]]
        assert inner_text(r.text, "div", 'class="document"') == text
        assert marks_of(r.text, "passage-mark").in_cls == card["text"]  # the whole card's passage is marked


def test_a_document_page_without_a_passage_shows_the_whole_text(plain: Served) -> None:
    r = plain.client.get("/documents/003_7f8c229d719f695d.txt")
    assert r.status_code == 200
    assert 'id="passage"' not in r.text
    assert inner_text(r.text, "div", 'class="document"') == plain.assistant.document_text("003_7f8c229d719f695d.txt")
    assert "<h1" in r.text and "Japan-Ukraine Relations" in r.text


def test_a_document_changed_or_removed_after_indexing(tmp_path: Path, encoder: Encoder) -> None:
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", SMALL_DOCS), index=tmp_path / "index")
    index, _ = indexing.build(settings, encoder, progress=False)
    served = serve(Assistant(settings, index, encoder))
    assert "changed after it was indexed" not in served.client.get("/documents/tea.txt").text
    (settings.corpus / "tea.txt").write_text(SMALL_DOCS["tea.txt"] + " Matcha is ground to a fine powder.")
    r = served.client.get("/documents/tea.txt", params={"start": 0, "end": 10})
    assert r.status_code == 200 and "changed after it was indexed" in r.text
    (settings.corpus / "tea.txt").unlink()
    r = served.client.get("/documents/tea.txt")  # the text as indexed, which the index still cites
    assert r.status_code == 200 and "removed from the corpus" in r.text
    assert inner_text(r.text, "div", 'class="document"') == SMALL_DOCS["tea.txt"]
    assert_error(served.client.get("/files/tea.txt"), {404})
    body = served.ask("Where is green tea grown?")  # still answered from the index
    assert body["answer"] and body["answer"]["source"] == "tea.txt"


def test_an_unknown_document_is_404(plain: Served) -> None:
    r = plain.client.get("/documents/nothing-like-this.txt")
    assert r.status_code == 404
    assert "nothing-like-this.txt" in r.text


TRAVERSALS = [
    "/documents/../../etc/passwd",
    "/documents/%2e%2e/%2e%2e/etc/passwd",
    "/documents//etc/passwd",
    "/documents/..%2f..%2fetc%2fpasswd",
    "/documents/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/documents/....//....//etc/passwd",
    "/documents/../pyproject.toml",
    "/documents/..%2f..%2f..%2fpyproject.toml",
    "/documents/%2fetc%2fpasswd",
    "/documents/000_db4dff55abc0f5d8.txt/../../../etc/passwd",
    "/documents/./000_db4dff55abc0f5d8.txt%00.txt",
    "/static/../rag/server.py",
    "/static/%2e%2e/rag/server.py",
    "/static/..%2frag%2fserver.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_404_through_the_client(plain: Served, path: str) -> None:
    r = plain.client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "root:" not in r.text and "create_app" not in r.text and "[project]" not in r.text


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_404_with_the_raw_path(plain: Served, path: str) -> None:
    status, text = raw_get(plain.app, path)
    assert status == 404, (path, status)
    assert "root:" not in text and "create_app" not in text and "[project]" not in text


@pytest.mark.parametrize(
    "query",
    [
        {"start": -1, "end": 10},
        {"start": 0, "end": 10**9},
        {"start": 50, "end": 10},
        {"start": 20, "end": 20},
        {"start": 10**12, "end": 10**12 + 5},
        {"start": 5},
        {"end": 5},
    ],
    ids=["negative", "past-the-end", "reversed", "empty", "huge", "start-only", "end-only"],
)
def test_an_out_of_range_passage_shows_the_document_without_a_mark(plain: Served, query: dict[str, int]) -> None:
    r = plain.client.get("/documents/003_7f8c229d719f695d.txt", params={**query, "hs": 0, "he": 5})
    assert r.status_code == 200
    assert "<mark" not in r.text
    assert inner_text(r.text, "div", 'class="document"') == plain.assistant.document_text("003_7f8c229d719f695d.txt")


def test_an_answer_mark_outside_the_passage_is_left_out(plain: Served) -> None:
    r = plain.client.get("/documents/003_7f8c229d719f695d.txt", params={"start": 10, "end": 50, "hs": 0, "he": 60})
    assert r.status_code == 200
    assert 'id="passage"' in r.text and "answer-mark" not in r.text


@pytest.mark.parametrize("query", ["start=abc&end=5", "start=1.5&end=5", "start=99999999999999999999999999&end=1"])
def test_a_non_numeric_passage_is_a_4xx_not_a_crash(plain: Served, query: str) -> None:
    r = plain.client.get(f"/documents/003_7f8c229d719f695d.txt?{query}")
    assert 200 <= r.status_code < 500


# ---------------------------------------------------------------------------------------------------------------
# The exact answer in bold, and the note above the passages

EXACT_SENTENCE = 'On <b>2 May</b> the "Spice & Co" <script>alert(1)</script> ledger priced cloves at 12 rupees.'
EXACT = '"Spice & Co" <script>alert(1)</script>'
NOTE = 'This question seems to be in <i>Ukrainian</i> & "odd"; the model reads English. <script>alert(1)</script>'


class Canned:
    """Stands in for a `Response`: the pages only call its `to_dict()`."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.body))


def canned_response(exact: Any = "default", note: str | None = NOTE) -> dict[str, Any]:
    """A response whose answer sentence (and bold span, and note) hold markup; offsets as in a real document."""
    before = "The ledger is old. "
    passage = before + EXACT_SENTENCE + " It was found in 1990."
    c_start = 200
    a_start = c_start + len(before)
    a_end = a_start + len(EXACT_SENTENCE)
    if exact == "default":
        x_start = a_start + EXACT_SENTENCE.index(EXACT)
        exact = {"text": EXACT, "start": x_start, "end": x_start + len(EXACT)}
    answer = {"text": EXACT_SENTENCE, "source": "ledger.txt", "start": a_start, "end": a_end, "citation": 1}
    if exact is not None:
        answer["exact"] = exact
    other = "Clove buds dry for four days. The price of 12 rupees was a record."
    return {
        "question": "Who priced the cloves?",
        "abstained": False,
        "confidence": 0.9,
        "answer": answer,
        "citations": [
            {
                "n": 1,
                "source": "ledger.txt",
                "title": "Ledger",
                "chunk_id": "ledger.txt#0",
                "text": passage,
                "start": c_start,
                "end": c_start + len(passage),
                "score": 0.8,
                "highlight": {"start": a_start, "end": a_end},
            },
            {
                "n": 2,
                "source": "cloves.txt",
                "title": "Cloves",
                "chunk_id": "cloves.txt#0",
                "text": other,
                "start": 0,
                "end": len(other),
                "score": 0.5,
                "highlight": {"start": 30, "end": len(other)},
            },
        ],
        "context": None,
        "note": note,
    }


def answer_with(monkeypatch: pytest.MonkeyPatch, served: Served, body: dict[str, Any]) -> None:
    monkeypatch.setattr(served.assistant, "ask", lambda *args, **kwargs: Canned(body))


def with_exact(monkeypatch: pytest.MonkeyPatch, served: Served, note: str | None = None) -> None:
    """The served assistant's real answers, with an exact span (a year, or a date ending in one) added when the
    answer has none of its own, and `note` set when given."""
    real_ask = served.assistant.ask

    def ask(*args: Any, **kwargs: Any) -> Canned:
        body = real_ask(*args, **kwargs).to_dict()
        a = body["answer"]
        if a and not a.get("exact"):
            m = re.search(r"(?:[A-Z][a-z]+ \d{1,2}, )?\b\d{4}\b", a["text"])
            assert m, a["text"]
            a["exact"] = {"text": m.group(), "start": a["start"] + m.start(), "end": a["start"] + m.end()}
        if note is not None:
            body["note"] = note
        return Canned(body)

    monkeypatch.setattr(served.assistant, "ask", ask)


def strong_exact(fragment: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<strong class="exact">(.*?)</strong>', fragment, re.S)]


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_the_exact_answer_is_bold_and_escaped_inside_the_quoted_sentence(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    r = plain.client.post(path, data={"q": "Who priced the cloves?", "n": "3"})
    assert r.status_code == 200
    page, turn = r.text, 3 if path == "/turn" else 1
    quoted = re.search(r'<blockquote class="answer">\s*<p class="has-exact">(.*?)</p>', page, re.S)
    assert quoted, page
    assert html.unescape(re.sub(r"<[^>]*>", "", quoted.group(1))) == EXACT_SENTENCE  # nothing added or lost
    bold = f'<strong class="exact">{escape(EXACT)}</strong>'
    assert bold in quoted.group(1)  # inside the quoted sentence, escaped
    before, after = EXACT_SENTENCE.split(EXACT)
    assert quoted.group(1) == f"{escape(before)}{bold}{escape(after)}"
    # the card that holds the answer has it bold inside its marked sentence; the other card has no bold
    card = inner_text(page, "li", f'id="c{turn}-1"')
    assert card is not None and EXACT_SENTENCE in card
    mark = re.search(r'<mark class="hl-answer"[^>]*>(.*?)</mark>', page, re.S)
    assert mark and bold in mark.group(1)
    assert html.unescape(re.sub(r"<[^>]*>", "", mark.group(1))) == EXACT_SENTENCE
    assert strong_exact(page) == [EXACT, EXACT]
    assert "<strong" not in page.split(f'id="c{turn}-2"')[1]
    assert_inert(page)


def test_the_answer_card_links_to_the_exact_span_in_the_document(
    plain: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    fragment = plain.client.post("/turn", data={"q": "Who priced the cloves?", "n": "1"}).text
    body = canned_response()
    exact, hl = body["answer"]["exact"], body["citations"][0]["highlight"]
    hrefs = links(fragment, "/documents/")
    assert len(hrefs) == 3
    assert hrefs[1] == (
        f"/documents/ledger.txt?start={body['citations'][0]['start']}&end={body['citations'][0]['end']}"
        f"&hs={hl['start']}&he={hl['end']}&xs={exact['start']}&xe={exact['end']}"
    )
    assert "xs=" not in hrefs[0] and "xs=" not in hrefs[2]  # the answer's own link, and a card without the answer


def test_a_real_answer_with_an_exact_span_leads_to_it_in_the_document(
    plain: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_exact(monkeypatch, plain)
    body = plain.ask(QUESTION)
    a, exact = body["answer"], body["answer"]["exact"]
    text = plain.assistant.document_text(a["source"])
    assert text[exact["start"] : exact["end"]] == exact["text"]
    # the cards that hold the answer sentence (overlapping passages that both hold it are one card)
    holders = [k for k in pages.citation_cards(body) if k["mark"] and k["mark"]["start"] == a["start"]]
    assert len(holders) == 1
    fragment = plain.client.post("/turn", data={"q": QUESTION, "n": "1"}).text
    assert strong_exact(fragment) == [exact["text"]] * (1 + len(holders))  # the quoted sentence, then the cards
    quoted = inner_text(fragment, "blockquote", 'class="answer"')
    assert quoted is not None and quoted.strip().startswith(a["text"])
    with_xs = [h for h in links(fragment, "/documents/") if "xs=" in h]
    assert len(with_xs) == len(holders)
    assert all(h.endswith(f"xs={exact['start']}&xe={exact['end']}") for h in with_xs)
    r = plain.client.get(with_xs[0])
    assert r.status_code == 200
    assert strong_exact(r.text) == [exact["text"]]
    assert inner_text(r.text, "mark", 'class="answer-mark has-exact"') == a["text"]
    assert inner_text(r.text, "div", 'class="document"') == text  # the whole document, nothing added or lost


@pytest.mark.parametrize(
    "exact",
    [
        None,
        {"text": "x", "start": 0, "end": 1},  # outside the sentence
        {"text": "On <i>", "start": 219, "end": 225},  # offsets that are not the text
        {"text": EXACT, "start": "219", "end": 240},
        {"text": EXACT, "start": True, "end": 240},
        {"start": 225},
        "a string",
        [219, 225],
    ],
    ids=["none", "outside", "wrong-text", "string-offset", "bool-offset", "partial", "string", "list"],
)
def test_a_missing_or_malformed_exact_span_is_left_out(
    plain: Served, monkeypatch: pytest.MonkeyPatch, exact: Any
) -> None:
    answer_with(monkeypatch, plain, canned_response(exact=exact, note=None))
    r = plain.client.post("/turn", data={"q": "Who priced the cloves?", "n": "1"})
    assert r.status_code == 200
    assert "<strong" not in r.text and "xs=" not in r.text and 'class="note"' not in r.text
    assert re.search(r'<blockquote class="answer">\s*<p>', r.text)
    assert str(escape(EXACT_SENTENCE)) in r.text


def test_exact_span_reads_dicts_and_objects() -> None:
    answer = {"text": "Born in 1990 here.", "start": 10, "end": 28, "exact": {"text": "1990", "start": 18, "end": 22}}
    assert pages.exact_span(answer) == (18, 22)
    assert pages.exact_span(answer, {"start": 10, "end": 28}) == (18, 22)
    assert pages.exact_span(answer, {"start": 19, "end": 28}) is None  # not inside that sentence
    assert pages.exact_span(None) is None and pages.exact_span({**answer, "exact": None}) is None
    obj = dataclasses.make_dataclass("A", ["text", "start", "end", "exact"])
    ex = dataclasses.make_dataclass("E", ["text", "start", "end"])
    assert pages.exact_span(obj("Born in 1990 here.", 10, 28, ex("1990", 18, 22))) == (18, 22)


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_the_note_is_shown_escaped_above_the_passages(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    page = plain.client.post(path, data={"q": "Who priced the cloves?"}).text
    assert f'<p class="note" role="note">{escape(NOTE)}</p>' in page
    assert inner_text(page, "p", 'class="note"') == NOTE
    assert page.index('class="note"') < page.index('class="sources-heading"') < page.index('class="citations"')
    assert_inert(page)


def test_the_note_is_shown_when_the_answer_is_withheld(plain: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    note = "This question seems to be in Ukrainian; the model reads English."
    with_exact(monkeypatch, plain, note=note)
    page = plain.client.post("/turn", data={"q": OFF_TOPIC}).text
    assert "could not find" in page and '<strong class="exact">' not in page
    assert inner_text(page, "p", 'class="note"') == note
    assert page.index('class="abstain"') < page.index('class="note"') < page.index('class="citations"')


def exact_page(served: Served, **query: int) -> Any:
    """A document at the sentence that holds the year 1992 (a passage around it marked), with `query` added."""
    source = "001_6cd020ec01843fcd.txt"
    text = served.assistant.document_text(source)
    year = text.index("1992")
    hs, he = text.rindex(".", 0, year) + 1, text.index(".", year) + 1
    start, end = max(hs - 40, 0), min(he + 40, len(text))
    params = {"start": start, "end": end, "hs": hs, "he": he, **query}
    return served.client.get(f"/documents/{source}", params=params), text, (start, end, hs, he, year)


def test_the_document_page_shows_the_exact_span_bold_in_the_marked_sentence(plain: Served) -> None:
    _, _, (start, end, hs, he, year) = exact_page(plain)
    r, text, _ = exact_page(plain, xs=year, xe=year + 4)
    assert r.status_code == 200
    assert strong_exact(r.text) == ["1992"]
    assert inner_text(r.text, "mark", 'class="answer-mark has-exact"') == text[hs:he]
    assert inner_text(r.text, "mark", 'id="passage"') == text[start:end]
    assert inner_text(r.text, "div", 'class="document"') == text


@pytest.mark.parametrize(
    "query",
    ["outside-sentence", "reversed", "empty", "xs-only", "xe-only", "negative", "huge", "no-sentence"],
)
def test_an_exact_span_outside_the_marked_sentence_is_left_out(plain: Served, query: str) -> None:
    _, _, (start, end, hs, he, year) = exact_page(plain)
    params = {
        "outside-sentence": {"xs": hs - 10, "xe": year + 4},
        "reversed": {"xs": year + 4, "xe": year},
        "empty": {"xs": year, "xe": year},
        "xs-only": {"xs": year},
        "xe-only": {"xe": year + 4},
        "negative": {"xs": -5, "xe": year},
        "huge": {"xs": year, "xe": 10**12},
        "no-sentence": {"xs": year, "xe": year + 4, "hs": end, "he": end + 5},
    }[query]
    r, text, _ = exact_page(plain, **params)
    assert r.status_code == 200
    assert "<strong" not in r.text and 'id="passage"' in r.text
    assert inner_text(r.text, "div", 'class="document"') == text


@pytest.mark.parametrize("query", ["xs=abc&xe=5", "xs=1.5&xe=5", "xs=99999999999999999999999999&xe=1"])
def test_a_non_numeric_exact_span_is_a_4xx_not_a_crash(plain: Served, query: str) -> None:
    r = plain.client.get(f"/{DOCUMENT_PAGE.lstrip('/')}&{query}")
    assert 200 <= r.status_code < 500
    if r.status_code == 200:
        assert "<strong" not in r.text


def test_markup_in_an_exact_span_is_escaped_on_the_document_page(hostile: Served) -> None:
    text = XSS_TEXT
    start, script = text.index("The Zanzibar"), text.index("<script>alert(1)</script> Growers")
    hs, he = text.index("October.") + len("October."), text.index("four days.") + len("four days.")
    xs, xe = script, script + len("<script>alert(1)</script>")
    r = hostile.client.get(
        f"/documents/{XSS_SOURCE}", params={"start": start, "end": len(text), "hs": hs, "he": he, "xs": xs, "xe": xe}
    )
    assert r.status_code == 200
    assert '<strong class="exact">&lt;script&gt;alert(1)&lt;/script&gt;</strong>' in r.text
    assert inner_text(r.text, "div", 'class="document"') == text
    assert_inert(r.text)


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


def test_markup_in_a_document_is_escaped_in_the_no_js_chat(hostile: Served) -> None:
    body = hostile.ask(XSS_QUESTION)
    assert XSS_SOURCE in {c["source"] for c in body["citations"]}
    page = hostile.client.post("/", data={"q": XSS_QUESTION}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Zanzibar &lt;b&gt;Spice Notes&lt;/b&gt;" in page  # the title, in the document list and the sources
    assert_inert(page)


def test_markup_in_a_document_is_escaped_in_the_turn_fragment(hostile: Served) -> None:
    fragment = hostile.client.post("/turn", data={"q": XSS_QUESTION, "n": "2"}).text
    assert fragment.lstrip().startswith('<article class="turn"')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert "&lt;b&gt;" in fragment and "spice&lt;b&gt;notes.txt" in fragment
    assert_inert(fragment)


def test_markup_in_a_document_and_its_name_is_escaped_on_the_document_page(hostile: Served) -> None:
    text = XSS_TEXT
    start = text.index("The Zanzibar")
    r = hostile.client.get(
        f"/documents/{XSS_SOURCE}", params={"start": start, "end": len(text), "hs": start, "he": start + 20}
    )
    assert r.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<title>Zanzibar &lt;b&gt;Spice Notes&lt;/b&gt;" in r.text
    assert inner_text(r.text, "div", 'class="document"') == text
    assert inner_text(r.text, "mark", 'id="passage"') == text[start:]
    assert_inert(r.text)


def test_markup_in_the_question_is_escaped(hostile: Served) -> None:
    question = '<script>alert(1)</script> "><img src=x onerror=alert(1)> When does the Zanzibar clove harvest begin?'
    for page in [
        hostile.client.post("/", data={"q": question}).text,
        hostile.client.post("/turn", data={"q": question, "n": "1"}).text,
        hostile.client.post("/", data={"q": "When was it picked?", "history": [question]}).text,
    ]:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert_inert(page)
    page = hostile.client.post("/", data={"q": question}).text
    assert hidden_history(page) == [question]  # the attribute survives the quote in the question


def test_markup_in_an_unknown_document_name_is_escaped(hostile: Served) -> None:
    r = hostile.client.get("/documents/<script>alert(1)</script>.txt")
    assert r.status_code == 404
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert_inert(r.text)


def test_document_links_work_for_names_with_url_characters(hostile: Served) -> None:
    """Links quote the file name: `faq?.txt` once linked to /documents/faq."""
    page = hostile.client.get("/").text
    hrefs = links(page, "/documents/")
    assert len(hrefs) == len(hostile.assistant.index.documents)
    for href in hrefs:
        r = hostile.client.get(href)
        assert r.status_code == 200, href
    fragment = hostile.client.post("/turn", data={"q": "How often does the ferry to Awaji Island leave?"}).text
    for href in links(fragment, "/documents/"):
        r = hostile.client.get(href)
        assert r.status_code == 200, href


# ---------------------------------------------------------------------------------------------------------------
# Security headers


DOCUMENT_PAGE = "/documents/001_6cd020ec01843fcd.txt?start=542&end=1163&hs=542&he=643"


@pytest.mark.parametrize("path", ["/", "/api/health", "doc", "/admin", "/api/nothing", "/documents/missing.txt"])
def test_security_headers(plain: Served, path: str) -> None:
    r = plain.client.get(DOCUMENT_PAGE if path == "doc" else path)
    assert r.status_code in (200, 404)
    policy = csp(r)
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_security_headers_on_posts_and_errors(plain: Served) -> None:
    for r in [
        plain.client.post("/api/ask", json={"question": ""}),
        plain.client.post("/", data={"q": QUESTION}),
        plain.client.post("/turn", data={"q": QUESTION}),
    ]:
        assert csp(r)["script-src"] == "'self'"
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    refused = plain.client.post("/api/ask", json={"question": "x" * 300_000})
    assert refused.status_code == 413 and refused.headers["x-content-type-options"] == "nosniff"


def test_only_the_api_docs_allow_inline_scripts(plain: Served) -> None:
    assert "'unsafe-inline'" in csp(plain.client.get("/docs"))["script-src"]
    assert "'unsafe-inline'" not in plain.client.get("/").headers["content-security-policy"]


def test_pages_have_no_inline_scripts_or_styles(plain: Served) -> None:
    """The CSP allows scripts and styles from this server only: inline ones would be blocked."""
    for page in [
        plain.client.get("/").text,
        plain.client.post("/", data={"q": QUESTION}).text,
        plain.client.get(DOCUMENT_PAGE).text,
        plain.client.get("/admin").text,
    ]:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
        assert "<style" not in page and " style=" not in page
        assert not re.search(r"\son[a-z]+\s*=", page)


# ---------------------------------------------------------------------------------------------------------------
# The chat without JavaScript


def test_the_empty_chat_page(plain: Served) -> None:
    r = plain.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<form id="ask"' in r.text and 'method="post"' in r.text and 'name="q"' in r.text
    assert hidden_history(r.text) == []
    assert len(links(r.text, "/documents/")) == 5


def test_a_form_post_answers_and_carries_the_question_as_history(plain: Served) -> None:
    answer = plain.assistant.ask(QUESTION).answer
    assert answer is not None
    r = plain.client.post("/", data={"q": QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.count('<article class="turn"') == 1
    assert inner_text(r.text, "blockquote", 'class="answer"').strip().startswith(answer.text)
    assert str(escape(answer.text[: answer.exact.start - answer.start] if answer.exact else answer.text)) in r.text
    assert hidden_history(r.text) == [QUESTION]


def test_a_second_form_post_renders_both_turns(plain: Served) -> None:
    r = plain.client.post("/", data={"q": "When was it signed?", "history": [ACCORD]})
    assert r.status_code == 200
    assert r.text.count('<article class="turn"') == 2
    asked = [html.unescape(q) for q in re.findall(r'<article class="turn" data-question="([^"]*)"', r.text)]
    assert asked == [ACCORD, "When was it signed?"]
    assert r.text.count('<blockquote class="answer">') == 2
    assert inner_text(r.text, "p", 'class="context"') == f"Read together with your earlier question: “{ACCORD}”"
    assert hidden_history(r.text) == [ACCORD, "When was it signed?"]


def test_a_bad_form_post_shows_the_error_on_the_page(plain: Served) -> None:
    r = plain.client.post("/", data={"q": "   ", "history": [QUESTION]})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in r.text and "empty" in r.text
    assert hidden_history(r.text) == [QUESTION]  # the answered turn is kept


def test_the_turn_fragment_is_one_article(plain: Served) -> None:
    r = plain.client.post("/turn", data={"q": ACCORD, "n": "4"})
    assert r.status_code == 200
    assert "<html" not in r.text and r.text.count('<article class="turn"') == 1
    assert 'id="c4-1"' in r.text and 'data-answered="true"' in r.text
    follow = plain.client.post("/turn", data={"q": "When was it signed?", "n": "5", "history": [ACCORD]})
    assert ACCORD in follow.text and 'class="context"' in follow.text
    bad = plain.client.post("/turn", data={"q": "", "n": "6"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text


@pytest.mark.parametrize("path", ["/", "/turn"])
@pytest.mark.parametrize(
    "content",
    [
        b"q=%ED%A0%80+When+did+it+open%3F",
        b"q=%FF%FE",
        b"q=" + b"x" * 2001,
        b"q=a%00b",
        b"q=%07",
        b"",
        b"q=hi&n=abc",
        b"q=hi&history=",
        b"q=hi&history=%00",
        b"q=When+was+it+signed%3F&" + b"&".join([b"history=Japan"] * 40),
        b"\xff\xfe=\xfd",
    ],
    ids=[
        "surrogate-bytes",
        "not-utf8",
        "2001-chars",
        "nul",
        "bell",
        "empty",
        "bad-n",
        "empty-history",
        "nul-history",
        "long-history",
        "garbage",
    ],
)
def test_odd_form_posts_are_answered_or_refused_never_crash(plain: Served, path: str, content: bytes) -> None:
    r = plain.client.post(path, content=content, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code in (200, 400, 422), (r.status_code, r.text[:300])
    if r.headers["content-type"].startswith("text/html"):
        assert_inert(r.text)
    else:
        assert_error(r)


def test_an_off_topic_question_says_it_could_not_find_it(plain: Served) -> None:
    page = plain.client.post("/", data={"q": OFF_TOPIC}).text
    assert "could not find" in page and "Closest passages" in page
    assert '<blockquote class="answer">' not in page


# ---------------------------------------------------------------------------------------------------------------
# Layering


def test_the_core_does_not_import_the_web_edge() -> None:
    code = (
        "import sys, rag.pipeline, rag.retrieval, rag.answer, rag.service\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'jinja2', 'uvicorn'))\n"
        "print(','.join(web))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------------------------
# Chat polish: merged citation cards, plurals, HEAD on the pages, coherent rebuild times


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


def overlapping_response() -> dict[str, Any]:
    """Two neighbouring chunks of one document that share their boundary sentence and both mark it, plus a third
    citation of another document: as `rag.answer` cites chunks that overlap by one sentence."""
    doc = "Intro line. The river froze in 1903. Boats stayed in port. Spring came late that year."
    shared = "The river froze in 1903."
    s = doc.index(shared)
    first, second = (0, s + len(shared)), (s, len(doc))
    other = "Clove buds dry for four days."

    def cite(n: int, source: str, span: tuple[int, int], text: str, hl: tuple[int, int], score: float) -> Any:
        return {
            "n": n,
            "source": source,
            "title": source.title(),
            "chunk_id": f"{source}#{n}",
            "text": text[span[0] : span[1]],
            "start": span[0],
            "end": span[1],
            "score": score,
            "highlight": {"start": hl[0], "end": hl[1]},
        }

    answer = {"text": shared, "source": "river.txt", "start": s, "end": s + len(shared), "citation": 3}
    answer["exact"] = {"text": "1903", "start": s + shared.index("1903"), "end": s + shared.index("1903") + 4}
    return {
        "question": "When did the river freeze?",
        "abstained": False,
        "confidence": 0.9,
        "answer": answer,
        "citations": [
            cite(1, "river.txt", first, doc, (s, s + len(shared)), 0.7),
            cite(2, "cloves.txt", (0, len(other)), other, (0, len(other)), 0.6),
            cite(3, "river.txt", second, doc, (s, s + len(shared)), 0.5),
        ],
        "context": None,
        "note": None,
        "_doc": doc,
    }


def test_citation_cards_merge_overlapping_passages_of_one_document() -> None:
    body = overlapping_response()
    doc = body.pop("_doc")
    cards = pages.citation_cards(body)
    assert [k["ns"] for k in cards] == [[1, 3], [2]]  # the merged card where its best citation was
    river = cards[0]
    assert (river["start"], river["end"], river["text"]) == (0, len(doc), doc)  # both passages, the shared one once
    assert river["score"] == 0.7
    marked = [(kind, "".join(t for _, t in pieces)) for kind, pieces in river["parts"] if kind]
    assert marked == [("answer", "The river froze in 1903.")]  # the sentence both citations mark, marked once
    assert "".join(t for _, pieces in river["parts"] for _, t in pieces) == doc  # nothing added or lost
    assert river["exact"] == (body["answer"]["exact"]["start"], body["answer"]["exact"]["end"])
    assert cards[1]["text"] == body["citations"][1]["text"] and cards[1]["exact"] is None


def test_citation_cards_keep_apart_what_does_not_overlap() -> None:
    body = overlapping_response()
    body.pop("_doc")
    body["citations"][2] |= {"start": 500, "end": 500 + len(body["citations"][2]["text"])}  # far away, same file
    body["citations"][2]["highlight"] = {"start": 500, "end": 510}
    assert [k["ns"] for k in pages.citation_cards(body)] == [[1], [2], [3]]
    # a citation that bridges two cards joins them into one
    a, b = "Alpha one. Beta two. ", "Gamma three. Delta four."
    doc = a + b

    def c(n: int, s: int, e: int) -> dict[str, Any]:
        h = {"start": s, "end": e}
        return {
            "n": n,
            "source": "d.txt",
            "title": "D",
            "text": doc[s:e],
            "start": s,
            "end": e,
            "score": 0.1 * n,
            "highlight": h,
        }

    bridged = {"answer": None, "citations": [c(1, 0, 10), c(2, 16, 30), c(3, 5, 20)]}
    cards = pages.citation_cards(bridged)
    assert [k["ns"] for k in cards] == [[1, 2, 3]] and cards[0]["text"] == doc[0:30]


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_overlapping_citations_show_their_shared_sentence_marked_once(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    body = overlapping_response()
    body.pop("_doc")
    answer_with(monkeypatch, plain, body)
    r = plain.client.post(path, data={"q": body["question"], "n": "2"})
    assert r.status_code == 200
    turn = 2 if path == "/turn" else 1
    fragment = r.text[r.text.index('<ol class="citations">') :]
    assert fragment.count('<li class="citation"') == 2
    assert marks_of(fragment).marks.count("The river froze in 1903.") == 1
    assert 'class="n">[1, 3]</span>' in fragment
    assert f'id="c{turn}-1"' in fragment and f'id="c{turn}-3"' in fragment  # every number keeps its anchor
    assert f'href="#c{turn}-3"' in r.text  # the answer's [3] link leads into the merged card [1, 3]
    assert strong_exact(fragment) == ["1903"]
    a, x = body["answer"], body["answer"]["exact"]
    end = body["citations"][2]["end"]
    hrefs = links(fragment, "/documents/river.txt")
    assert hrefs == [
        f"/documents/river.txt?start=0&end={end}&hs={a['start']}&he={a['end']}&xs={x['start']}&xe={x['end']}"
    ]


@pytest.mark.parametrize("question", [QUESTION, ACCORD, OFF_TOPIC])
def test_no_sentence_is_marked_twice_in_a_real_reply(plain: Served, question: str) -> None:
    body = plain.ask(question)
    fragment = plain.client.post("/turn", data={"q": question, "n": "1"}).text
    cards = pages.citation_cards(body)
    assert fragment.count('<li class="citation"') == len(cards)
    assert sorted(n for k in cards for n in k["ns"]) == [c["n"] for c in body["citations"]]
    spans = [(k["source"], h) for k in cards for h in k["highlights"]]
    assert len(spans) == len(set(spans))
    for i, a in enumerate(cards):  # no two cards of one document overlap
        for b in cards[i + 1 :]:
            assert a["source"] != b["source"] or a["end"] < b["start"] or b["end"] < a["start"], (a["ns"], b["ns"])
    sentences = {}
    for c in body["citations"]:
        sentences.setdefault((c["source"], c["highlight"]["start"]), c)
    assert len(marks_of(fragment[fragment.index('<ol class="citations">') :]).marks) == len(sentences)


def test_plural() -> None:
    assert [pages.plural(n, "passage") for n in (0, 1, 2)] == ["0 passages", "1 passage", "2 passages"]
    assert pages.plural(1, "index", "indexes") == "1 index" and pages.plural(3, "index", "indexes") == "3 indexes"


def test_the_document_list_says_1_passage_not_1_passages(hostile: Served) -> None:
    page = hostile.client.get("/").text
    counts = re.findall(r"(\d+) (passages?)\b", page)
    assert counts and not re.search(r"\b1 passages\b", page)
    assert all((n == "1") == (word == "passage") for n, word in counts), counts
    assert {int(n) for n, _ in counts} == {d.chunks for d in hostile.assistant.index.documents}


@pytest.mark.parametrize("path", ["/", "doc", "/documents/003_7f8c229d719f695d.txt", "/admin", "/documents/nope.txt"])
def test_head_on_a_page_answers_like_get_without_a_body(plain: Served, path: str) -> None:
    path = DOCUMENT_PAGE if path == "doc" else path
    got, head = plain.client.get(path), plain.client.head(path)
    assert head.status_code == got.status_code and got.status_code in (200, 404)
    assert head.content == b""
    same = {k: v for k, v in got.headers.items() if k != "date"}
    assert {k: v for k, v in head.headers.items() if k != "date"} == same  # Content-Length of the GET among them
    assert int(head.headers["content-length"]) == len(got.content)


def test_head_stays_out_of_the_api_schema(plain: Served) -> None:
    paths = plain.client.get("/openapi.json").json()["paths"]
    assert not [(p, m) for p, ops in paths.items() for m in ops if m == "head"]
    assert "/" not in paths and "/admin" not in paths


def iso_times(rebuild: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return rebuild["started_at"], rebuild["finished_at"], rebuild["last_finished_at"]


def test_a_reindex_reply_never_starts_after_it_finished(admin: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    admin.settle()
    r = admin.client.post("/api/reindex", headers=AUTH)
    assert r.status_code == 202
    admin.settle()
    started, finished, last = iso_times(admin.client.get("/api/index").json()["rebuild"])
    assert started and finished and started <= finished == last
    time.sleep(1.1)  # the times are to the second: the second run starts in a later one
    entered, release = hold_builds(monkeypatch)
    try:
        reply = admin.client.post("/api/reindex", headers=AUTH).json()
        assert entered.wait(WAIT)
        for rebuild in (reply, admin.client.get("/api/index").json()["rebuild"]):
            now_started, now_finished, now_last = iso_times(rebuild)
            assert rebuild["running"] is True and now_finished is None  # no finish time while it runs
            assert now_last == finished < now_started  # the earlier run's finish is kept apart
    finally:
        release.set()
        admin.service.wait(WAIT)
    admin.settle()
    done_started, done_finished, done_last = iso_times(admin.client.get("/api/index").json()["rebuild"])
    assert done_started and done_finished and done_started <= done_finished == done_last


def test_a_queued_rebuild_gets_its_own_start_time(plain: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload during a rebuild queues another run: while it runs, nothing says it finished."""
    from rag.service import Service

    service = Service(plain.assistant)
    service._builder_encoder = plain.assistant.encoder
    calls: list[threading.Event] = []
    entered = threading.Semaphore(0)

    class Report:
        def to_dict(self) -> dict[str, Any]:
            return {"fake": True}

    def held_build(*args: Any, **kwargs: Any) -> Any:
        gate = threading.Event()
        calls.append(gate)
        entered.release()
        assert gate.wait(WAIT)
        return plain.assistant.index, Report()

    monkeypatch.setattr(indexing, "build", held_build)
    service.start_rebuild()
    assert entered.acquire(timeout=WAIT)
    assert service.start_rebuild(queue=True)["queued"] is True
    time.sleep(1.1)
    calls[0].set()
    try:
        assert entered.acquire(timeout=WAIT)  # the queued run has started
        state = service.state.to_dict()
        assert state["running"] is True and state["queued"] is False and state["finished_at"] is None
        assert state["last_finished_at"] is not None and state["last_finished_at"] <= state["started_at"]
    finally:
        for gate in calls:
            gate.set()
        service.wait(WAIT)
    state = service.state.to_dict()
    assert state["running"] is False and state["runs"] == 2
    assert state["started_at"] <= state["finished_at"] == state["last_finished_at"]
