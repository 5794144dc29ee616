"""Edge: the HTML pages (Jinja2, autoescaped): the chat, one document with a cited passage marked, admin.

Every reply is rendered by one template, `_turn.html`: the page renders it for a plain form post (no JavaScript),
and the script fetches the same fragment from `POST /turn`, so the two never drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ..config import MAX_HISTORY
from ..errors import Busy, RagError
from ..pipeline import language_setup
from ..readers.documents import file_stamp, printable
from .access import csrf_token
from .cards import card_excerpt, fold_cards, score_text
from .deps import AskPool, RenderPool, ServiceDep, require_csrf
from .service import Service
from .views import (
    citation_cards,
    document_html,
    document_link,
    document_part,
    exact_span,
    original_link,
    passage_parts,
    plural,
)

WEB = Path(__file__).resolve().parents[2] / "web"  # the templates and the static files (server.py)
Span = tuple[int, int]
Bounds = tuple[int | None, int | None]  # a span as the query string gives it, either end may be missing

templates = Jinja2Templates(directory=str(WEB / "templates"))
templates.env.globals.update(
    passage_parts=passage_parts, document_link=document_link, exact_span=exact_span, original_link=original_link
)
templates.env.globals.update(citation_cards=citation_cards, card_excerpt=card_excerpt, fold_cards=fold_cards)
templates.env.globals.update(plural=plural, score_text=score_text)

pages = APIRouter()
# 30 documents in the sidebar of every page (the rest on /documents, 100 a page, with a filter): the bundled
# corpus and a small folder show whole, and a 2,000-document corpus no longer makes every page 318 kB (issue #11).
SIDEBAR = 30
LIST_PAGE = 100
CSRF = [Depends(require_csrf)]


def page(
    request: Request,
    service: Service,
    name: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    documents = service.assistant.index.documents
    context |= {
        "documents": documents[:SIDEBAR],  # every page carries the sidebar: its size must not grow with the corpus
        "document_count": len(documents),
        "admin_on": bool(service.assistant.settings.admin_token),
        "csrf": csrf_token(service.assistant.settings, request),  # "" unless signed in to a private server
    }
    return templates.TemplateResponse(request, name, context, status_code=status, headers=headers)


def answer_turns(service: Service, questions: list[str]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i, question in enumerate(questions[-MAX_HISTORY:]):
        earlier: list[str] = [t["question"] for t in turns if "response" in t]
        try:
            response = service.assistant.ask(question, history=earlier[-MAX_HISTORY:])
            turns.append({"id": i + 1, "question": question, "response": response})
        except RagError as exc:
            turns.append({"id": i + 1, "question": question, "error": str(exc)})
    return turns


def nested_spans(
    length: int, passage: Bounds, mark: Bounds, exact: Bounds
) -> tuple[Span | None, Span | None, Span | None]:
    """The passage inside `[0, length]`, the mark inside the passage, the exact answer inside the mark; each is
    None unless it and every span around it lie where they must."""
    spans: list[Span | None] = [None, None, None]
    low, high = 0, length
    for i, (start, end) in enumerate((passage, mark, exact)):
        if start is None or end is None or not low <= start < end <= high:
            break
        spans[i] = (start, end)
        low, high = start, end
    return spans[0], spans[1], spans[2]


# HEAD is answered for every GET route by methods.py.
@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
def chat(request: Request, service: ServiceDep) -> HTMLResponse:
    return page(request, service, "chat.html", turns=[])


@pages.post("/", response_class=HTMLResponse, include_in_schema=False, dependencies=CSRF)
async def chat_post(
    request: Request,
    service: ServiceDep,
    asks: AskPool,
    q: Annotated[str, Form()] = "",
    history: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """The chat without JavaScript: the earlier questions come back as hidden fields and are answered again."""
    questions = [*(history or []), q]
    try:
        turns = await asks.run(answer_turns, service, questions)
    except Busy as exc:
        turns = [{"id": len(questions), "question": q, "error": str(exc)}]
        return page(request, service, "chat.html", 503, turns=turns, headers={"Retry-After": str(exc.retry_after)})
    return page(request, service, "chat.html", 400 if "error" in turns[-1] else 200, turns=turns)


@pages.post("/turn", response_class=HTMLResponse, include_in_schema=False, dependencies=CSRF)
async def turn(
    request: Request,
    service: ServiceDep,
    asks: AskPool,
    q: Annotated[str, Form()] = "",
    n: Annotated[int, Form()] = 0,
    history: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """One reply as an HTML fragment, for the chat's script; `n` numbers the turn for its anchors."""
    try:
        response = await asks.run(service.assistant.ask, q, None, (history or [])[-MAX_HISTORY:])
        return page(request, service, "_turn.html", turn={"id": n, "question": q.strip(), "response": response})
    except RagError as exc:
        status, headers = (503, {"Retry-After": str(exc.retry_after)}) if isinstance(exc, Busy) else (400, None)
        turn = {"id": n, "question": q.strip(), "error": str(exc)}
        return page(request, service, "_turn.html", status, turn=turn, headers=headers)


