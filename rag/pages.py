"""Edge: the HTML pages (Jinja2, autoescaped): the chat, one document with a cited passage marked, admin.

Every reply is rendered by one template, `_turn.html`: the page renders it for a plain form post (no JavaScript),
and the script fetches the same fragment from `POST /turn`, so the two never drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .errors import NotFound, RagError
from .server import WEB
from .service import Service

MAX_TURNS = 20


def passage_parts(text: str, offset: int, mark: tuple[int, int] | None) -> list[tuple[bool, str]]:
    """`text` (which starts at document offset `offset`) cut into (marked, piece) around the span `mark`."""
    if mark is None:
        return [(False, text)]
    a = min(max(mark[0] - offset, 0), len(text))
    b = min(max(mark[1] - offset, a), len(text))
    return [(m, t) for m, t in ((False, text[:a]), (True, text[a:b]), (False, text[b:])) if t]


def exact_span(answer: Any, within: Any = None) -> tuple[int, int] | None:
    """The answer's short exact span (`answer["exact"]`) as document offsets, or None when there is none or it is
    not a well-formed span inside the answer sentence (and inside `within`, a {"start", "end"} span, when given).

    `answer` is the response's "answer" dict (or None); a missing "exact" key means no span.
    """
    exact = _field(answer, "exact")
    if exact is None:
        return None
    xs, xe, text = _field(exact, "start"), _field(exact, "end"), _field(exact, "text")
    a_start, a_end, a_text = _field(answer, "start"), _field(answer, "end"), _field(answer, "text")
    if not all(type(v) is int for v in (xs, xe, a_start, a_end)) or not isinstance(a_text, str):
        return None
    if not a_start <= xs < xe <= a_end or a_text[xs - a_start : xe - a_start] != text:
        return None
    if within is not None:
        w_start, w_end = _field(within, "start"), _field(within, "end")
        if not (type(w_start) is int and type(w_end) is int and w_start <= xs and xe <= w_end):
            return None
    return (xs, xe)


def _field(obj: Any, name: str) -> Any:
    """`obj[name]` for a dict, `obj.name` for an object; None when it is missing."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def document_link(
    source: str,
    start: int | None = None,
    end: int | None = None,
    mark: dict[str, int] | None = None,
    exact: tuple[int, int] | None = None,
) -> str:
    """The URL of a document page, at a passage (and a sentence in it, and the exact answer in that) when given."""
    url = f"/documents/{quote(source)}"
    if start is None or end is None:
        return url
    query = {"start": start, "end": end}
    if mark:
        query |= {"hs": mark["start"], "he": mark["end"]}
        if exact:
            query |= {"xs": exact[0], "xe": exact[1]}
    return f"{url}?{urlencode(query)}#passage"


def add_page_routes(app: FastAPI, service: Service) -> None:
    templates = Jinja2Templates(directory=str(WEB / "templates"))
    templates.env.globals.update(passage_parts=passage_parts, document_link=document_link, exact_span=exact_span)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {
            "documents": service.assistant.index.documents,
            "admin_on": bool(service.assistant.settings.admin_token),
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    def answer_turns(questions: list[str]) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = []
        for i, question in enumerate(questions[-MAX_TURNS:]):
            earlier: list[str] = [t["question"] for t in turns if "response" in t]
            try:
                response = service.assistant.ask(question, history=earlier[-MAX_TURNS:]).to_dict()
                turns.append({"id": i + 1, "question": question, "response": response})
            except RagError as exc:
                turns.append({"id": i + 1, "question": question, "error": str(exc)})
        return turns

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
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
            response = service.assistant.ask(q, history=(history or [])[-MAX_TURNS:]).to_dict()
            return page(request, "_turn.html", turn={"id": n, "question": q.strip(), "response": response})
        except RagError as exc:
            return page(request, "_turn.html", 400, turn={"id": n, "question": q.strip(), "error": str(exc)})

    @app.get("/documents/{source:path}", response_class=HTMLResponse, include_in_schema=False)
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
        index = service.assistant.index
        entry = next((d for d in index.documents if d.source == source), None)
        if entry is None:
            return page(request, "missing.html", 404, source=source)
        try:
            doc = service.assistant.document(source)
        except Exception:  # unreadable now: Unreadable, OSError
            raise NotFound(f"{source} is in the index but can no longer be read from the corpus") from None
        text, changed = doc.text, doc.sha256 != entry.sha256
        passage = mark = exact = None
        if start is not None and end is not None and 0 <= start < end <= len(text):
            passage = (start, end)
            if hs is not None and he is not None and start <= hs < he <= end:
                mark = (hs, he)
                if xs is not None and xe is not None and hs <= xs < xe <= he:
                    exact = (xs, xe)
        return page(
            request, "document.html", entry=entry, text=text, passage=passage, mark=mark, exact=exact, changed=changed
        )

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin(request: Request) -> HTMLResponse:
        return page(request, "admin.html")
