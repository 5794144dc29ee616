"""Injected markup stays text (documents, names, questions), and the security headers (CSP)."""

from __future__ import annotations

import re

import pytest

from .server_support import (
    DOCUMENT_PAGE,
    QUESTION,
    XSS_QUESTION,
    XSS_SOURCE,
    XSS_TEXT,
    Served,
    assert_inert,
    csp,
    hidden_history,
    inner_text,
    links,
)

# ---------------------------------------------------------------------------------------------------------------
# Injected markup stays text


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
