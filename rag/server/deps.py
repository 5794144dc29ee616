"""Edge: the FastAPI dependencies shared by the JSON routes (`server.py`) and the HTML pages (`pages.py`): the
app's `Service` and the admin check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from .. import errors
from .service import Service


def get_service(request: Request) -> Service:
    """The `Service` the app was built around (`create_app` sets `app.state.service`)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def require_admin(request: Request) -> None:
    """Admin routes need `Authorization: Bearer <RAG_ADMIN_TOKEN>`; with no token set they are off."""
    expected = get_service(request).assistant.settings.admin_token
    if not expected:
        raise errors.Forbidden("admin routes are off; set RAG_ADMIN_TOKEN on the server to turn them on")
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise errors.Unauthorized("send the admin token as 'Authorization: Bearer <token>'")
