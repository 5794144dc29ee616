"""Fuzzing: the app against its own OpenAPI schema (schemathesis), and hypothesis on the request validators, on
arbitrary JSON and form posts, and on chunking with extreme settings.

The app serves a private copy of the bundled corpus with the real model; its index is a copy of the one conftest's
session `assistant` built, so nothing is embedded here. It has no admin token: the admin routes must answer 403,
never 500, whatever schemathesis sends them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from rag import indexing
from rag.embedding import Encoder
from rag.errors import RagError
from rag.pipeline import MAX_QUESTION_CHARS, MAX_TOP_K, Assistant, check_history, check_question, check_top_k
from rag.server.api import create_app
from rag.text.chunking import make_chunks, split_sentences

from .helpers import ROOT

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
ADMIN_OPERATIONS = {("POST", "/api/reindex"), ("POST", "/api/documents")}
KNOWN_OPERATIONS = {
    ("POST", "/api/ask"),
    ("GET", "/api/ping"),
    ("GET", "/api/health"),
    ("GET", "/api/documents"),
    ("GET", "/api/index"),
    *ADMIN_OPERATIONS,
}
RESPONSE_KEYS = {"question", "abstained", "confidence", "answer", "citations", "context", "note"}

# Any character, lone surrogates included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
PLAIN_QUESTIONS = st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs")), min_size=1, max_size=120)
QUESTIONS = st.one_of(
    PLAIN_QUESTIONS,
    ANY_TEXT,
    st.text(max_size=60),
    st.sampled_from(["When did Japan establish diplomatic relations with Ukraine?", "What is the Accord?", " "]),
    st.text(st.characters(exclude_categories=()), min_size=MAX_QUESTION_CHARS - 2, max_size=MAX_QUESTION_CHARS + 2),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: Python's JSON reader accepts them
    ANY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.recursive(
    st.one_of(SCALARS, st.binary(max_size=8), st.just(math.nan), st.just(object())),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=3),
    ),
    max_leaves=10,
)
ASK_BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"question": QUESTIONS | JSON_VALUES},
        optional={
            "top_k": st.integers(-3, MAX_TOP_K + 3) | JSON_VALUES,
            "history": st.lists(QUESTIONS, max_size=3) | JSON_VALUES,
            "extra": JSON_VALUES,
        },
    ),
    st.fixed_dictionaries(  # well-formed, so that many requests reach the model
        {"question": PLAIN_QUESTIONS},
        optional={"top_k": st.integers(1, MAX_TOP_K) | st.none(), "history": st.lists(PLAIN_QUESTIONS, max_size=3)},
    ),
)

# ---------------------------------------------------------------------------------------------------------------
# The app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant, encoder: Encoder) -> FastAPI:
    """The bundled corpus and its session index, copied; no admin token."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(assistant.settings.corpus, root / "corpus")
    shutil.copytree(assistant.settings.index, root / "index")
    settings = dataclasses.replace(assistant.settings, corpus=root / "corpus", index=root / "index", admin_token="")
    index, report = indexing.build(settings, encoder, progress=False)
    assert report.chunks_embedded == 0
    return create_app(Assistant(settings, index, encoder))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)  # a crash shows up as a 500 response, not a raise


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What no error body may contain: traceback markers, the repository's path, the tests' temporary folder."""
    return ["Traceback", 'File "', "/work/", str(ROOT), str(tmp_path_factory.getbasetemp())]


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    """The app's own OpenAPI schema, loaded in-process; schemathesis calls the app through ASGI."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def check_answer(status: int, content_type: str, text: str, private: list[str]) -> None:
    """Never a 5xx; an error in JSON has the one error shape; no error says where the code lives."""
    assert status < 500, (status, text[:500])
    if status >= 400:
        for marker in private:
            assert marker not in text, (marker, text[:500])
        if content_type.startswith("application/json"):
            body = json.loads(text)
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


# ---------------------------------------------------------------------------------------------------------------
# schemathesis: every operation of the OpenAPI schema, valid and invalid data


