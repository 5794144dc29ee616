"""Edge: the HTML pages (Jinja2, autoescaped): the chat, one document with a cited passage marked, admin.

Every reply is rendered by one template, `_turn.html`: the page renders it for a plain form post (no JavaScript),
and the script fetches the same fragment from `POST /turn`, so the two never drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .config import MAX_HISTORY
from .documents import file_stamp
from .errors import RagError
from .service import Service
from .views import citation_cards, document_html, document_link, exact_span, original_link, passage_parts, plural

WEB = Path(__file__).resolve().parent.parent / "web"  # the templates and the static files (server.py)


def add_page_routes(app: FastAPI, service: Service) -> None:
    templates = Jinja2Templates(directory=str(WEB / "templates"))
    templates.env.globals.update(
        passage_parts=passage_parts, document_link=document_link, exact_span=exact_span, original_link=original_link
    )

    templates.env.globals.update(citation_cards=citation_cards, plural=plural)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {
            "documents": service.assistant.index.documents,
            "admin_on": bool(service.assistant.settings.admin_token),
        }
        response = templates.TemplateResponse(request, name, context, status_code=status)
        if request.method == "HEAD":  # the GET's status and headers, its Content-Length among them; no body
            response.body = b""
        return response

    def answer_turns(questions: list[str]) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = []
        for i, question in enumerate(questions[-MAX_HISTORY:]):
            earlier: list[str] = [t["question"] for t in turns if "response" in t]
            try:
                response = service.assistant.ask(question, history=earlier[-MAX_HISTORY:]).to_dict()
                turns.append({"id": i + 1, "question": question, "response": response})
            except RagError as exc:
                turns.append({"id": i + 1, "question": question, "error": str(exc)})
        return turns

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def chat(request: Request) -> HTMLResponse:
        return page(request, "chat.html", turns=[])

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_post(
        request: Request, q: Annotated[str, Form()] = "", history: Annotated[list[str] | None, Form()] = None
    ) -> HTMLResponse:
        """The chat without JavaScript: the earlier questions come back as hidden fields and are answered again."""
        turns = answer_turns([*(history or []), q])
        return page(request, "chat.html", 400 if "error" in turns[-1] else 200, turns=turns)

    @app.post("/turn", response_class=HTMLResponse, include_in_schema=False)
    def turn(
        request: Request,
        q: Annotated[str, Form()] = "",
        n: Annotated[int, Form()] = 0,
        history: Annotated[list[str] | None, Form()] = None,
    ) -> HTMLResponse:
        """One reply as an HTML fragment, for the chat's script; `n` numbers the turn for its anchors."""
        try:
            response = service.assistant.ask(q, history=(history or [])[-MAX_HISTORY:]).to_dict()
            return page(request, "_turn.html", turn={"id": n, "question": q.strip(), "response": response})
        except RagError as exc:
            return page(request, "_turn.html", 400, turn={"id": n, "question": q.strip(), "error": str(exc)})

    @app.api_route(
        "/documents/{source:path}", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def document(
        request: Request,
        source: str,
        start: int | None = None,
        end: int | None = None,
        hs: int | None = None,
        he: int | None = None,
        xs: int | None = None,
        xe: int | None = None,
    ) -> HTMLResponse:
        """A document, with the passage `start`-`end` marked, the sentence `hs`-`he` in it and the exact answer
        `xs`-`xe` in that (bold); each span is left out unless it lies inside the one around it."""
        entry = service.assistant.index.entry(source)
        if entry is None:
            return page(request, "missing.html", 404, source=source)
        text = service.assistant.document_text(source)
        changed = file_stamp(service.assistant.settings.corpus / source) != (entry.size, entry.mtime_ns)
        passage = mark = exact = None
        if start is not None and end is not None and 0 <= start < end <= len(text):
            passage = (start, end)
            if hs is not None and he is not None and start <= hs < he <= end:
                mark = (hs, he)
                if xs is not None and xe is not None and hs <= xs < xe <= he:
                    exact = (xs, xe)
        html = document_html(text, entry.pages, passage, mark, exact)
        at_page = entry.page_at(passage[0]) if passage else None
        gone = not (service.assistant.settings.corpus / source).exists()
        return page(
            request,
            "document.html",
            entry=entry,
            text=text,
            html=html,
            passage=passage,
            at_page=at_page,
            changed=changed,
            removed=gone,
        )

    @app.api_route("/admin", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    def admin(request: Request) -> HTMLResponse:
        skipped = service.assistant.index.manifest.get("skipped", {})
        return page(request, "admin.html", skipped=skipped, suffixes=service.upload_suffixes)
