"""Edge: HTTP methods and paths the routes do not each handle: HEAD, OPTIONS, the Allow header of a 405, and a
trailing slash.

A pure ASGI middleware over the app's routes (issue #11):
- `HEAD` is a `GET` whose body is not sent: the same status and headers, `Content-Length` among them (RFC 9110
  9.3.2), on every GET route (FastAPI's routes answered 405 to it).
- `OPTIONS` answers 204 with an `Allow` header naming every method of every route at the path (Starlette named
  those of the first route only, so `/api/documents` said `GET` while it takes `POST` too).
- A 405's `Allow` names the same methods.
- `/admin/` redirects to `/admin` with a relative `Location` (Starlette built it from the request's `Host`
  header, which a client chooses); a path that no route knows even without its slash stays a 404.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROUTED = ("GET", "POST", "PUT", "PATCH", "DELETE")  # the methods a route may name; HEAD and OPTIONS are answered here


class Methods:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # the app's own list: routes added later are seen too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, raw_path = scope["method"], scope.get("raw_path") or scope["path"].encode()
        allowed = self.allowed(scope)
        if not allowed and raw_path.endswith(b"/") and len(raw_path) > 1:
            await self._slash(scope, raw_path, receive, send)
            return
        if method == "OPTIONS" and allowed:
            await _empty(send, 204, [(b"allow", ", ".join(allowed).encode())])
            return
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
            send = _without_body(send)

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", ", ".join(allowed).encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def allowed(self, scope: Scope) -> list[str]:
        """Every method some route takes at this path, HEAD beside GET and OPTIONS beside any; [] if none.

        Each method is tried on every route by `matches`, which sees through FastAPI's included routers."""
        methods: set[str] = set()
        for route in self.routes:
            if isinstance(route, Mount):  # the static files: read only
                methods |= {"GET"} if route.matches(scope)[0] is not Match.NONE else set()
                continue
            methods |= {m for m in ROUTED if route.matches({**scope, "method": m})[0] is Match.FULL}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods | {"OPTIONS"}) if methods else []

    async def _slash(self, scope: Scope, raw_path: bytes, receive: Receive, send: Send) -> None:
        bare = raw_path.rstrip(b"/")
        path = scope["path"].rstrip("/")
        # "//host" would be a Location to another server: only a single leading slash is redirected.
        known = bare.startswith(b"/") and not bare.startswith(b"//") and self.allowed({**scope, "path": path})
        if not known:  # no route even without the slash: the router's 404
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        location = bare + (b"?" + query if query else b"")
        await _empty(send, 307, [(b"location", location)])


async def _empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head
