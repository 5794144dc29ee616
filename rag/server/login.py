"""Edge: signing in to a private server (`read_token`, see `access.py`): the login form, and signing out."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .access import new_session, safe_next, session_cookie
from .deps import ServiceDep, require_csrf
from .pages import page

login = APIRouter()
# A wrong token waits a second before its answer: guessing from one connection is slow. The defence is a long
# random token (the README says how to make one); this only takes the edge off a script.
WRONG_TOKEN_DELAY = 1.0


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
        await asyncio.sleep(WRONG_TOKEN_DELAY)
        return page(request, service, "login.html", 401, next=safe_next(next), wrong=True, signed_out=True)
    response = RedirectResponse(safe_next(next), 303)
    secure = request.url.scheme == "https"
    response.headers.append("set-cookie", session_cookie(new_session(expected), secure))
    return response


@login.post("/logout", include_in_schema=False, dependencies=[Depends(require_csrf)])
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303)
    response.headers.append("set-cookie", session_cookie("", request.url.scheme == "https"))
    return response
