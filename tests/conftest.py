"""Shared fixtures: the real bundled model, loaded once, and one index of the bundled corpus, built once.

Tests that change a corpus or an index build their own small throw-away corpus in `tmp_path`
(see `helpers.write_corpus`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# The shared helpers of the test_server_* modules assert too: rewrite them as pytest does a test module.
pytest.register_assert_rewrite("tests.server_support")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from rag import indexing  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Encoder  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402

# ROOT and the others are also imported from here by some test modules.
from .helpers import CORPUS, ROOT, SMALL_DOCS, write_corpus  # noqa: E402, F401

# The web apps of the server tests (module-scoped: each test module gets its own; a module's own fixture of the same
# name, as test_live.py's `admin`, wins in that module).
from .server_support import admin, bundled, hostile, plain  # noqa: E402, F401


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real bundled model (all-MiniLM-L6-v2), loaded once; it loads offline."""
    enc = Encoder()
    assert enc.dimension == 384  # forces the load here, not inside the first test that uses it
    return enc


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a private copy of the bundled corpus and an index folder next to it."""
    root = tmp_path_factory.mktemp("bundled")
    shutil.copytree(CORPUS, root / "corpus")
    return Settings(corpus=root / "corpus", index=root / "index")


@pytest.fixture(scope="session")
def assistant(corpus_settings: Settings, encoder: Encoder) -> Assistant:
    """An assistant over the bundled corpus (5 .txt files), its index built once per session."""
    index, report = indexing.build(corpus_settings, encoder, progress=False)
    assert len(report.added) == 5
    return Assistant(corpus_settings, index, encoder)


@pytest.fixture(scope="session")
def corpus_text(assistant: Assistant) -> Callable[[str], str]:
    """The decoded text of a corpus file of the session index: what every offset refers to."""
    cache: dict[str, str] = {}

    def read(source: str) -> str:
        if source not in cache:
            cache[source] = assistant.document_text(source)
        return cache[source]

    return read


@pytest.fixture
def small_corpus(tmp_path: Path) -> Settings:
    """Settings for a fresh three-document corpus in `tmp_path` (no index built yet)."""
    write_corpus(tmp_path / "corpus", SMALL_DOCS)
    return Settings(corpus=tmp_path / "corpus", index=tmp_path / "index")
