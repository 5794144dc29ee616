"""Edge: a private corpus on a network (`read_token`, issue #11). Unset, every route is open, as before.

Set, every route but `/api/health`, the static files and the login page needs one of:
- `Authorization: Bearer <read_token>` (or the admin token, which may do everything a reader may), for the API;
- the session cookie that `POST /login` sets for the chat: HttpOnly (no script reads it), SameSite=Strict (no other
  site's page sends it), Secure over HTTPS. It holds a random session id and its HMAC under a key derived from the
  token, so the server keeps no sessions and changing the token signs everyone out.

Forms posted with the cookie carry a CSRF token (an HMAC of the session id, `csrf_token`), checked by
`deps.require_csrf`. The check here is a pure ASGI middleware, so a request without the token is refused before its
body is read: an API client gets 401 JSON, a browser a redirect to the login page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings

COOKIE = "rag_session"
OPEN = ("/api/health", "/login")  # the liveness probe, and the page a reader signs in on (with /static/: its style)
API = ("/api/", "/files/", "/metrics", "/docs", "/openapi.json")  # answered in JSON: 401, not a redirect
SESSION_DAYS = 30  # how long a browser stays signed in; a new token signs everyone out at once


def _key(token: str) -> bytes:
    return hashlib.sha256(b"rag-session\0" + token.encode()).digest()


def new_session(token: str) -> str:
    """A cookie value: a random session id and its HMAC."""
    sid = secrets.token_urlsafe(24)
    return f"{sid}.{hmac.new(_key(token), sid.encode(), hashlib.sha256).hexdigest()}"


def session_id(token: str, cookie: str | None) -> str | None:
    """The session id of a cookie value signed under `token`, or None."""
    sid, _, mac = (cookie or "").partition(".")
    expected = hmac.new(_key(token), sid.encode(), hashlib.sha256).hexdigest()
    return sid if sid and hmac.compare_digest(mac.encode(), expected.encode()) else None


def csrf_token(settings: Settings, connection: HTTPConnection) -> str:
    """The CSRF token of the request's session ("" when there is no read token or no session)."""
    if not settings.read_token:
        return ""
    sid = session_id(settings.read_token, connection.cookies.get(COOKIE))
    if sid is None:
        return ""
    return hmac.new(_key(settings.read_token), b"csrf\0" + sid.encode(), hashlib.sha256).hexdigest()


def bearer_matches(authorization: str, tokens: tuple[str, ...]) -> bool:
    """Whether an Authorization header is `Bearer <one of tokens>` (compared in constant time; empty ones never)."""
    scheme, _, token = authorization.partition(" ")
    given = token.strip().encode()
    return scheme.lower() == "bearer" and any(hmac.compare_digest(given, t.encode()) for t in tokens if t)


def bearer_ok(settings: Settings, authorization: str) -> bool:
    """Whether the header carries a token that may read: the read token or the admin token."""
    return bearer_matches(authorization, (settings.read_token, settings.admin_token))


def safe_next(path: str) -> str:
    """Where to go after signing in: a path of this server only (not `//host` or `/\\host`, which a browser
    reads as another server, nor one whose first characters are white space or control characters, which a
    browser drops: "/", a tab, "/host")."""
    plain = path.startswith("/") and not any(c.isspace() or ord(c) < 32 or c == "\\" for c in path[:3])
    return path if plain and not path.startswith("//") else "/"


class ReadGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.settings.read_token
        path = scope.get("path", "")
        if scope["type"] != "http" or not token or path in OPEN or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if bearer_ok(self.settings, connection.headers.get("authorization", "")) or session_id(
            token, connection.cookies.get(COOKIE)
        ):
            await self.app(scope, receive, send)
            return
        if path.startswith(API):
            body = json.dumps({"error": {"code": "unauthorized", "message": UNAUTHORIZED}}).encode()
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="rag"')]
            await _reply(send, 401, headers, body)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = quote(path + (f"?{query}" if query else ""), safe="")
        await _reply(send, 303, [(b"location", f"/login?next={target}".encode())], b"")


UNAUTHORIZED = "this server is private: send 'Authorization: Bearer <read token>', or sign in at /login"


def session_cookie(value: str, secure: bool) -> str:
    """The Set-Cookie header of a session (an empty value with Max-Age 0 signs out). The value is URL-safe base64
    and hex, so it needs no quoting."""
    age = SESSION_DAYS * 86_400 if value else 0
    return f"{COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
