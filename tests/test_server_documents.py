"""Status, the document list, the API docs and the document page (/documents/{source}, /files), and the layering."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from rag import indexing
from rag.answer import Response
from rag.config import Settings
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server import pages

from .helpers import ROOT, SMALL_DOCS, write_corpus
from .server_support import QUESTION, Served, assert_error, inner_text, links, marks_of, raw_get, serve

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


@pytest.mark.parametrize("path", ["/", "/docs", "/admin", "/documents/001_6cd020ec01843fcd.txt"])
def test_no_page_loads_anything_from_another_site(plain: Served, path: str) -> None:
    r = plain.client.get(path)
    assert r.status_code == 200
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", r.text, re.I), path
    assert "@import" not in r.text


def test_redoc_is_not_served_and_a_nul_in_a_path_is_not_echoed(plain: Served) -> None:
    """Issue #11: /redoc was served but blank under the CSP; a NUL in a /documents path came back raw."""
    assert plain.client.get("/redoc").status_code == 404
    r = plain.client.get("/documents/evil%00name.txt")
    assert r.status_code == 404 and "\x00" not in r.text and "evil\\x00name.txt" in r.text


def test_the_stylesheet_and_scripts_load_nothing_from_another_site(plain: Served) -> None:
    for asset in ["/static/style.css", "/static/chat.js", "/static/admin.js"]:
        r = plain.client.get(asset)
        assert r.status_code == 200, asset
        assert not re.search(r"https?://", r.text), asset


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
    # overlapping passages of one document are one card
    cards = pages.citation_cards(Response.from_dict(plain.ask(QUESTION)))
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
    "/static/../rag/server/api.py",
    "/static/%2e%2e/rag/server/api.py",
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
# Layering


def test_the_core_does_not_import_the_web_edge() -> None:
    code = (
        "import sys, rag.pipeline, rag.retrieval, rag.answer, rag.server.service\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'jinja2', 'uvicorn'))\n"
        "print(','.join(web))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