@pages.get("/documents", response_class=HTMLResponse, include_in_schema=False)
def document_list(
    request: Request, service: ServiceDep, q: str = "", page_number: int = Query(1, alias="page")
) -> HTMLResponse:
    """Every document, a page of `LIST_PAGE` at a time; `q` keeps those whose title or file name holds it."""
    words = q.casefold().split()
    found = [
        d for d in service.assistant.index.documents if all(w in f"{d.title} {d.source}".casefold() for w in words)
    ]
    pages_count = max(1, -(-len(found) // LIST_PAGE))
    number = min(max(page_number, 1), pages_count)
    shown = found[(number - 1) * LIST_PAGE : number * LIST_PAGE]
    return page(
        request, service, "documents.html", q=q, found=len(found), shown=shown, number=number, pages=pages_count
    )


@pages.get("/documents/{source:path}", response_class=HTMLResponse, include_in_schema=False)
async def document(
    request: Request,
    service: ServiceDep,
    renders: RenderPool,
    source: str,
    start: int | None = None,
    end: int | None = None,
    hs: int | None = None,
    he: int | None = None,
    xs: int | None = None,
    xe: int | None = None,
    part: int | None = None,
) -> HTMLResponse:
    """A document, with the passage `start`-`end` marked, the sentence `hs`-`he` in it and the exact answer
    `xs`-`xe` in that (bold); each span is left out unless it lies inside the one around it. A long document is
    shown a part at a time (the passage's part, else `part`); pages are drawn in a small bounded pool, so many
    views of a long document at once wait or get 503 instead of each holding its text in memory (issue #11)."""
    try:
        return await renders.run(render_document, request, service, source, (start, end), (hs, he), (xs, xe), part)
    except Busy as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return page(request, service, "missing.html", 503, headers, source=printable(source), busy=True)


def render_document(
    request: Request, service: Service, source: str, span: Bounds, mark: Bounds, exact: Bounds, part: int | None
) -> HTMLResponse:
    index = service.assistant.index  # one index for the page, even if a rebuild swaps in another meanwhile
    entry = index.entry(source)
    if entry is None:
        return page(request, service, "missing.html", 404, source=printable(source))  # a NUL is not echoed
    text = index.document(source).text
    stamp = file_stamp(service.assistant.settings.corpus / source)  # (-1, -1): the file is gone
    passage, marked, bold = nested_spans(len(text), span, mark, exact)
    shown = document_part(text, part, passage)
    return page(
        request,
        service,
        "document.html",
        entry=entry,
        length=len(text),
        part=shown,
        html=document_html(text[shown.start : shown.end], entry.pages, passage, marked, bold, shown.start),
        passage=passage,
        at_page=entry.page_at(passage[0]) if passage else None,
        changed=stamp != (entry.size, entry.mtime_ns),
        removed=stamp == (-1, -1),
    )


@pages.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin(request: Request, service: ServiceDep) -> HTMLResponse:
    # The count only: which files were skipped, and why, is shown with the admin token (admin.js, GET /api/index).
    skipped = len(service.assistant.index.summary.skipped)
    languages = language_setup(service.assistant.settings)  # the operator's part of a question in another language
    return page(
        request, service, "admin.html", skipped_count=skipped, suffixes=service.upload_suffixes, languages=languages
    )