def fuzz_operation(operation: Any, mode: GenerationMode, private: list[str]) -> Callable[[], None]:
    """A Hypothesis test that sends `operation` requests generated by schemathesis (valid or invalid ones)."""
    admin = (operation.method.upper(), operation.path) in ADMIN_OPERATIONS
    # Without the token a valid request is refused (403); an invalid one may fail to parse first.
    allowed = (403,) if mode is GenerationMode.POSITIVE else (400, 403, 413, 422)

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        response = case.call()
        event(f"status {response.status_code}")
        content_type = response.headers.get("content-type", [""])[0]
        check_answer(response.status_code, content_type, response.text, private)
        if admin:
            assert response.status_code in allowed, (response.status_code, response.text[:300])

    return call


# `@schema.parametrize()` with `schemathesis.pytest.from_fixture` fails on pytest 9.2 (schemathesis 4.32 sets
# `request.node._nodeid`, which pytest no longer has), so each operation's strategy drives a Hypothesis test here.
@pytest.mark.slow
def test_no_operation_of_the_schema_gives_a_server_error(api_schema: Any, private: list[str]) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= KNOWN_OPERATIONS
    failures = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz_operation(operation, mode, private)()
            except Unsatisfiable:  # no invalid request exists for an operation without parameters or body
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no valid request could be generated")
            except Exception as exc:  # every operation is tried; all failures are reported together
                failures.append(f"{mode.value} {operation.label}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


# ---------------------------------------------------------------------------------------------------------------
# The validators: a valid value or a RagError, never another exception


@PROPERTY
@given(st.one_of(OBJECTS, ANY_TEXT, QUESTIONS))
@example("\ud800")
@example("\x00")
@example("x" * (MAX_QUESTION_CHARS + 1))
@example(" \u3000 ")
def test_check_question_returns_clean_text_or_raises_rag_error(value: Any) -> None:
    try:
        question = check_question(value)
    except RagError:
        return
    assert isinstance(question, str) and question == question.strip()
    assert 1 <= len(question) <= MAX_QUESTION_CHARS
    question.encode("utf-8")  # no lone surrogate got through


@PROPERTY
@given(st.one_of(OBJECTS, st.integers(), st.integers(-2, MAX_TOP_K + 2), st.floats()))
@example(True)
@example(2**63)
@example(10**4000)
def test_check_top_k_returns_an_int_in_range_or_raises_rag_error(value: Any) -> None:
    try:
        top_k = check_top_k(value)
    except RagError:
        return
    assert type(top_k) is int and 1 <= top_k <= MAX_TOP_K


def test_check_top_k_of_a_huge_int_raises_rag_error() -> None:
    with pytest.raises(RagError):
        check_top_k(10**5000)


@PROPERTY
@given(st.one_of(OBJECTS, st.lists(QUESTIONS, max_size=12), st.tuples(QUESTIONS, QUESTIONS), ANY_TEXT))
@example(b"bytes are a sequence")
@example(range(3))
@example(["fine", "\ud800"])
def test_check_history_returns_questions_or_raises_rag_error(value: Any) -> None:
    try:
        history = check_history(value)
    except RagError:
        return
    assert isinstance(history, list)
    for question in history:
        assert check_question(question) == question


# ---------------------------------------------------------------------------------------------------------------
# The HTTP edge with arbitrary input


@pytest.mark.slow
@settings(FUZZ, max_examples=60)
@given(ASK_BODIES)
def test_api_ask_with_any_json_body_never_gives_a_server_error(
    app: FastAPI, client: TestClient, private: list[str], body: Any
) -> None:
    r = client.post("/api/ask", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    event(f"status {r.status_code}")
    check_answer(r.status_code, r.headers["content-type"], r.text, private)
    if r.status_code == 200:
        response = r.json()
        assert set(response) == RESPONSE_KEYS
        assert response["question"] == body["question"].strip()
        chunks = len(app.state.service.assistant.index.chunks)
        wanted = min(body.get("top_k") or 5, chunks)
        if response["note"] is None:
            assert len(response["citations"]) == wanted
        else:  # a question the model cannot read cites only passages sharing a name or number with it
            assert len(response["citations"]) <= wanted and response["answer"] is None


def form(fields: list[tuple[str, str]]) -> bytes:
    """URL-encoded form fields; lone surrogates are sent as the (invalid UTF-8) bytes they would have."""
    return b"&".join(
        quote_from_bytes(k.encode()).encode() + b"=" + quote_from_bytes(v.encode("utf-8", "surrogatepass")).encode()
        for k, v in fields
    )


@pytest.mark.slow
@FUZZ
@given(
    path=st.sampled_from(["/", "/turn"]),
    question=QUESTIONS | PLAIN_QUESTIONS,
    n=st.one_of(st.none(), st.integers().map(str), ANY_TEXT),
    history=st.lists(PLAIN_QUESTIONS | QUESTIONS, max_size=3),
)
def test_form_posts_with_any_text_never_give_a_server_error(
    client: TestClient, private: list[str], path: str, question: str, n: str | None, history: list[str]
) -> None:
    fields = [("q", question), *(("history", h) for h in history), *([("n", n)] if n is not None else [])]
    r = client.post(path, content=form(fields), headers={"content-type": "application/x-www-form-urlencoded"})
    event(f"status {r.status_code}")
    check_answer(r.status_code, r.headers["content-type"], r.text, private)
    assert r.status_code in (200, 400, 422), r.status_code


# ---------------------------------------------------------------------------------------------------------------
# Chunking at the extremes of its settings (tests/test_chunking.py covers 10-40 words and overlaps of 0-3)

LONG_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=500, max_size=5000)
PIECES = st.sampled_from(
    ["Word", "and", "Nov.", "1,214.5", "日本", "😀", ".", "?", " ", "\r\n", "\r\n\r\n", "\n", "\t"]
)
CHUNK_TEXTS = st.one_of(
    st.text(max_size=400),  # any Unicode without surrogates
    st.lists(st.one_of(PIECES, st.text(max_size=6), LONG_TOKEN), max_size=120).map(" ".join),
    st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=200).map("".join),
)
# `chunk_words` below 10 is refused by the settings (tests/test_config.py), but the chunker itself works from 1 word.
CHUNK_WORDS = st.one_of(st.integers(1, 12), st.integers(40, 10_000), st.just(10**6))
WORD = re.compile(r"\S+")


