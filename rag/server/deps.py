"""Edge: the FastAPI dependencies shared by the JSON routes (`server.py`) and the HTML pages (`pages.py`): the
app's `Service` and the admin check, which answers a wrong token late (`access.WrongTokens`)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Form, Request

from .. import errors
from .access import WrongTokens, bearer_matches, bearer_ok, client_address, csrf_token
from .service import Service
from .workers import Pool


def get_service(request: Request) -> Service:
    """The `Service` the app was built around (`create_app` sets `app.state.service`)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_asks(request: Request) -> Pool:
    """The bounded pool that questions are answered in (`workers.py`)."""
    pool: Pool = request.app.state.asks
    return pool


AskPool = Annotated[Pool, Depends(get_asks)]


def get_renders(request: Request) -> Pool:
    """The bounded pool that document pages are drawn in (`workers.py`)."""
    pool: Pool = request.app.state.renders
    return pool


RenderPool = Annotated[Pool, Depends(get_renders)]


def require_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """A form posted with the session cookie of a private server (`access.py`) carries the session's CSRF token;
    a request with a bearer token carries no cookie to ride on, and an open server has no session."""
    settings = get_service(request).assistant.settings
    if not settings.read_token or bearer_ok(settings, request.headers.get("authorization", "")):
        return
    if not hmac.compare_digest(csrf.encode(), csrf_token(settings, request).encode()) or not csrf:
        raise errors.Forbidden("the form's CSRF token is missing or stale; reload the page and send it again")


async def require_admin(request: Request) -> None:
    """Admin routes need `Authorization: Bearer <RAG_ADMIN_TOKEN>`; with no token set they are off."""
    if not get_service(request).assistant.settings.admin_token:
        raise errors.Forbidden("admin routes are off; set RAG_ADMIN_TOKEN on the server to turn them on")
    if not await check_admin(request):
        raise errors.Unauthorized("send the admin token as 'Authorization: Bearer <token>'")


async def check_admin(request: Request) -> bool:
    """Whether the request carries the admin token; one carrying a token that is none of the server's waits as a
    wrong token does (`pause_wrong_token`), so no route tells a right admin token from a wrong one faster."""
    if is_admin(request):
        return True
    authorization = request.headers.get("authorization", "")
    if authorization and not bearer_ok(get_service(request).assistant.settings, authorization):
        await pause_wrong_token(request)
    return False


async def pause_wrong_token(request: Request) -> None:
    """Wait before answering a wrong token, paced by the client's address (`access.WrongTokens`)."""
    wrong_tokens: WrongTokens = request.app.state.wrong_tokens
    await wrong_tokens.pause(client_address(request.scope))


def is_admin(request: Request) -> bool:
    """Whether the request carries the admin token (never, when none is set)."""
    admin_token = get_service(request).assistant.settings.admin_token
    return bearer_matches(request.headers.get("authorization", ""), (admin_token,))
