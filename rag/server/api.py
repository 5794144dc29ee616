"""Edge: the HTTP API (FastAPI). Routes translate requests to core calls and core errors to one JSON shape:
`{"error": {"code": ..., "message": ...}}` with a 4xx status for anything a client sends. The HTML pages are in
`pages.py`; the dependencies the routes share in `deps.py`; the background rebuild and uploads in `service.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException

from .. import __version__, errors
from ..config import MAX_HISTORY, MAX_QUESTION_CHARS, MAX_TOP_K
from ..pipeline import Assistant
from ..readers import READERS
from .access import ReadGate, SignOuts, WrongTokens
from .deps import AskPool, ServiceDep, check_admin, get_service, require_admin
from .downloads import document_response, file_response
from .login import login
from .methods import Methods
from .pages import WEB, pages
from .security import SECURITY_HEADERS, add_security
from .service import Service
from .workers import ASK_WORKERS, RENDER_QUEUE, RENDER_WORKERS, Pool

__all__ = ["AskRequest", "api", "create_app", "error_body", "get_service", "require_admin"]

MAX_JSON_BODY = 256_000
UPLOAD_HELP = f"A document in a format the readers know ({', '.join(sorted(READERS))})"
STATUS = {
    errors.BadQuestion: 400,
    errors.BadRequest: 400,
    errors.CorpusError: 400,
    errors.NotFound: 404,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.EngineError: 503,
    errors.Busy: 503,
    errors.StorageFull: 507,  # RFC 4918 11.5 Insufficient Storage; before StorageError, its base class
    errors.StorageError: 503,
}
ADMIN = [Depends(require_admin)]

api = APIRouter()


class AskRequest(BaseModel):
    question: str = Field(description=f"The question, 1 to {MAX_QUESTION_CHARS:,} characters.")
    top_k: StrictInt | None = Field(default=None, description=f"Passages to cite, 1 to {MAX_TOP_K}.")
    history: list[str] | None = Field(
        default=None, description=f"Earlier questions of the chat, oldest first; only the last {MAX_HISTORY} count."
    )


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def create_app(assistant: Assistant) -> FastAPI:
    """The web app around one `Assistant`: JSON API, chat pages, static files."""
    service = Service(assistant)
    # No /redoc: ReDoc runs code the Content-Security-Policy (security.py) rightly refuses, so it showed a blank
    # page; Swagger UI at /docs serves the same OpenAPI document and works under the policy.
    app = FastAPIOffline(
        title="rag", version=__version__, description="Answers quoted from your documents.", redoc_url=None
    )
    app.state.service = service
    app.state.asks = Pool(ASK_WORKERS, assistant.settings.ask_queue, "rag-ask")
    app.state.renders = Pool(RENDER_WORKERS, RENDER_QUEUE, "rag-page")
    app.state.sign_outs, app.state.wrong_tokens = SignOuts(), WrongTokens()
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    for exc_class, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    app.include_router(api)
    app.include_router(pages)
    app.include_router(login)
    app.router.redirect_slashes = False  # methods.py redirects with a relative Location, not one from Host
    app.add_middleware(Methods, routes=app.routes)  # type: ignore[arg-type]
    app.add_middleware(
        ReadGate,  # type: ignore[arg-type]  # before any body is read
        settings=assistant.settings,
        sign_outs=app.state.sign_outs,
        wrong_tokens=app.state.wrong_tokens,
    )
    add_security(app, MAX_JSON_BODY, assistant.settings.max_upload_bytes, assistant.settings.body_seconds)
    from .metrics import install

    install(app, service)  # last, so outermost: it times and counts every request, refused ones too
    return app


@api.post("/api/ask", tags=["ask"], responses={503: {"description": "Too many questions waiting (Retry-After)"}})
async def ask(body: AskRequest, service: ServiceDep, asks: AskPool) -> dict[str, Any]:
    """Answer a question: the same JSON as `rag ask --json`."""
    response = await asks.run(service.assistant.ask, body.question, body.top_k, body.history)
    return response.to_dict()


# The status routes are `async`: they run on the event loop, never queued behind model work in a thread pool.
@api.get("/api/ping", tags=["status"])
async def ping() -> dict[str, bool]:
    """Does nothing: the ceiling that the benchmark measures `/api/ask` against."""
    return {"ok": True}


@api.get("/api/health", tags=["status"])
async def health(service: ServiceDep) -> dict[str, Any]:
    index = service.assistant.index
    return {
        "status": "ready",
        "documents": len(index.documents),
        "chunks": index.chunk_count,
        "model": index.summary.model_name,
        "version": __version__,
    }


@api.get("/api/documents", tags=["documents"])
def documents(service: ServiceDep) -> list[dict[str, Any]]:
    return [
        {
            "source": d.source,
            "title": d.title,
            "format": d.format,
            "pages": len(d.pages),
            "chunks": d.chunks,
            "size": d.size,
        }
        for d in service.assistant.index.documents
    ]


# Both streamed a piece at a time (downloads.py): a reader that does not read holds a piece, not the document.
@api.get("/api/documents/{source:path}", tags=["documents"], response_model=None)
def document(source: str, service: ServiceDep) -> StreamingResponse:
    """One document as it was indexed: `text[start:end]` is the quote of every citation into it; `pages` holds
    the offset where each page starts (PDF)."""
    return document_response(service.assistant.index, source)


@api.get("/files/{source:path}", tags=["documents"], response_model=None)
def original(source: str, service: ServiceDep) -> StreamingResponse:
    """The document's original file, as a download: the file `original_file` opened and checked, never the path
    opened again (a link swapped in between could lead out of the corpus)."""
    return file_response(*service.original_file(source))


@api.get("/api/index", tags=["status"])
async def index_status(request: Request, service: ServiceDep) -> dict[str, Any]:
    """The index's counts and how it was built; `skipped` (each skipped file, its reason, size and time), and the
    skipped files of the last rebuild's report, only with the admin token: a file's name or a link's target is not
    for anyone who can reach the port (the others see their counts)."""
    summary = service.assistant.index.summary
    status = {
        "documents": summary.documents,
        "chunks": summary.chunks,
        "built_at": summary.built_at,
        "model": summary.model,
        "chunker": summary.chunker,
        "skipped_count": len(summary.skipped),
    }
    admin = await check_admin(request)
    status["rebuild"] = service.state.to_dict(names=admin)
    if admin:
        status["skipped"] = summary.skipped
    return status


@api.post("/api/reindex", tags=["admin"], status_code=202, dependencies=ADMIN)
def reindex(service: ServiceDep, full: bool = False) -> dict[str, Any]:
    """Start an incremental rebuild (or `?full=true`); 409 while one runs (`DELETE /api/reindex` cancels it)."""
    return service.start_rebuild(full=full)


@api.delete("/api/reindex", tags=["admin"], status_code=202, dependencies=ADMIN)
def cancel_reindex(service: ServiceDep) -> dict[str, Any]:
    """Cancel the running rebuild (and a queued one): a file being read has its reader process killed at once, else
    it stops at its next window of text or batch of sentences, and the index it would have replaced keeps serving;
    `rebuild.last_error` then says it was cancelled. 409 when none runs."""
    return service.cancel_rebuild()


# The form is described here and read by the route itself: FastAPI reads a declared `File` parameter, the whole
# body, before it runs the route's dependencies, so an upload without the token was spooled to disk before its 401
# (issue #11: 50 held uploads, 190 MB). Read this way, the token is checked first and a refused body is never read.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": UPLOAD_HELP}},
                }
            }
        },
    }
}


@api.post("/api/documents", tags=["admin"], status_code=201, dependencies=ADMIN, openapi_extra=UPLOAD_BODY)
async def upload(request: Request, service: ServiceDep) -> dict[str, Any]:
    """Add a document to the corpus and rebuild the index in the background."""
    limit = service.assistant.settings.max_upload_bytes
    async with request.form(max_files=1, max_fields=8) as form:
        file = form.get("file")
        if not isinstance(file, StarletteUploadFile):
            raise RequestValidationError([{"loc": ("body", "file"), "msg": "Field required", "type": "missing"}])
        data = await file.read(limit + 1)
        name = file.filename or ""
    source = await run_in_threadpool(service.add_document, name, data, limit)
    return {"source": source, "rebuild": service.state.to_dict()}


@api.delete("/api/documents/{source:path}", tags=["admin"], status_code=202, dependencies=ADMIN)
def remove(source: str, service: ServiceDep) -> dict[str, Any]:
    """Delete a document (or a skipped file) from the corpus and rebuild the index in the background; it is
    not cited once `rebuild.running` is false again (GET /api/index). 404 for a source the index does not
    know, 400 for a path that is not a plain corpus path (`..`)."""
    return {"source": source, "rebuild": service.remove_document(source)}


async def rag_error(request: Request, exc: errors.RagError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 503)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.Busy) else None
    return JSONResponse(error_body(exc.code, str(exc)), status_code=status, headers=headers)


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in exc.errors()[:5]
    ]
    return JSONResponse(error_body("invalid_request", "; ".join(parts)), status_code=422)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 408: "body_timeout", 413: "too_large"}
    code = codes.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def crash(request: Request, exc: Exception) -> JSONResponse:
    # Starlette answers a crash outside every middleware, so the security headers are set here too.
    body = error_body("internal", "internal error; the server log has the details")
    return JSONResponse(body, 500, headers=SECURITY_HEADERS)


ERROR_HANDLERS: dict[type[Exception], Callable[..., Awaitable[JSONResponse]]] = {
    errors.RagError: rag_error,
    RequestValidationError: invalid,
    HTTPException: http_error,
    Exception: crash,
}
