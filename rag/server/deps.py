"""Edge: the FastAPI dependencies shared by the JSON routes (`server.py`) and the HTML pages (`pages.py`): the
app's `Service` and the admin check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Form, Request

from .. import errors
from .access import bearer_matches, bearer_ok, csrf_token
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


def require_admin(request: Request) -> None:
    """Admin routes need `Authorization: Bearer <RAG_ADMIN_TOKEN>`; with no token set they are off."""
    if not get_service(request).assistant.settings.admin_token:
        raise errors.Forbidden("admin routes are off; set RAG_ADMIN_TOKEN on the server to turn them on")
    if not is_admin(request):
        raise errors.Unauthorized("send the admin token as 'Authorization: Bearer <token>'")


def is_admin(request: Request) -> bool:
    """Whether the request carries the admin token (never, when none is set)."""
    admin_token = get_service(request).assistant.settings.admin_token
    return bearer_matches(request.headers.get("authorization", ""), (admin_token,))
