"""Indexing: the incremental build by content hash (`builder`) and its splitting and embedding stages (`stages`),
the index on disk with its manifest (`store`), the atomic swap (`swap`), the document texts kept with it (`texts`),
and the index a process serves following the one on disk (`live`)."""

from __future__ import annotations

from .builder import (
    CHUNKER_VERSION,
    SPLITTER,
    BuildReport,
    assemble,
    build,
    build_lock,
    encoder_for,
    index_settings,
    is_stale,
    load,
    text_settings,
)
from .shards import parse_shard
from .stages import mean_vectors

__all__ = [
    "CHUNKER_VERSION",
    "SPLITTER",
    "BuildReport",
    "assemble",
    "build",
    "build_lock",
    "encoder_for",
    "index_settings",
    "is_stale",
    "load",
    "mean_vectors",
    "parse_shard",
    "text_settings",
]
