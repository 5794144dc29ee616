"""`GET /metrics` and the `rag.access` log (rag/server/metrics.py), through FastAPI's TestClient over a small corpus.

The app is shared by the module, so every test compares the metrics before and after what it does.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rag import indexing
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server import metrics
from rag.server.api import create_app

from .helpers import SMALL_DOCS, assistant_over_small_docs

ANSWERED = "When did the first Shinkansen line open?"
OFF_TOPIC = "How do I bake sourdough bread at home?"
ASK = "/api/ask"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Assistant:
    return assistant_over_small_docs(tmp_path_factory.mktemp("metrics"), encoder)


@pytest.fixture(scope="module")
def app(small: Assistant) -> FastAPI:
    return create_app(small)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = text_string_to_metric_families(r.text)
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def questions(samples: Samples) -> float:
    return sum(value(samples, "rag_questions_total", outcome=o) for o in ("answered", "abstained"))


def test_metrics_parse_and_name_requests_answers_index_rebuilds_and_the_process(client: TestClient) -> None:
    assert client.get("/api/ping").status_code == 200
    names = {name for name, _ in scrape(client)}
    assert {
        "rag_http_requests_total",
        "rag_http_request_duration_seconds_bucket",
        "rag_questions_total",
        "rag_index_documents",
        "rag_index_chunks",
        "rag_rebuilds_total",
        "rag_rebuild_duration_seconds_count",
        "rag_rebuild_running",
        "process_resident_memory_bytes",
        "python_info",
    } <= names


def test_n_asks_count_n_requests_and_n_questions(client: TestClient) -> None:
    before = scrape(client)
    asked = [ANSWERED, OFF_TOPIC, ANSWERED]  # the repeat comes from the response cache: still a question answered
    replies = [client.post(ASK, json={"question": q}).json() for q in asked]
    after = scrape(client)
    assert grew(before, after, "rag_http_requests_total", route=ASK, method="POST", status="200") == 3
    assert grew(before, after, "rag_http_request_duration_seconds_count", route=ASK) == 3
    assert questions(after) - questions(before) == 3
    abstained = sum(r["abstained"] for r in replies)
    assert grew(before, after, "rag_questions_total", outcome="abstained") == abstained
    assert grew(before, after, "rag_questions_total", outcome="answered") == 3 - abstained


def test_the_pages_count_one_question_a_request_and_a_refused_one_none(client: TestClient) -> None:
    before = scrape(client)
    assert client.post("/turn", data={"q": ANSWERED, "n": "1"}).status_code == 200
    # The chat without JavaScript answers its history again: still one question asked.
    assert client.post("/", data={"q": "When did it open?", "history": [ANSWERED, OFF_TOPIC]}).status_code == 200
    assert client.post(ASK, json={"question": "  "}).status_code == 400
    after = scrape(client)
    assert questions(after) - questions(before) == 2
    assert grew(before, after, "rag_http_requests_total", route=ASK, method="POST", status="400") == 1


def test_routes_are_counted_by_template_never_by_raw_path(client: TestClient) -> None:
    before = scrape(client)
    assert client.get("/api/documents/no/such-file.txt").status_code == 404
    assert client.get("/no-such-page").status_code == 404
    assert client.request("BREW", "/api/ping").status_code == 405
    after = scrape(client)
    template = "/api/documents/{source:path}"
    assert grew(before, after, "rag_http_requests_total", route=template, method="GET", status="404") == 1
    assert grew(before, after, "rag_http_requests_total", route="other", method="GET", status="404") == 1
    assert grew(before, after, "rag_http_requests_total", route="/api/ping", method="other", status="405") == 1
    labels = {v for _, label_set in after for _, v in label_set}
    assert not any("such" in v or v == "BREW" for v in labels)


def test_a_crash_and_a_refused_body_are_counted(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.state.service
    before = scrape(client)
    with monkeypatch.context() as patch:
        patch.setattr(service, "original_file", lambda source: 1 / 0)
        assert client.get("/files/tea.txt").status_code == 500
    assert client.post(ASK, content=b"x" * 300_000, headers={"content-type": "application/json"}).status_code == 413
    after = scrape(client)
    assert grew(before, after, "rag_http_requests_total", route="/files/{source:path}", method="GET", status="500") == 1
    assert grew(before, after, "rag_http_requests_total", route="other", method="POST", status="413") == 1


def test_the_index_gauges_are_the_index(client: TestClient, small: Assistant) -> None:
    samples = scrape(client)
    assert value(samples, "rag_index_documents") == len(small.index.documents) == len(SMALL_DOCS)
    assert value(samples, "rag_index_chunks") == len(small.index.chunks) > 0


def test_rebuilds_are_counted_by_outcome_and_timed(
    app: FastAPI, client: TestClient, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = app.state.service
    monkeypatch.setattr(service.rebuilder, "encoder", lambda: encoder)  # no second model load
    before = scrape(client)
    service.start_rebuild()
    service.wait(60)
    with monkeypatch.context() as patch:
        patch.setattr(indexing, "build", lambda *args, **kwargs: 1 / 0)
        service.start_rebuild()
        service.wait(60)
    after = scrape(client)
    assert service.state.last_error and service.state.runs >= 2
    assert grew(before, after, "rag_rebuilds_total", outcome="ok") == 1
    assert grew(before, after, "rag_rebuilds_total", outcome="error") == 1
    assert grew(before, after, "rag_rebuild_duration_seconds_count") == 2
    assert 0 <= grew(before, after, "rag_rebuild_duration_seconds_sum") < 60
    assert value(after, "rag_rebuild_running") == 0


def test_metrics_are_public_even_with_admin_on_and_documented_under_status(small: Assistant) -> None:
    admin_on = Assistant(dataclasses.replace(small.settings, admin_token="s3cret"), small.index, small.encoder)
    with TestClient(create_app(admin_on)) as client:
        assert client.post("/api/reindex").status_code == 401  # admin routes want the token; /metrics not
        assert value(scrape(client), "rag_index_documents") == len(SMALL_DOCS)
        assert client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["tags"] == ["status"]


def test_apps_over_one_assistant_count_apart_and_observe_it_once(client: TestClient, small: Assistant) -> None:
    with TestClient(create_app(small)) as other:
        before, other_before = scrape(client), scrape(other)
        assert other.post(ASK, json={"question": ANSWERED}).status_code == 200
        assert questions(scrape(other)) - questions(other_before) == 1
    assert questions(scrape(client)) == questions(before)
    assert small.observers.count(metrics.seen_by_request) == 1


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "rag.access"]


def test_one_json_log_line_a_request_without_the_question(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rag.access"):
        assert client.post(ASK, json={"question": ANSWERED + " Zebra?"}).status_code == 200
        assert client.get("/api/ping").status_code == 200
    ask, ping = access_lines(caplog)
    assert set(ask) == {"time", "method", "route", "status", "duration_ms", "client", "abstained", "confidence"}
    assert (ask["method"], ask["route"], ask["status"], ask["client"]) == ("POST", ASK, 200, "testclient")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ask["time"]) and ask["duration_ms"] > 0
    assert isinstance(ask["abstained"], bool) and 0 <= ask["confidence"] <= 1
    assert set(ping) == {"time", "method", "route", "status", "duration_ms", "client"}
    assert not any("Zebra" in r.getMessage() or "Shinkansen" in r.getMessage() for r in caplog.records)


def test_log_requests_writes_the_lines_to_its_stream(client: TestClient) -> None:
    stream = io.StringIO()
    level, propagate = metrics.ACCESS.level, metrics.ACCESS.propagate
    handler = metrics.log_requests(stream)
    try:
        client.get("/api/documents/tea.txt")
    finally:
        metrics.ACCESS.removeHandler(handler)
        metrics.ACCESS.setLevel(level)
        metrics.ACCESS.propagate = propagate
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["route"] == "/api/documents/{source:path}" and "tea.txt" not in line


def test_nothing_is_logged_unless_asked_for(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.get("/api/ping")
    assert not metrics.ACCESS.handlers and "duration_ms" not in capsys.readouterr().err
