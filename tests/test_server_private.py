"""A private corpus on a network (issue #11 item 11): with `read_token` set, every route but /api/health, the
static files and the login page needs the token, as a bearer token or as the session cookie the login form sets;
forms posted with the cookie carry a CSRF token. Unset, everything is as open as before (the other server tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.embedding import Encoder
from rag.server import access

from .server_support import AUTH, QUESTION, TOKEN, Served, bundled, raw_request, serve_copy  # noqa: F401

READ = "r3ad-t0ken"
READER = {"Authorization": f"Bearer {READ}"}


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory, bundled, encoder: Encoder) -> Served:  # noqa: F811
    return serve_copy(tmp_path_factory.mktemp("private"), bundled, encoder, read_token=READ, admin_token=TOKEN)


@pytest.fixture
def browser(private: Served, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client of its own (its own cookies), signed in through the login form."""
    monkeypatch.setattr(access, "WRONG_TOKEN_DELAY", 0.0)
    client = TestClient(private.app, raise_server_exceptions=False, follow_redirects=False)
    r = client.post("/login", data={"token": READ, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "the page's form carries no CSRF token"
    return found.group(1)


@pytest.mark.parametrize(
    "path",
    ["/api/documents", "/api/index", "/api/documents/a.txt", "/files/a.txt", "/metrics", "/docs", "/openapi.json"],
)
def test_the_api_needs_the_token(private: Served, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "WRONG_TOKEN_DELAY", 0.0)  # the pause itself: test_server_attack.py
    r = private.client.get(path)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert private.client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_question_without_the_token_is_refused_unread(private: Served) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"60")]
    status, _, body, received = raw_request(private.app, "POST", "/api/ask", headers, [b'{"question": "x"}'])
    assert status == 401 and received == 0, body


def test_the_read_or_admin_token_reads(private: Served) -> None:
    for headers in (READER, AUTH):
        r = private.client.post("/api/ask", json={"question": QUESTION}, headers=headers)
        assert r.status_code == 200 and not r.json()["abstained"]
    assert private.client.get("/api/documents", headers=READER).status_code == 200


def test_health_and_static_files_stay_open(private: Served) -> None:
    assert private.client.get("/api/health").status_code == 200
    assert private.client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize("path", ["/", "/admin", "/documents", "/documents/a.txt?start=1&end=2"])
def test_a_page_without_a_session_redirects_to_the_login_form(private: Served, path: str) -> None:
    r = private.client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2F")
    form = private.client.get(r.headers["location"]).text
    assert 'action="/login"' in form and 'type="password"' in form
    assert "doclist" not in form, "the login page lists the documents"


def test_the_login_form_sets_a_strict_httponly_cookie(private: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "WRONG_TOKEN_DELAY", 0.0)
    client = TestClient(private.app, follow_redirects=False)
    wrong = client.post("/login", data={"token": "nope", "next": "/admin"})
    assert wrong.status_code == 401 and "not the token" in wrong.text and "set-cookie" not in wrong.headers
    r = client.post("/login", data={"token": READ, "next": "/admin"})
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and READ not in cookie
    assert client.get("/admin").status_code == 200
    assert client.get("/api/documents").status_code == 200  # the chat's own reads (live.js) ride on the cookie
    forged = TestClient(private.app, follow_redirects=False, cookies={"rag_session": "abc.def"})
    assert forged.get("/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/\t/evil.example"])
def test_login_goes_back_to_this_server_only(private: Served, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(private.app, follow_redirects=False)
    r = client.post("/login", data={"token": READ, "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_forms_posted_with_the_cookie_need_the_csrf_token(browser: TestClient) -> None:
    token = csrf_of(browser.get("/").text)
    for path, data in [("/turn", {"q": QUESTION, "n": "1"}), ("/", {"q": QUESTION})]:
        assert browser.post(path, data=data).status_code == 403, path
        assert browser.post(path, data={**data, "csrf": "0" * 64}).status_code == 403, path
        r = browser.post(path, data={**data, "csrf": token})
        assert r.status_code == 200 and "Ukraine" in r.text, path


def test_signing_out_clears_the_cookie(browser: TestClient) -> None:
    token = csrf_of(browser.get("/").text)
    assert browser.post("/logout").status_code == 403  # no CSRF token: a forged sign-out
    r = browser.post("/logout", data={"csrf": token})
    assert r.status_code == 303 and "Max-Age=0" in r.headers["set-cookie"]
    assert browser.get("/").status_code == 303
