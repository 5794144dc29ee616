"""The Python API: checking input, clamping top_k, opening, refreshing and re-indexing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import pipeline
from rag.config import Settings
from rag.embedding import Encoder
from rag.errors import BadQuestion, BadRequest, CorpusError, IndexOutdated
from rag.pipeline import MAX_QUESTION_CHARS, Assistant, check_question, check_top_k

from .helpers import assistant_over_small_docs, write_corpus

pytestmark = pytest.mark.slow  # the real model


@pytest.fixture(scope="module")
def small_assistant(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Assistant:
    """An assistant over the three short documents of conftest, built once for this module."""
    return assistant_over_small_docs(tmp_path_factory.mktemp("small"), encoder)


@pytest.fixture
def shared_encoder(monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> Encoder:
    """Make `Assistant.open` use the session's encoder instead of loading the model again."""
    monkeypatch.setattr(pipeline, "Encoder", lambda *args, **kwargs: encoder)
    return encoder


@pytest.mark.parametrize(
    "question",
    [
        "",
        "   ",
        "\n\t \r\n",
        "x" * (MAX_QUESTION_CHARS + 1),
        "what\x00is this",
        "bell\x07",
        "colour \x1b[31m red",
        "delete\x7f",
    ],
    ids=["empty", "spaces", "whitespace", "too-long", "nul", "bell", "escape", "del"],
)
def test_bad_questions_raise_bad_question(assistant: Assistant, question: str) -> None:
    with pytest.raises(BadQuestion):
        assistant.ask(question)


@pytest.mark.parametrize("question", [None, 42, b"bytes", ["a list"]])
def test_a_question_that_is_not_text_raises_bad_question(question: object) -> None:
    with pytest.raises(BadQuestion, match="text"):
        check_question(question)


def test_check_question_strips_and_keeps_tabs_and_newlines() -> None:
    assert check_question("  When did it open?\n") == "When did it open?"
    assert check_question("Line one\nline\ttwo") == "Line one\nline\ttwo"
    long = "a" * MAX_QUESTION_CHARS
    assert check_question(f"  {long}  ") == long  # the limit counts the stripped question


def test_the_empty_question_message_says_what_to_do() -> None:
    with pytest.raises(BadQuestion, match="empty"):
        check_question(" ")


@pytest.mark.parametrize("top_k", [0, -1, 51, "abc", "5", True, False, 2.0, None])
def test_bad_top_k_raises_bad_request(top_k: object) -> None:
    with pytest.raises(BadRequest, match="top_k"):
        check_top_k(top_k)


@pytest.mark.parametrize("top_k", [0, -1, 51, "abc", True])
def test_ask_with_bad_top_k_raises_bad_request(assistant: Assistant, top_k: object) -> None:
    with pytest.raises(BadRequest):
        assistant.ask("When did Japan establish diplomatic relations?", top_k=top_k)  # type: ignore[arg-type]


@pytest.mark.parametrize("top_k", [1, 3, 50])
def test_top_k_sets_the_number_of_citations(assistant: Assistant, top_k: int) -> None:
    response = assistant.ask("Japanese support for Ukraine", top_k=top_k)
    assert len(response.citations) == top_k


def test_top_k_above_the_number_of_chunks_is_clamped(small_assistant: Assistant) -> None:
    chunks = len(small_assistant.index.chunks)
    assert chunks < 50
    response = small_assistant.ask("When did the first Shinkansen line open?", top_k=50)
    assert len(response.citations) == chunks
    assert sorted(c.chunk_id for c in response.citations) == sorted(c.id for c in small_assistant.index.chunks)


def test_the_small_corpus_is_answered_from_its_own_documents(small_assistant: Assistant) -> None:
    response = small_assistant.ask("When did the first Shinkansen line open?")
    assert response.answer is not None
    assert response.answer.source == "trains/shinkansen.txt"
    assert "October 1964" in response.answer.text


def test_document_text_is_the_decoded_file(assistant: Assistant) -> None:
    source = assistant.index.chunks[0].source
    assert assistant.document_text(source) == (assistant.settings.corpus / source).read_text(encoding="utf-8")


def test_open_builds_a_missing_index_then_loads_it(small_corpus: Settings, shared_encoder: Encoder) -> None:
    said: list[str] = []
    first = Assistant.open(small_corpus, progress=False, say=said.append)
    assert any("building" in line for line in said)
    assert (small_corpus.index / "manifest.json").exists()
    said.clear()
    second = Assistant.open(small_corpus, progress=False, say=said.append)
    assert said == []
    assert second.index.chunks == first.index.chunks


