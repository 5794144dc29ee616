"""Edge: what a running server tells its operators: Prometheus metrics at `GET /metrics` and one JSON line a
request on the `rag.access` logger.

Why prometheus-client (Apache-2.0, its vendored decorator.py BSD-2-Clause): Prometheus's own Python client, so the
text format is the reference one; its counters and histograms are thread-safe, a `CollectorRegistry` per app keeps
apps apart (tests make many in one process), and its process, platform and GC collectors come free. Index size is
read when scraped; requests are counted by a pure ASGI middleware by route template (never the raw URL: few series);
answers once a request, from the last response its route got from `Assistant.ask` (an observer of it); rebuilds
as each run ends.

The access log holds no question text, query string or raw path (a question is the user's data): only the method,
route template, status, duration, client address and, for an answer, whether it abstained and its confidence.
`/metrics` counts its own scrapes, like any route.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import prometheus_client as prom
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .rebuilder import RebuildState
from .service import Service

if TYPE_CHECKING:
    from ..answer import Response

ACCESS = logging.getLogger("rag.access")
# Seconds. README "Performance": `ask` takes 2.65 ms in-process (8.6 ms at 1M chunks), /api/ask over HTTP 5.3 ms
# at p50 with 1 client and 355 ms at p99 with 32, /api/ping about 1 ms (884 req/s): 1 ms to 2.5 s in 1-2.5-5 steps.
HTTP = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Seconds. README "Performance": an incremental rebuild under load 0.75 s, one document added to 10,000 4.7 s, a
# full build of 1,000 documents about 18 s, of 1M chunks 511 s: 0.5 s to 30 min.
REBUILD = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})  # any other: "other"


@dataclass(slots=True)
class Seen:
    """What the request in flight learned: the last response its route got from `Assistant.ask`."""

    response: Response | None = None


SEEN: ContextVar[Seen | None] = ContextVar("rag_metrics_seen", default=None)


class Metrics:
    """The metrics of one app, on its own registry."""

    def __init__(self, service: Service) -> None:
        self.registry = registry = prom.CollectorRegistry()
        for collector in (prom.ProcessCollector, prom.PlatformCollector, prom.GCCollector):
            collector(registry=registry)
        registry.register(Scraped(service))
        count, histogram = partial(prom.Counter, registry=registry), partial(prom.Histogram, registry=registry)
        self.requests = count("rag_http_requests", "HTTP requests by route template", ["route", "method", "status"])
        self.latency = histogram("rag_http_request_duration_seconds", "Request time by route", ["route"], buckets=HTTP)
        self.questions = count("rag_questions", "Questions answered (counted once a request)", ["outcome"])
        self.answered, self.abstained = self.questions.labels("answered"), self.questions.labels("abstained")
        self.rebuilds = count("rag_rebuilds", "Background rebuild runs finished", ["outcome"])
        self.rebuilds.labels("ok"), self.rebuilds.labels("error")  # both series from the start, at 0
        self.rebuild_seconds = histogram("rag_rebuild_duration_seconds", "Wall time of a rebuild run", buckets=REBUILD)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labels() once a series, not a request

    def record(self, scope: Scope, status: int, seconds: float, response: Response | None) -> None:
        """Count one finished request (on the event loop's thread) and log it."""
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(*key), self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)
        if response is not None and status < 400:  # a 4xx/5xx reply answered nothing (POST / on a bad question)
            (self.abstained if response.abstained else self.answered).inc()
        if ACCESS.isEnabledFor(logging.INFO):
            ACCESS.info(access_line(scope, route, method, status, seconds, response))

    def rebuilt(self, state: RebuildState) -> None:
        """Count one finished rebuild run (called by the service, its state lock held)."""
        self.rebuilds.labels("error" if state.last_error else "ok").inc()
        started, finished = state.started_at, state.last_finished_at
        if started is not None and finished is not None:
            self.rebuild_seconds.observe(max(0.0, finished - started))


class Scraped(Collector):
    """Gauges read at scrape time: the size of the index serving answers, whether a rebuild runs."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterable[Metric]:
        index = self.service.assistant.index
        yield GaugeMetricFamily("rag_index_documents", "Documents in the index serving answers", len(index.documents))
        yield GaugeMetricFamily("rag_index_chunks", "Chunks (passages) in the index serving answers", index.chunk_count)
        yield GaugeMetricFamily("rag_rebuild_running", "1 while a rebuild runs", int(self.service.state.running))


class Watch:
    """Pure ASGI middleware: times every HTTP request and hands it to `Metrics.record`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, seen, status = time.perf_counter(), Seen(), [500]  # until a response starts: an exception is a 500

        async def send_seen(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        token = SEEN.set(seen)
        try:
            await self.app(scope, receive, send_seen)
        finally:
            SEEN.reset(token)
            self.metrics.record(scope, status[0], time.perf_counter() - started, seen.response)


def route_template(scope: Scope) -> str:
    """The path of the route that handled the request (`/api/documents/{source:path}`), or "other"."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "other"


def access_line(scope: Scope, route: str, method: str, status: int, seconds: float, response: Response | None) -> str:
    """The request as one line of JSON; never the question, the query string or the raw path."""
    t = time.time() - seconds
    line: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",  # UTC, to the ms
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),  # to the µs
        "client": (scope.get("client") or ("", 0))[0],
    }
    if response is not None:
        line |= {"abstained": response.abstained, "confidence": round(response.confidence, 4)}  # as in its JSON
    return json.dumps(line)


def seen_by_request(response: Response) -> None:
    """An `Assistant` observer: tells the request in flight (if any) what `ask` answered it."""
    seen = SEEN.get()
    if seen is not None:
        seen.response = response


def install(app: FastAPI, service: Service) -> None:
    """Count requests, answers and rebuilds of `app` and serve them at `GET /metrics` (public, like /api/health)."""
    metrics = Metrics(service)
    app.state.metrics = metrics
    if seen_by_request not in service.assistant.observers:  # once, however many apps serve this assistant
        service.assistant.observers.append(seen_by_request)
    service.rebuilder.observers.append(metrics.rebuilt)
    app.add_middleware(Watch, metrics=metrics)  # type: ignore[arg-type]

    @app.get("/metrics", tags=["status"], response_class=PlainTextResponse)
    def scrape() -> PlainTextResponse:
        """Prometheus metrics in its text format: requests, answers, index size, rebuilds, the process."""
        return PlainTextResponse(prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST)


def log_requests(stream: TextIO | None = None) -> logging.Handler:
    """Write the `rag.access` lines (one a request) and the `rag.rebuild` lines (one a background rebuild) to
    `stream` (stderr): what `rag serve` calls; other callers stay silent."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for logger in (ACCESS, logging.getLogger("rag.rebuild")):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the line goes to this handler only, never twice through the root logger
    return handler
