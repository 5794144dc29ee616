"""Search engines behind one interface (`base.py`), picked by the `engine` setting: `local` (FAISS and BM25 in
segments of the index folder, the default) or `milvus` (a Milvus server, or Milvus Lite). Each is imported when it
is first used, so that importing the core loads neither FAISS nor pymilvus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..engine_types import describe, engine_type
from ..errors import EngineError, IndexMismatch, RagError
from ..text.words import Words
from .base import Candidates, Catalog, Engine, Passages, Scored, Update, redact

if TYPE_CHECKING:
    from ..indexing.store import Opener
    from .milvus import MilvusEngine

__all__ = [
    "Candidates",
    "Catalog",
    "Engine",
    "Passages",
    "Scored",
    "Update",
    "build_engine",
    "engine_settings",
    "opener",
    "redact",
]


def engine_settings(settings: Settings) -> dict[str, Any]:
    """What an index must have been built with, of its engine, to be opened with these settings."""
    return describe(settings)


def opener(settings: Settings) -> Opener:
    """Opens the engine an index's manifest names, with the connection settings of `settings`."""

    def open_engine(described: dict[str, Any], catalog: Catalog) -> Engine:
        if engine_type(described["name"]).segments:  # its index lists segments, which indexing/segmented.py opens
            raise ValueError(f"an index of engine {described['name']} without segments")
        if not catalog.table_current:
            raise IndexMismatch(
                "the answer rules changed since the index was built, and Milvus holds the old sentence terms; "
                "run `rag index --full` to rebuild it"
            )
        return connect_milvus(settings, int(described["dimension"]))

    return open_engine


def milvus_engine() -> type[MilvusEngine]:
    """The Milvus engine's class; a clear error when pymilvus is not installed (it is an optional dependency)."""
    try:
        from .milvus import MilvusEngine
    except ImportError as exc:
        raise EngineError(
            f"engine milvus needs pymilvus ({exc.name} is missing): pip install 'rag[milvus]', or set RAG_ENGINE=local"
        ) from None
    return MilvusEngine


def build_engine(
    update: Update, previous: Engine | None, settings: Settings, words: Words, shared: bool = False
) -> Engine:
    """The engine holding the index `update` describes: `previous` brought up to date when it is of the kind
    `settings` asks for, else a new one (a full build; a shared one, holding other shards too, is not emptied)."""
    if previous is not None and previous.name == settings.engine:
        return previous.apply(update)
    if engine_type(settings.engine).segments:
        from .local import LocalEngine

        return LocalEngine.build(update)
    return connect_milvus(settings, update.dimension, fresh=not shared).apply(update)


def connect_milvus(settings: Settings, dimension: int, fresh: bool = False) -> Engine:
    """The Milvus engine of `settings`; `EngineError` when it cannot be reached."""
    engine = milvus_engine()
    try:
        return engine.connect(settings.milvus_path, settings.milvus_token, settings.collection, dimension, fresh=fresh)
    except RagError:
        raise
    except Exception as exc:  # pymilvus raises its own errors and grpc's: all mean the same to a user
        raise EngineError(
            f"cannot use Milvus at {redact(settings.milvus_path)} ({type(exc).__name__}: {exc}); check that it runs "
            "and RAG_MILVUS_URI, RAG_MILVUS_TOKEN and RAG_COLLECTION"
        ) from None