def test_open_refreshes_a_stale_index(small_corpus: Settings, shared_encoder: Encoder) -> None:
    Assistant.open(small_corpus, progress=False, say=lambda _: None)
    write_corpus(small_corpus.corpus, {"fuji.txt": "Mount Fuji is 3,776 metres high."})
    said: list[str] = []
    stale = Assistant.open(small_corpus, refresh=False, progress=False, say=said.append)
    assert all(c.source != "fuji.txt" for c in stale.index.chunks)
    refreshed = Assistant.open(small_corpus, progress=False, say=said.append)
    assert any(c.source == "fuji.txt" for c in refreshed.index.chunks)
    assert any("changed" in line for line in said)


def test_open_reports_skipped_files(small_corpus: Settings, shared_encoder: Encoder) -> None:
    write_corpus(small_corpus.corpus, {"scan.txt": b"\x00\x01\x02"})
    said: list[str] = []
    Assistant.open(small_corpus, progress=False, say=said.append)
    assert any("scan.txt" in line and "binary" in line for line in said)


def test_open_without_corpus_or_index_raises_corpus_error(tmp_path: Path, shared_encoder: Encoder) -> None:
    settings = Settings(corpus=tmp_path / "missing", index=tmp_path / "index")
    with pytest.raises(CorpusError, match="missing"):
        Assistant.open(settings, progress=False, say=lambda _: None)


def test_open_keeps_answering_from_the_index_when_the_corpus_is_gone(
    small_corpus: Settings, shared_encoder: Encoder
) -> None:
    built = Assistant.open(small_corpus, progress=False, say=lambda _: None)
    for path in sorted(small_corpus.corpus.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    small_corpus.corpus.rmdir()
    reopened = Assistant.open(small_corpus, progress=False, say=lambda _: None)
    assert reopened.index.chunks == built.index.chunks
    assert reopened.ask("How long is the central span of the Akashi Kaikyo Bridge?").citations


def test_reindex_picks_up_a_new_document(small_corpus: Settings, shared_encoder: Encoder) -> None:
    bot = Assistant.open(small_corpus, progress=False, say=lambda _: None)
    write_corpus(small_corpus.corpus, {"fuji.txt": "Mount Fuji\n\nMount Fuji is 3,776 metres high."})
    report = bot.reindex(progress=False)
    assert report.added == ["fuji.txt"]
    response = bot.ask("How high is Mount Fuji?")
    assert response.answer is not None and "3,776" in response.answer.text
    assert bot.reindex(progress=False).chunks_embedded == 0
    assert bot.reindex(full=True, progress=False).chunks_embedded == len(bot.index.chunks)


def test_the_python_api_is_quiet_by_default_and_reports_progress_to_a_callback(
    small_corpus: Settings, shared_encoder: Encoder, capfd: pytest.CaptureFixture[str]
) -> None:
    """Issue #21: `Assistant.reindex()` drew tqdm's bars on stderr; a library call stays quiet unless asked."""
    bot = Assistant.open(small_corpus, say=lambda _: None)
    write_corpus(small_corpus.corpus, {"kobe.txt": "Kobe Port Tower\n\nThe Kobe Port Tower is 108 metres tall."})
    capfd.readouterr()
    assert bot.reindex().added == ["kobe.txt"]
    assert capfd.readouterr().err == ""
    calls: list[tuple[str, int, int]] = []
    bot.reindex(full=True, progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert capfd.readouterr().err == ""
    stages = [c[0] for c in calls]
    assert stages[0] == "reading" and "splitting" in stages and stages[-1] == "embedding"
    last = {stage: (done, total) for stage, done, total in calls}
    assert all(done == total > 0 for done, total in last.values())


def test_a_question_with_a_lone_surrogate_raises_bad_question() -> None:
    with pytest.raises(BadQuestion):
        check_question("What \ud800 is this?")


def test_an_index_made_by_another_version_is_rebuilt_where_the_corpus_is(
    small_corpus: Settings, shared_encoder: Encoder
) -> None:
    """Issue #21: after an upgrade that splits text another way, `rag ask` stopped with the two manifests printed
    as dicts; it rebuilds the index from the corpus and says why (a refresh=False caller still gets the error)."""
    Assistant.open(small_corpus, say=lambda _: None)
    path = small_corpus.index / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["chunker"]["version"] -= 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexOutdated, match=r"splits or reads text another way \(version \d+ -> \d+\)"):
        Assistant.open(small_corpus, refresh=False, say=lambda _: None)
    said: list[str] = []
    bot = Assistant.open(small_corpus, say=said.append)
    assert said[0].startswith("The index in folder") and "rebuilding it from" in said[0]
    assert bot.ask("How long is the central span of the Akashi Kaikyo Bridge?").citations
