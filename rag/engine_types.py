"""The search engines rag can use, by name, and what each can do: the one place that knows them.

Nothing outside `rag/engines/` tests an engine's name; it asks what the engine can do. A third engine is a module
in `rag/engines/` with an `Engine` class (`rag/engines/base.py`) and one `EngineType` here (or `register`ed by a
plugin), and `tests/test_engines.py` runs its contract tests over every registered engine. This module is at the
ground floor (settings check engine names against it), so it names modules rather than importing them: FAISS and
pymilvus load only when an index uses them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest


@dataclass(frozen=True)
class EngineType:
    """A search engine: its name, where its `Engine` class lives, and what it can do."""

    name: str
    module: str  # the module of its Engine class, imported on first use
    summary: str  # one line for the settings' help
    segments: bool  # keeps an index's chunks in segments of the index folder (rag/indexing/segmented.py)
    upserts: bool  # writes each document in place: readers see it at once, and a full build empties it first
    own_lexical: bool  # holds the chunks' terms and scores BM25 itself (else BM25 over postings, engines/postings.py)
    shared: bool  # other processes and machines may write to it too (`rag index --shard`)
    extra: str = ""  # the extra that installs its libraries ("milvus": pip install 'rag[milvus]'), if any
    describe: Callable[[Any], dict[str, Any]] = field(default=lambda settings: {})  # what an index records of it


def redact(uri: str) -> str:
    """`uri` without a password in it (http://user:secret@host -> http://user@host): the manifest is not secret."""
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1@", uri)


ENGINES: dict[str, EngineType] = {}


def register(engine: EngineType) -> None:
    """Make `engine` known by its name (a name already known is replaced)."""
    ENGINES[engine.name] = engine


register(
    EngineType(
        name="local",
        module="rag.engines.local",
        summary="local (FAISS and BM25 in segments of the index folder)",
        segments=True,
        upserts=False,
        own_lexical=False,
        shared=False,
    )
)
register(
    EngineType(
        name="milvus",
        module="rag.engines.milvus",
        summary="milvus (a Milvus server or Milvus Lite; docs/scaling.md)",
        segments=False,
        upserts=True,
        own_lexical=True,
        shared=True,
        extra="milvus",
        describe=lambda s: {"uri": redact(s.milvus_path), "collection": s.collection},
    )
)


def engine_type(name: str) -> EngineType:
    """The engine called `name`; `BadRequest` naming the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        raise BadRequest(f"engine must be {' or '.join(ENGINES)}, not {name!r}") from None


def describe(settings: Any) -> dict[str, Any]:
    """What an index built with `settings` records of its engine, and must match to be opened with them."""
    engine = engine_type(settings.engine)
    return {"name": engine.name, **engine.describe(settings)}