@PROPERTY
@given(CHUNK_TEXTS, CHUNK_WORDS, st.integers(0, 5))
@example("A" * 100_000, 10, 5)
@example("one two three four five six seven eight nine ten eleven " * 50, 10, 5)
@example("Line one.\r\n\r\nLine two.\r\nline three.\r\n", 1, 0)
def test_chunk_offsets_are_exact_at_extreme_settings(text: str, chunk_words: int, overlap: int) -> None:
    sentences = split_sentences(text, max_words=chunk_words)
    chunks = make_chunks("doc.txt", text, chunk_words=chunk_words, overlap=overlap)
    assert bool(chunks) == bool(sentences)
    covered = set()
    for position, chunk in enumerate(chunks):
        assert chunk.id == f"doc.txt#{position}"
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == chunk.text == chunk.text.strip()
        first = chunk.first_sentence
        assert list(chunk.sentences) == sentences[first : first + len(chunk.sentences)]
        assert (chunk.start, chunk.end) == (chunk.sentences[0][0], chunk.sentences[-1][1])
        assert sum(len(WORD.findall(text, a, b)) for a, b in chunk.sentences) <= chunk_words
        covered.update(range(first, first + len(chunk.sentences)))
    assert covered == set(range(len(sentences)))  # no sentence is lost, whatever the overlap
    starts = [c.first_sentence for c in chunks]
    assert starts == sorted(set(starts))  # every chunk moves on: no repeat, no endless loop


def test_one_enormous_token_is_no_word_and_makes_no_chunk() -> None:
    # 300,000 letters without a space are no word a question could name (a blob, a minified line).
    text = "\r\n  " + "z" * 300_000 + "  \r\n"
    assert make_chunks("big.txt", text, chunk_words=10, overlap=5) == []


def test_one_enormous_word_of_a_script_without_spaces_is_cut_with_exact_offsets() -> None:
    text = "\r\n  " + "語" * 3_000 + "  \r\n"
    chunks = make_chunks("big.txt", text, chunk_words=10, overlap=0)
    assert [(a, b) for c in chunks for a, b in c.sentences] == [(4, 1004), (1004, 2004), (2004, 3004)]
