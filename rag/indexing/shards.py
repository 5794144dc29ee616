"""Splitting a large corpus across machines: `rag index --shard I/N` on each of N machines embeds the documents
whose name hashes to share I and writes them to the shared engine (Milvus), with a catalog (manifest, chunk and
sentence tables, texts) of its share only; `rag index --merge DIR...` then joins the N catalogs into the one the
servers read, embedding nothing (the engine already holds every share). docs/scaling.md says how to run it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ..config import Settings
from ..engine_types import engine_type
from ..errors import BadRequest, IndexMismatch

Shard = tuple[int, int]  # (i, n): the i-th of n shares, 0 <= i < n
SHARD = re.compile(r"(\d{1,4})/(\d{1,4})")
SAME = ("format", "model", "chunker", "text")  # what every shard of one index must have been built with


def parse_shard(text: str) -> Shard:
    """`"I/N"` as (I, N); raises `BadRequest` unless 0 <= I < N."""
    match = SHARD.fullmatch(text.strip())
    if match is None or not int(match[1]) < int(match[2]):
        raise BadRequest(f"--shard takes I/N with 0 <= I < N (0/4 is the first of four shares), not {text!r}")
    return int(match[1]), int(match[2])


def in_shard(source: str, shard: Shard) -> bool:
    """Whether document `source` (its path in the corpus) is in `shard`: the same on every machine and every run,
    and even across shares (the first 8 bytes of its name's SHA-256)."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def check_shard(settings: Settings, shard: Shard | None) -> None:
    if shard is not None and not engine_type(settings.engine).shared:
        raise BadRequest(
            "--shard writes into an engine the shards share: set RAG_ENGINE=milvus and RAG_MILVUS_URI to a "
            "Milvus server (docs/scaling.md)"
        )


def check_shards(manifests: list[dict[str, Any]], folders: list[Path]) -> int:
    """The number of shares the catalogs in `folders` split the corpus into; raises `IndexMismatch` unless they
    are distinct shares of one index, built alike into one engine. A missing share is reported by the caller."""
    shards = [tuple(m.get("shard") or ()) for m in manifests]
    if any(len(s) != 2 for s in shards):
        named = [str(f) for f, s in zip(folders, shards, strict=True) if len(s) != 2]
        raise IndexMismatch(f"{', '.join(named)} is not a shard's index; build each with `rag index --shard I/N`")
    if len({s[1] for s in shards}) != 1 or len(set(shards)) != len(shards):
        raise IndexMismatch(f"the shards {sorted(shards)} are not distinct shares of one split; give each once")
    first = manifests[0]
    for manifest, folder in zip(manifests[1:], folders[1:], strict=True):
        for key in (*SAME, "engine"):
            mine, theirs = manifest.get(key), first.get(key)
            if key == "engine":
                mine, theirs = _where(mine), _where(theirs)
            if mine != theirs:
                raise IndexMismatch(
                    f"{folder} was built with {key} {mine}, {folders[0]} with {theirs}; rebuild it like the others"
                )
    return int(shards[0][1])


def _where(engine: dict[str, Any] | None) -> tuple[Any, ...]:
    engine = engine or {}
    return engine.get("name"), engine.get("uri"), engine.get("collection")
