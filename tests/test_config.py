"""Settings: defaults, RAG_* environment variables, overrides, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag.config import DEFAULT_MODEL, FIELDS, Settings
from rag.errors import BadRequest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, _, _ in FIELDS:
        monkeypatch.delenv(f"RAG_{name.upper()}", raising=False)


def test_defaults() -> None:
    settings = Settings.from_env()
    assert settings == Settings()
    assert settings.corpus == Path("corpus")
    assert settings.index == Path("index")
    assert settings.model == DEFAULT_MODEL
    assert (settings.chunk_words, settings.chunk_overlap, settings.top_k) == (120, 1, 5)


def test_every_field_has_a_default_and_a_help_string() -> None:
    assert [name for name, _, _ in FIELDS] == [f.name for f in dataclasses.fields(Settings)]
    assert all(help_text.strip() for _, _, help_text in FIELDS)


def test_from_env_reads_and_coerces_rag_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CORPUS", str(tmp_path / "docs"))
    monkeypatch.setenv("RAG_INDEX", "~/rag-index")
    monkeypatch.setenv("RAG_MODEL", "some/model")
    monkeypatch.setenv("RAG_CHUNK_WORDS", "60")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "0")
    monkeypatch.setenv("RAG_TOP_K", " 7 ")
    monkeypatch.setenv("RAG_MIN_CONFIDENCE", "0.25")
    monkeypatch.setenv("RAG_BATCH_SIZE", "8")
    settings = Settings.from_env()
    assert settings.corpus == tmp_path / "docs"
    assert settings.index == Path("~/rag-index").expanduser()
    assert settings.model == "some/model"
    assert settings.chunk_words == 60 and isinstance(settings.chunk_words, int)
    assert settings.chunk_overlap == 0
    assert settings.top_k == 7
    assert settings.min_confidence == 0.25 and isinstance(settings.min_confidence, float)
    assert settings.batch_size == 8


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "")
    assert Settings.from_env().top_k == 5


def test_overrides_win_over_the_environment_and_none_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_CORPUS", "from-env")
    settings = Settings.from_env(top_k=3, corpus=None, index=None, model=None)
    assert settings.top_k == 3
    assert settings.corpus == Path("from-env")
    assert settings.index == Path("index")
    assert settings.model == DEFAULT_MODEL


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RAG_TOP_K", "five"),
        ("RAG_TOP_K", "2.5"),
        ("RAG_TOP_K", "0"),
        ("RAG_TOP_K", "51"),
        ("RAG_CHUNK_WORDS", "9"),
        ("RAG_CHUNK_WORDS", "1e3"),
        ("RAG_CHUNK_OVERLAP", "-1"),
        ("RAG_CHUNK_OVERLAP", "6"),
        ("RAG_MIN_CONFIDENCE", "high"),
        ("RAG_MIN_CONFIDENCE", "1.5"),
        ("RAG_MIN_CONFIDENCE", "nan"),
        ("RAG_BATCH_SIZE", "0"),
    ],
)
def test_bad_values_raise_bad_request(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(BadRequest):
        Settings.from_env()


def test_a_bad_value_message_names_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "lots")
    with pytest.raises(BadRequest, match="'lots'"):
        Settings.from_env()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"top_k": 0},
        {"top_k": 51},
        {"chunk_words": 5},
        {"chunk_overlap": 9},
        {"min_confidence": -0.1},
        {"batch_size": 0},
    ],
)
def test_bad_values_in_code_raise_bad_request(kwargs: dict[str, object]) -> None:
    with pytest.raises(BadRequest, match=next(iter(kwargs))):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_paths_are_expanded_and_made_paths() -> None:
    settings = Settings(corpus="~/docs", index="idx")  # type: ignore[arg-type]
    assert settings.corpus == Path("~/docs").expanduser()
    assert settings.index == Path("idx")
