"""Edge: signing in to a private server (`read_token`, see `access.py`): the login form, and signing out (which
ends the session on the server too, not only in the browser)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .access import COOKIE, new_session, read_session, safe_next, session_cookie
from .deps import ServiceDep, pause_wrong_token, require_csrf
from .pages import page

login = APIRouter()


@login.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, service: ServiceDep, next: str = "/") -> Response:
    if not service.assistant.settings.read_token:
        return RedirectResponse(safe_next(next), 303)  # nothing to sign in to
    return page(request, service, "login.html", next=safe_next(next), signed_out=True)  # no document titles


@login.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_post(
    request: Request,
    service: ServiceDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = service.assistant.settings.read_token
    if not expected:
        return RedirectResponse(safe_next(next), 303)
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        await pause_wrong_token(request)
        return page(request, service, "login.html", 401, next=safe_next(next), wrong=True, signed_out=True)
    response = RedirectResponse(safe_next(next), 303)
    secure = request.url.scheme == "https"
    hours = service.assistant.settings.session_hours
    response.headers.append("set-cookie", session_cookie(new_session(expected, hours), secure, hours))
    return response


@login.post("/logout", include_in_schema=False, dependencies=[Depends(require_csrf)])
def logout(request: Request, service: ServiceDep) -> Response:
    """Sign out: the browser drops the cookie, and the server refuses it from now on (a copy of it too)."""
    session = read_session(service.assistant.settings.read_token, request.cookies.get(COOKIE))
    if session is not None:
        request.app.state.sign_outs.add(session)
    response = RedirectResponse("/login", 303)
    response.headers.append("set-cookie", session_cookie("", request.url.scheme == "https"))
    return response
