"""POST /api/ask through TestClient: the CLI's JSON, the one error shape, follow-up questions."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from click.testing import CliRunner

from rag import cli, pipeline
from rag.config import Settings
from rag.embedding import Encoder

from .server_support import ACCORD, OFF_TOPIC, QUESTION, RESPONSE_KEYS, Served, assert_error

# ---------------------------------------------------------------------------------------------------------------
# POST /api/ask: the CLI's JSON


def test_api_ask_returns_exactly_the_response_keys(plain: Served) -> None:
    body = plain.ask(QUESTION)
    assert set(body) | {"note"} == RESPONSE_KEYS  # "note" is new: tolerated missing until rag.answer has it
    assert body["question"] == QUESTION
    assert body["abstained"] is False and body["context"] is None
    assert "1992" in body["answer"]["text"]
    assert body["citations"] and all(c["n"] == i + 1 for i, c in enumerate(body["citations"]))


@pytest.mark.parametrize(
    "question,top_k", [(QUESTION, None), (ACCORD, 3), (OFF_TOPIC, None)], ids=["answered", "top-k", "abstains"]
)
def test_api_ask_equals_the_python_api(plain: Served, question: str, top_k: int | None) -> None:
    body = plain.ask(question, top_k=top_k)
    expected = plain.assistant.ask(question, top_k=top_k).to_dict()
    assert body == json.loads(json.dumps(expected))


@pytest.mark.parametrize(
    "question,top_k", [(QUESTION, None), (ACCORD, 3), (OFF_TOPIC, None)], ids=["answered", "top-k", "abstains"]
)
def test_api_ask_equals_rag_ask_json(
    plain: Served, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, question: str, top_k: int | None
) -> None:
    monkeypatch.setattr(pipeline, "Encoder", lambda *args, **kwargs: encoder)  # the same model, loaded once
    settings = plain.assistant.settings
    args = ["--corpus", str(settings.corpus), "--index", str(settings.index), "ask", question, "--json"]
    args += [] if top_k is None else ["--top-k", str(top_k)]
    no_env = {f"RAG_{f.name.upper()}": None for f in dataclasses.fields(Settings)}
    result = CliRunner().invoke(cli.main, args, env=no_env)
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)
    assert from_cli == plain.ask(question, top_k=top_k)
    assert set(from_cli) | {"note"} == RESPONSE_KEYS


@pytest.mark.parametrize(
    "question",
    [QUESTION, ACCORD, OFF_TOPIC, "What did Japan do after Chernobyl?", "Who met Minister Kuleba in New York?"],
)
def test_every_quoted_text_is_the_corpus_text_at_its_offsets(plain: Served, question: str) -> None:
    body = plain.ask(question, top_k=10)
    assert len(body["citations"]) == 10
    for c in body["citations"]:
        text = plain.assistant.document_text(c["source"])
        assert text[c["start"] : c["end"]] == c["text"]
        assert c["start"] <= c["highlight"]["start"] < c["highlight"]["end"] <= c["end"]
    if body["answer"]:
        a = body["answer"]
        assert plain.assistant.document_text(a["source"])[a["start"] : a["end"]] == a["text"]
        cited = body["citations"][a["citation"] - 1]
        assert cited["source"] == a["source"] and cited["start"] <= a["start"] < a["end"] <= cited["end"]


# ---------------------------------------------------------------------------------------------------------------
# Errors: one JSON shape, a 4xx status, never a 500


BAD_BODIES = [
    pytest.param({"question": ""}, id="empty"),
    pytest.param({"question": " \n\t "}, id="whitespace"),
    pytest.param({"question": "x" * 2001}, id="2001-chars"),
    pytest.param({"question": "x" * 100_000}, id="100kB"),
    pytest.param({"question": "x" * 300_000}, id="300kB-over-the-body-limit"),
    pytest.param({"question": "what\x00is this"}, id="nul"),
    pytest.param({"question": "bell\x07"}, id="control-char"),
    pytest.param({"question": QUESTION, "top_k": 0}, id="top_k-0"),
    pytest.param({"question": QUESTION, "top_k": -1}, id="top_k-negative"),
    pytest.param({"question": QUESTION, "top_k": 51}, id="top_k-51"),
    pytest.param({"question": QUESTION, "top_k": 10**9}, id="top_k-huge"),
    pytest.param({"question": QUESTION, "top_k": "abc"}, id="top_k-text"),
    pytest.param({"question": QUESTION, "top_k": 2.5}, id="top_k-fraction"),
    pytest.param({"question": QUESTION, "top_k": True}, id="top_k-true"),  # was coerced to 1 (fixed: StrictInt)
    pytest.param({"question": QUESTION, "top_k": "5"}, id="top_k-numeric-string"),
    pytest.param({"question": QUESTION, "top_k": 2.0}, id="top_k-float"),
    pytest.param({}, id="missing-question"),
    pytest.param({"top_k": 3}, id="only-top_k"),
    pytest.param({"question": None}, id="null-question"),
    pytest.param({"question": 42}, id="number-question"),
    pytest.param({"question": ["a list"]}, id="list-question"),
    pytest.param({"question": QUESTION, "history": "not a list"}, id="history-string"),
    pytest.param({"question": QUESTION, "history": {"a": 1}}, id="history-object"),
    pytest.param({"question": QUESTION, "history": [1, 2]}, id="history-numbers"),
    pytest.param({"question": QUESTION, "history": [""]}, id="history-empty-question"),
    pytest.param({"question": QUESTION, "history": ["bad\x00"]}, id="history-nul"),
    pytest.param([QUESTION], id="body-is-a-list"),
    pytest.param(QUESTION, id="body-is-a-string"),
    pytest.param(None, id="body-is-null"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_ask_bodies_get_a_4xx_json_error(plain: Served, body: Any) -> None:
    assert_error(plain.client.post("/api/ask", json=body))


@pytest.mark.parametrize("body", ["", " ", "x" * 2001, "a\x00b"], ids=["empty", "space", "long", "nul"])
def test_a_bad_question_is_a_400_bad_question(plain: Served, body: str) -> None:
    error = assert_error(plain.client.post("/api/ask", json={"question": body}), {400})
    assert error["code"] == "bad_question"


def test_the_body_limit_is_a_413_before_the_route(plain: Served) -> None:
    error = assert_error(plain.client.post("/api/ask", json={"question": "x" * 300_000}), {413})
    assert error["code"] == "too_large"


@pytest.mark.parametrize(
    "content,content_type",
    [
        (b'{"question": "When', "application/json"),
        (b"{'question': 'hi'}", "application/json"),
        (b"question=hi", "text/plain"),
        (json.dumps({"question": QUESTION}).encode(), "text/plain"),
        (b"\xff\xfe\xfd", "application/json"),
        (b"", "application/json"),
        (b'{"question": "When did \\ud800 it open?"}', "application/json"),
        (b'{"question": "When did it open?", "history": ["\\udfff"]}', "application/json"),
        (b'{"question": "hi", "question": "x' + b"x" * 2001 + b'"}', "application/json"),
    ],
    ids=[
        "truncated-json",
        "single-quotes",
        "text-plain-form",
        "text-plain-json",
        "not-utf8",
        "empty-body",
        "lone-surrogate",
        "lone-surrogate-in-history",
        "duplicate-key-last-wins",
    ],
)
def test_malformed_bodies_get_a_4xx_json_error(plain: Served, content: bytes, content_type: str) -> None:
    assert_error(plain.client.post("/api/ask", content=content, headers={"content-type": content_type}))


def test_a_chunked_body_without_length_is_refused(plain: Served) -> None:
    r = plain.client.post(
        "/api/ask", content=iter([b'{"question": "hi"}']), headers={"content-type": "application/json"}
    )
    assert_error(r, {411})


def test_get_on_api_ask_is_405_with_the_error_shape(plain: Served) -> None:
    assert assert_error(plain.client.get("/api/ask"), {405})["code"] == "method_not_allowed"


def test_an_unknown_api_route_is_404_with_the_error_shape(plain: Served) -> None:
    assert assert_error(plain.client.get("/api/nothing-here"), {404})["code"] == "not_found"


# ---------------------------------------------------------------------------------------------------------------
# Follow-up questions


def test_a_follow_up_is_read_with_the_earlier_question(plain: Served) -> None:
    first = plain.ask(ACCORD)
    assert first["context"] is None
    assert first["answer"] and "Accord on Support for Ukraine" in first["answer"]["text"]
    second = plain.ask("When was it signed?", history=[ACCORD])
    assert second["question"] == "When was it signed?"
    assert second["context"] == ACCORD
    assert set(second) | {"note"} == RESPONSE_KEYS


def test_the_follow_up_uses_the_last_question_of_the_history(plain: Served) -> None:
    second = plain.ask("When was it signed?", history=[OFF_TOPIC, ACCORD])
    assert second["context"] == ACCORD


def test_an_off_topic_question_abstains(plain: Served) -> None:
    body = plain.ask(OFF_TOPIC)
    assert body["abstained"] is True and body["answer"] is None and body["context"] is None
    assert body["confidence"] < plain.assistant.settings.min_confidence
    assert body["citations"]  # the closest passages are still shown


def test_an_off_topic_question_in_a_conversation_still_abstains(plain: Served) -> None:
    """A change of subject is not answered with the earlier topic (it was, when the combined reading won)."""
    body = plain.ask(OFF_TOPIC, history=[QUESTION])
    assert body["abstained"] is True and body["answer"] is None and body["context"] is None


def test_a_self_contained_question_ignores_the_history(plain: Served) -> None:
    body = plain.ask(QUESTION, history=["What did Japan do after the Chernobyl disaster?"])
    assert body["context"] is None
    assert body == plain.ask(QUESTION)
