"""What the Milvus engine stores of a chunk besides its vectors and terms, and what it makes of it when fetched.

A chunk's record carries everything `Passages` needs without a second look-up: the chunk's fields, and for each of
its sentences plus the one just before and just after it in its document (its context) the sentence's vector
(float16), terms (as strings: term ids belong to the index's vocabulary, which changes with every build), capital
marks and flags. That payload is JSON (ASCII only) cut into pieces of an ARRAY of VARCHAR: a Milvus server refuses
a VARCHAR over 65,535 bytes and a JSON field over 64 KiB, and a chunk of many short sentences with 1,024-d
vectors needs more (Milvus Lite enforces neither limit, so only a server would show the failure).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.chunking import Chunk
from ..text.sentences import FOREIGN, SentenceRows, SentenceTable
from ..text.vocabulary import Vocabulary
from .base import Candidates, Passages, Update

PIECE = 65_535  # bytes of one ARRAY element; the payload is ASCII, so characters
PIECES = 4_096  # the most elements a Milvus ARRAY holds: 256 MiB a chunk
TERMS_BYTES = 65_535  # a server's VARCHAR limit, for the `terms` field


def document_records(update: Update, source: str, chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The records of document `source`'s chunks (`chunks`, in order), from its fresh vectors."""
    chunk_vectors, sentence_vectors = update.fresh[source]
    if len(chunk_vectors) != len(chunks):
        raise ValueError(f"{source}: {len(chunk_vectors)} chunk vectors for {len(chunks)} chunks")
    table, base, total = update.table, update.first_row[source], len(sentence_vectors)
    records = []
    for chunk, vector in zip(chunks, np.asarray(chunk_vectors, dtype=np.float32), strict=True):
        own = range(chunk.first_sentence, chunk.first_sentence + len(chunk.sentences))
        lo, hi = max(own.start - 1, 0), min(own.stop + 1, total)  # context: one sentence each side, if any
        payload = {
            "start": chunk.start,
            "end": chunk.end,
            "text": chunk.text,
            "sentences": [list(s) for s in chunk.sentences],
            "first_sentence": chunk.first_sentence,
            "lead": own.start - lo,  # context sentences stored before the chunk's own (0 or 1)
            **sentence_fields(table, range(base + lo, base + hi)),
            "vectors": base64.b64encode(np.asarray(sentence_vectors[lo:hi], dtype="<f2").tobytes()).decode(),
        }
        terms = [t for r in range(base + own.start, base + own.stop) for t in table.terms(r)]
        records.append(
            {
                "id": chunk.id,
                "source": source,
                "vector": vector.tolist(),
                "terms": fit(" ".join(terms), TERMS_BYTES),
                "payload": split(json.dumps(payload, separators=(",", ":"))),
            }
        )
    return records


def sentence_fields(table: SentenceTable, rows: range) -> dict[str, Any]:
    """What answer selection reads of sentences `rows` of `table`: terms, capital marks ("0"/"1" a term), flags."""
    caps = ["".join("1" if c else "0" for c in table.caps[table.indptr[r] : table.indptr[r + 1]]) for r in rows]
    return {"terms": [table.terms(r) for r in rows], "caps": caps, "flags": [int(table.flags[r]) for r in rows]}


def fit(text: str, limit: int) -> str:
    """`text` cut at a space so that it holds at most `limit` UTF-8 bytes (only a pathological chunk is longer:
    its last terms then go unsearched)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore").rsplit(" ", 1)[0]


def split(payload: str) -> list[str]:
    pieces = [payload[i : i + PIECE] for i in range(0, len(payload), PIECE)] or [""]
    if len(pieces) > PIECES:
        raise ValueError(f"a chunk's payload of {len(payload)} bytes exceeds what Milvus can hold")
    return pieces


class Record:
    """One fetched chunk: the chunk, and its sentences with context (`lead` of them before its own)."""

    def __init__(self, row: dict[str, Any], dimension: int) -> None:
        data = json.loads("".join(row["payload"]))
        self.chunk = Chunk(
            id=row["id"],
            source=row["source"],
            start=data["start"],
            end=data["end"],
            text=data["text"],
            sentences=tuple((int(a), int(b)) for a, b in data["sentences"]),
            first_sentence=data["first_sentence"],
        )
        self.lead = int(data["lead"])
        self.terms: list[list[str]] = data["terms"]
        self.caps: list[str] = data["caps"]
        self.flags: list[int] = data["flags"]
        raw = np.frombuffer(base64.b64decode(data["vectors"]), dtype="<f2")
        self.sentence_vectors = raw.reshape(len(self.terms), dimension)
        self.vector = np.asarray(row["vector"], dtype=np.float32)

    def own(self) -> np.ndarray:
        return self.sentence_vectors[self.lead : self.lead + len(self.chunk.sentences)]


class MilvusCandidates(Candidates):
    def __init__(self, records: list[Record], dimension: int, vocabulary: Vocabulary | None) -> None:
        self.records, self.vocabulary = records, vocabulary
        self.ids = [r.chunk.id for r in records]
        self.vectors = np.stack([r.vector for r in records]) if records else np.zeros((0, dimension), np.float32)
        self.dimension = dimension

    def best_sentence_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """One matrix product over every candidate's own sentences, then the maximum of each chunk's."""
        if not self.records:
            return np.zeros(0, dtype=np.float32)
        own = [r.own() for r in self.records]
        offsets = np.concatenate(([0], np.cumsum([len(o) for o in own])[:-1]))
        cosines = np.concatenate(own).astype(np.float32) @ np.asarray(query_vector, dtype=np.float32)
        return np.maximum.reduceat(cosines, offsets)

    def passages(self, positions: Sequence[int]) -> Passages:
        if self.vocabulary is None:
            raise RuntimeError("the Milvus engine was given no vocabulary (engine.vocabulary)")
        records = [self.records[p] for p in positions]
        # Every distinct sentence once, keyed by (source, ordinal in its document), in document order.
        found: dict[tuple[str, int], tuple[Record, int]] = {}
        for r in records:
            base = r.chunk.first_sentence - r.lead
            for j in range(len(r.terms)):
                found.setdefault((r.chunk.source, base + j), (r, j))
        order = {s: n for n, s in enumerate(dict.fromkeys(r.chunk.source for r in records))}
        keys = sorted(found, key=lambda k: (order[k[0]], k[1]))
        position = {k: n for n, k in enumerate(keys)}
        held = [found[k] for k in keys]
        term_id = self.vocabulary.term_id
        table = SentenceRows.from_lists(
            [[term_id.get(t, FOREIGN) for t in r.terms[j]] for r, j in held],
            [[c == "1" for c in r.caps[j]] for r, j in held],
            [r.flags[j] for r, j in held],
        )
        vectors = (
            np.stack([r.sentence_vectors[j] for r, j in held]).astype(np.float32)
            if held
            else np.zeros((0, self.dimension), dtype=np.float32)
        )
        return Passages(
            [r.chunk for r in records],
            np.asarray([position[(r.chunk.source, r.chunk.first_sentence)] for r in records], dtype=np.int64),
            vectors,
            np.asarray([position.get((s, o - 1), -1) for s, o in keys], dtype=np.int64),
            np.asarray([position.get((s, o + 1), -1) for s, o in keys], dtype=np.int64),
            table,
        )
