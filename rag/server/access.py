"""Edge: a private corpus on a network (`read_token`, issue #11). Unset, every route is open, as before.

Set, every route but `/api/health`, the static files and the login page needs one of:
- `Authorization: Bearer <read_token>` (or the admin token, which may do everything a reader may), for the API;
- the session cookie that `POST /login` sets for the chat: HttpOnly (no script reads it), SameSite=Strict (no other
  site's page sends it), Secure over HTTPS. It holds a random session id, when it expires (`session_hours`) and the
  HMAC of both under a key derived from the token, so changing the token signs everyone out. The server keeps only
  the sessions signed out before they expire (`SignOuts`), in memory: a restart forgets them.

Forms posted with the cookie carry a CSRF token (an HMAC of the session id, `csrf_token`), checked by
`deps.require_csrf`. The check here is a pure ASGI middleware, so a request without the token is refused before its
body is read: an API client gets 401 JSON, a browser a redirect to the login page. A token that is none of the
server's is answered late (`WrongTokens`), here, on the login form and by the admin check alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from typing import NamedTuple
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings

COOKIE = "rag_session"
OPEN = ("/api/health", "/login")  # the liveness probe, and the page a reader signs in on (with /static/: its style)
API = ("/api/", "/files/", "/metrics", "/docs", "/openapi.json")  # answered in JSON: 401, not a redirect
# A wrong token waits a second before its answer: guessing is slow. The defence is a long random token (the README
# says how to make one); this only takes the edge off a script (issue #20: 200 guesses a second on one connection).
WRONG_TOKEN_DELAY = 1.0
# A client's wrong tokens are answered one `WRONG_TOKEN_DELAY` apart, but none waits more than 30 s: a client with
# thousands of connections holds none of them long (it then guesses at most that many every 30 s).
MOST_WRONG_TOKEN_WAIT = 30.0
# The table of clients with a wrong answer pending is swept of those already answered once it holds 1,024 of them,
# and after that each time it has doubled since the last sweep: the sweeps cost O(1) a wrong token, however many
# addresses an attacker has.
SWEEP_CLIENTS = 1024
# 10,000 sessions signed out before their expiry are kept (about 1 MB); past that, the one that expires first is
# forgotten (its cookie works again until it expires: it could sign in anyway, with the read token).
MAX_SIGN_OUTS = 10_000


class Session(NamedTuple):
    id: str
    expires: int  # Unix time


def _key(token: str) -> bytes:
    return hashlib.sha256(b"rag-session\0" + token.encode()).digest()


def _sign(token: str, body: str) -> str:
    return hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()


def new_session(token: str, hours: float) -> str:
    """A cookie value: a random session id, when it expires (`hours` from now, Unix time), and their HMAC."""
    body = f"{secrets.token_urlsafe(24)}.{int(time.time() + hours * 3600)}"
    return f"{body}.{_sign(token, body)}"


def read_session(token: str, cookie: str | None) -> Session | None:
    """The session of a cookie value signed under `token`, or None (also once it has expired)."""
    body, _, mac = (cookie or "").rpartition(".")
    if not body or not hmac.compare_digest(mac.encode(), _sign(token, body).encode()):
        return None
    sid, _, expires = body.partition(".")
    return Session(sid, int(expires)) if expires.isdigit() and int(expires) > time.time() else None


def session_id(token: str, cookie: str | None) -> str | None:
    """The session id of a cookie value signed under `token` that has not expired, or None."""
    session = read_session(token, cookie)
    return session.id if session else None


class SignOuts:
    """The sessions signed out (`POST /logout`) before they expire, each kept until it expires (its cookie is
    refused anyway then), at most `MAX_SIGN_OUTS`. In memory: a restart forgets them."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, session: Session) -> None:
        with self._lock:
            if len(self._until) >= MAX_SIGN_OUTS:
                now = time.time()
                self._until = {sid: t for sid, t in self._until.items() if t > now}
            if len(self._until) >= MAX_SIGN_OUTS:
                del self._until[min(self._until, key=self._until.__getitem__)]
            self._until[session.id] = session.expires

    def __contains__(self, sid: str) -> bool:
        return sid in self._until


class WrongTokens:
    """Answers to wrong tokens, paced by client address (an IPv6 client by its /64): each comes `WRONG_TOKEN_DELAY`
    after the one before it from the same address, but at most `MOST_WRONG_TOKEN_WAIT` later, so one connection
    guesses once a second and an address with N connections at most N times in 30 s. Only the request waits, on the
    event loop: other requests, and this client's right tokens, do not. Behind a reverse proxy every client has the
    proxy's address."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}  # when each client's latest wrong answer is due (time.monotonic)
        self._sweep_at = SWEEP_CLIENTS
        self._lock = threading.Lock()

    async def pause(self, client: str) -> None:
        await asyncio.sleep(self._wait(pacing_key(client)))

    def _wait(self, client: str) -> float:
        with self._lock:
            now = time.monotonic()
            if len(self._due) >= self._sweep_at:
                self._due = {c: due for c, due in self._due.items() if due > now}
                self._sweep_at = max(SWEEP_CLIENTS, 2 * len(self._due))
            due = min(max(self._due.get(client, now), now) + WRONG_TOKEN_DELAY, now + MOST_WRONG_TOKEN_WAIT)
            self._due[client] = due
            return due - now


def pacing_key(address: str) -> str:
    """What wrong tokens are paced by: the address, or for IPv6 its /64 network, which one host usually holds whole
    (RFC 4291's interface identifiers are 64 bits): a client with many addresses of its network is one client."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def client_address(scope: Scope) -> str:
    """The address a request came from ("" when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


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
    def __init__(self, app: ASGIApp, settings: Settings, sign_outs: SignOuts, wrong_tokens: WrongTokens) -> None:
        self.app = app
        self.settings = settings
        self.sign_outs = sign_outs
        self.wrong_tokens = wrong_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.settings.read_token
        path = scope.get("path", "")
        if scope["type"] != "http" or not token or path in OPEN or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        authorization = connection.headers.get("authorization", "")
        session = read_session(token, connection.cookies.get(COOKIE))
        if bearer_ok(self.settings, authorization) or (session and session.id not in self.sign_outs):
            await self.app(scope, receive, send)
            return
        if authorization:  # a guess: answered late
            await self.wrong_tokens.pause(client_address(scope))
        if path.startswith(API):
            body = json.dumps({"error": {"code": "unauthorized", "message": UNAUTHORIZED}}).encode()
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="rag"')]
            await _reply(send, 401, headers, body)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = quote(path + (f"?{query}" if query else ""), safe="")
        await _reply(send, 303, [(b"location", f"/login?next={target}".encode())], b"")


UNAUTHORIZED = "this server is private: send 'Authorization: Bearer <read token>', or sign in at /login"


def session_cookie(value: str, secure: bool, hours: float = 0) -> str:
    """The Set-Cookie header of a session that lasts `hours` (an empty value with Max-Age 0 signs out). The value
    is URL-safe base64, digits and hex, so it needs no quoting."""
    age = int(hours * 3600) if value else 0
    return f"{COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
