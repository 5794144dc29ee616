"""Indexing: the incremental build by content hash (`builder`) and its splitting and embedding stages (`stages`),
the index on disk with its manifest (`store`), the local engine's segments and their merges (`segments`,
`segmented`, `updates`), the atomic swap (`swap`), the document texts kept with it (`texts`), and the index a
process serves following the one on disk (`live`)."""

from __future__ import annotations

from .builder import (
    CHUNKER_VERSION,
    SPLITTER,
    BuildReport,
    assemble,
    build,
    encoder_for,
    index_settings,
    load,
    text_settings,
)
from .lock import build_lock
from .segmented import SegmentedIndex
from .shards import parse_shard
from .stages import mean_vectors
from .stale import is_stale
from .updates import merge as merge_segments

__all__ = [
    "CHUNKER_VERSION",
    "SPLITTER",
    "BuildReport",
    "SegmentedIndex",
    "assemble",
    "build",
    "build_lock",
    "encoder_for",
    "index_settings",
    "is_stale",
    "load",
    "mean_vectors",
    "merge_segments",
    "parse_shard",
    "text_settings",
]
