"""Extractive question answering over a folder of documents, offline: quoted answers with exact citations."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import RagError

if TYPE_CHECKING:
    from .answer import Answer, Citation, Response
    from .pipeline import Assistant

__all__ = ["Answer", "Assistant", "Citation", "RagError", "Response", "Settings"]
try:  # the installed distribution's version: pyproject.toml is its one source
    __version__ = version("rag")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"

# Loaded on first use (PEP 562): `rag.pipeline` brings bm25s and SciPy (about 0.9 s), which the `rag` command
# (every submodule import runs this file first) needs only for the commands that read an index, not for `--help`.
_LAZY = {"Answer": "answer", "Citation": "answer", "Response": "answer", "Assistant": "pipeline"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # the next lookup finds it directly
    return value
