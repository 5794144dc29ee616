"""Edge: response headers that make the pages inert to injected content, and request body limits.

A pure ASGI middleware: it refuses a body over the limit from its Content-Length with 413 before any route reads
it, a chunked body with 411 (with or without a length), and a body whose bytes run over the limit as they arrive
with 413 (uvicorn's HTTP parser already holds a client to the length it declared; this does not rely on it); a body
that takes longer than `body_seconds` to arrive (it stopped arriving: issue #20) with 408, closing the connection;
and it adds a Content-Security-Policy (scripts and styles from this server only), X-Content-Type-Options, a frame
policy and a referrer policy to every response.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI starts itself with an inline script: allowed on the API docs page only.
DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]

SECURITY_HEADERS = {"content-security-policy": CSP, **{k.decode(): v.decode() for k, v in HEADERS}}


class Limits:
    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int, body_seconds: float) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit + 64_000  # room for the multipart envelope
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] == "/api/documents" else self.json_limit
        csp = (DOCS_CSP if scope["path"] == "/docs" else CSP).encode()
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        # A body sent in chunks is refused even with a Content-Length beside it: the server reads the chunks (the
        # Transfer-Encoding wins, RFC 9112 6.3), so a small length in front of a large chunked body would pass the
        # limit below (issue #11: 200 MB read this way).
        if b"transfer-encoding" in headers:
            await _refuse(send, 411, "length_required", "send the body with a Content-Length and no Transfer-Encoding")
            return
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(send, 413, "too_large", f"the request body is over {limit} bytes")
            return

        received = 0
        timed_receive = self.timed(receive)

        async def counted_receive() -> Message:
            # The limit holds for the bytes that arrive, too, whatever the headers said: a route that reads more than
            # `limit` gets a 413 (raised to the app's error handler) instead of the rest of the body.
            nonlocal received
            message = await timed_receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"the request body is over {limit} bytes")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", csp), *HEADERS]
            await send(message)

        await self.app(scope, counted_receive, send_with_headers)

    def timed(self, receive: Receive) -> Receive:
        """`receive` with a deadline for the body: `body_seconds` from the first read to its last part. A part that
        has not come by then is answered 408 (raised to the app's error handler) and the connection is closed, so a
        client that stops sending holds neither a route nor its connection. Once the body is in, a read (a streamed
        response waiting for the client to disconnect) waits as long as it has to."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        complete = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            deadline = deadline or loop.time() + self.body_seconds
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                why = f"the request body did not arrive within {self.body_seconds:g} s"
                raise HTTPException(408, why, headers={"Connection": "close"}) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return timed_receive


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}})
    headers = [(b"content-type", b"application/json"), (b"content-security-policy", CSP.encode()), *HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


def add_security(app: FastAPI, json_limit: int, upload_limit: int, body_seconds: float) -> None:
    app.add_middleware(
        Limits,  # type: ignore[arg-type]
        json_limit=json_limit,
        upload_limit=upload_limit,
        body_seconds=body_seconds,
    )
