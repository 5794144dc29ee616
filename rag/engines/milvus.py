"""The `milvus` engine: the index's chunks in one Milvus collection, searched by Milvus's HNSW and BM25.

The same code runs on Milvus Lite (a local path ending in ".db", a folder of its own; pymilvus runs Lite's gRPC
server in this process) and on a Milvus Standalone or Distributed server ("http://host:19530" with a token),
through pymilvus's `MilvusClient`. One collection holds, per chunk: `id` (the chunk id, primary key), `source`
(its document, for deletes), `vector` (HNSW, inner product), `terms` (the chunk's terms, already analyzed by
us, joined by spaces) with Milvus's BM25 function making `sparse` from it, and `payload` (what `Passages` needs:
see `milvus_records`).

Where Lite and a server differ in a way that shapes this module (measured on milvus-lite 3.2.2, pymilvus 3.0.2):
- index parameters go nested, `params={"params": {...}}`: pymilvus flattens a plain `params` dict into top-level
  keys, which Lite drops (it reads only a JSON "params" key); a server reads both forms;
- BM25 scores come back negated from Lite, positive from a server;
- Lite has the tokenizers `standard` and `jieba` only: `standard` (Lite's is `\\w+`) splits our terms, which are
  runs of word characters, exactly as we cut them. A server's `standard` follows Unicode word breaks (it would
  cut a run of Chinese characters we keep whole), so a server gets `whitespace` (Milvus 2.5.11 and later);
- Lite has no filter templates (`filter_params`) and `MilvusClient.get` does not escape string ids: filters are
  written here with quoted, escaped literals;
- Lite locks its folder for one process, and keeps the lock after `MilvusClient.close()` until its in-process
  server is stopped: `close()` stops it once the last engine on that path closes;
- Lite enforces no VARCHAR or JSON size limits; a server does (65,535 bytes): records are sized for a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

from ..config import COLLECTION
from ..errors import IndexMismatch
from ..text.chunking import Chunk
from ..text.vocabulary import Vocabulary
from .base import Engine, Scored, Update, redact
from .dense import HNSW, ef_search  # the graph and search width of the local engine's FAISS index
from .milvus_client import BATCH, batches, client_key, one_of, open_client, reachable, release_client
from .milvus_records import PIECE, PIECES, MilvusCandidates, Record, document_records

BM25 = {"bm25_k1": 1.5, "bm25_b": 0.75}  # bm25s's defaults, which the local engine uses
ID_BYTES = 4_096  # chunk ids and sources are file paths and "#n"
FIELDS = ["id", "source", "vector", "payload"]
WINDOW = 16_384  # the most rows a server's query returns (its maxQueryResultWindow)


class MilvusEngine(Engine):
    name: ClassVar[str] = "milvus"

    def __init__(self, client: MilvusClient, uri: str, path: str, collection: str, dimension: int) -> None:
        self.client, self.uri, self.collection, self.dimension = client, uri, collection, dimension
        self.path = path  # Lite: the absolute path its in-process server is known by; "" on a server
        self.lite = bool(path)
        self.vocabulary: Vocabulary | None = None  # set by the pipeline when the index loads; `passages` needs it
        self._closed = False
        self._count = 0
        self._key: tuple[str, str] = (path, "") if path else (uri, "")  # its client's in the process's cache

    @classmethod
    def connect(cls, uri: str, token: str, collection: str, dimension: int, *, fresh: bool = False) -> MilvusEngine:
        """The engine on `collection` at `uri`: dropped and made anew if `fresh` (a full rebuild), else opened,
        or made if missing."""
        if COLLECTION.fullmatch(collection) is None:  # the settings check it too; a direct caller may not
            raise ValueError(f"a Milvus collection name is letters, digits and underscores: {collection!r}")
        lite = uri.endswith(".db")  # pymilvus's own rule for a Lite path
        path = str(Path(uri).resolve()) if lite else ""
        client = open_client(uri, token, path)
        engine = cls(client, uri, path, collection, dimension)
        engine._key = client_key(uri, token, path)
        try:
            engine._open(fresh)
        except BaseException:
            engine.close()
            raise
        return engine

    def _open(self, fresh: bool) -> None:
        c, name = self.client, self.collection
        if fresh and c.has_collection(name):
            c.drop_collection(name)
        if not c.has_collection(name):
            self._create()
        else:
            held = next(f for f in c.describe_collection(name)["fields"] if f["name"] == "vector")
            if int(held["params"]["dim"]) != self.dimension:
                raise IndexMismatch(
                    f"collection {name} holds {held['params']['dim']}-d vectors, and the model makes {self.dimension}"
                    "-d ones; set RAG_COLLECTION to another collection, or RAG_MODEL to the model it was built with"
                )
        c.load_collection(name)  # a reopened Lite collection is unloaded; loading a loaded one does nothing
        self._count = self._query_count()

    def _create(self) -> None:
        c = self.client
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
        schema.add_field("source", DataType.VARCHAR, max_length=ID_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        tokenizer = "standard" if self.lite else "whitespace"
        schema.add_field(
            "terms", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params={"tokenizer": tokenizer}
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field(
            "payload", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=PIECES, max_length=PIECE
        )
        schema.add_function(
            Function(
                name="terms_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        index = c.prepare_index_params()
        index.add_index("vector", index_type="HNSW", metric_type="IP", params={"params": HNSW})
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"params": BM25})
        index.add_index("source", index_type="INVERTED")  # deletes filter on it
        # Strong consistency: a search right after `apply` sees its writes (a server's default, Bounded, may not).
        c.create_collection(self.collection, schema=schema, index_params=index, consistency_level="Strong")

    def apply(self, update: Update) -> MilvusEngine:
        if update.dimension != self.dimension:
            raise ValueError(f"an update of {update.dimension}-d vectors for a {self.dimension}-d collection")
        by_source: dict[str, list[Chunk]] = {}
        for chunk in update.chunks:
            by_source.setdefault(chunk.source, []).append(chunk)
        # A shorter new version of a document leaves its old last chunks behind: find them before writing. One
        # query for many sources, then deletes by id: Lite evaluates a filter row by row (a delete by `source`
        # costs a scan of the collection, ~0.3 s at 2k chunks, each), while a delete by ids costs milliseconds.
        too_long = [s for s in update.fresh if len(s.encode()) > ID_BYTES - 16]
        if too_long:  # refused before anything is written
            raise ValueError(f"a source path over {ID_BYTES - 16} bytes: {too_long[0][:80]}...")
        held = self._ids_of(list(update.fresh)) if self._count else set()
        write = self.client.upsert if self._count else self.client.insert  # insert: nothing to replace, faster
        pending: list[dict[str, Any]] = []
        for source in update.fresh:
            chunks = by_source.get(source, [])
            pending += document_records(update, source, chunks)
            held.difference_update(c.id for c in chunks)
            if len(pending) >= BATCH:
                write(self.collection, pending)
                pending = []
        if pending:
            write(self.collection, pending)
        for group in batches(sorted(held)):
            self.client.delete(self.collection, filter=one_of("id", group))
        if self._count:
            for group in batches(sorted(update.removed)):
                self.client.delete(self.collection, filter=one_of("source", group))
        self._settle()
        self._count = self._query_count()
        return self

    def _ids_of(self, sources: list[str]) -> set[str]:
        """Ids of the chunks held of `sources`. A server returns at most `WINDOW` rows a query: a batch that
        fills it is split, and a single document that does is read with an iterator."""
        found: set[str] = set()
        todo = [sources[i : i + BATCH] for i in range(0, len(sources), BATCH)]
        while todo:
            group = todo.pop()
            rows = self.client.query(
                self.collection, filter=one_of("source", group), output_fields=["id"], limit=WINDOW
            )
            if len(rows) < WINDOW:
                found.update(r["id"] for r in rows)
            elif len(group) > 1:
                todo += [group[: len(group) // 2], group[len(group) // 2 :]]
            else:
                it = self.client.query_iterator(self.collection, batch_size=1000, filter=one_of("source", group))
                while batch := it.next():
                    found.update(r["id"] for r in batch)
                it.close()
        return found

    def _settle(self) -> None:
        """Make the writes durable. Searches see them already (Strong consistency), but Lite searches unflushed
        rows one by one in Python (0.3 s at 4k chunks); a flush makes them a segment and starts Lite's background
        index build. Until that ends (about 20 s for 10k 384-d chunks here) Lite searches the segment by brute
        force (120 ms at 10k, then 18 ms), and no public call tells when it has: `describe_index` reports
        every row indexed at once. A server rate-limits flushes, which is fine once a build."""
        self.client.flush(self.collection)

    def search_dense(self, vector: np.ndarray, k: int) -> Scored:
        with reachable(self.uri):
            return self._search_dense(vector, k)

    def search_lexical(self, terms: Sequence[str], k: int) -> Scored:
        with reachable(self.uri):
            return self._search_lexical(terms, k)

    def fetch(self, ids: Sequence[str]) -> MilvusCandidates:
        with reachable(self.uri):
            return self._fetch(ids)

    def _search_dense(self, vector: np.ndarray, k: int) -> Scored:
        if k <= 0:
            return []
        ef = max(ef_search(self._count), k)  # a server refuses an ef below k
        hits = self.client.search(
            self.collection,
            data=[np.asarray(vector, dtype=np.float32).tolist()],
            anns_field="vector",
            limit=k,
            search_params={"metric_type": "IP", "params": {"ef": ef}},
            output_fields=["id"],  # an empty list means every field, payload included, on Lite
        )[0]
        return [(str(h["id"]), float(h["distance"])) for h in hits]

    def _search_lexical(self, terms: Sequence[str], k: int) -> Scored:
        if k <= 0 or not terms:
            return []
        hits = self.client.search(
            self.collection,
            data=[" ".join(terms)],
            anns_field="sparse",
            limit=k,
            search_params={"metric_type": "BM25"},
            output_fields=["id"],  # an empty list means every field, payload included, on Lite
        )[0]
        sign = -1.0 if self.lite else 1.0  # Lite hands BM25 scores back negated
        scored = [(str(h["id"]), sign * float(h["distance"])) for h in hits]
        return sorted((s for s in scored if s[1] > 0), key=lambda s: (-s[1], s[0]))

    def _fetch(self, ids: Sequence[str]) -> MilvusCandidates:
        rows: dict[str, dict[str, Any]] = {}
        for group in batches(list(dict.fromkeys(ids))):
            for row in self.client.query(self.collection, filter=one_of("id", group), output_fields=FIELDS):
                rows[row["id"]] = row
        # A chunk found by a search may be gone by now (another process's build replaced its document): it is left
        # out, and the candidates are the ones still held.
        records = {i: Record(rows[i], self.dimension) for i in rows}
        return MilvusCandidates([records[i] for i in ids if i in records], self.dimension, self.vocabulary)

    def count(self) -> int:
        return self._count

    def _query_count(self) -> int:
        # A count costs a scan on Lite (0.3 s at 4k chunks): it is taken once when opened and after each apply.
        return int(self.client.query(self.collection, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uri": redact(self.uri),  # as given, as `engine_settings` records it
            "collection": self.collection,
            "dimension": self.dimension,
            "dense": {"type": "hnsw", **HNSW, "efSearch": ef_search(self._count)},
            "lexical": {"type": "bm25", "k1": BM25["bm25_k1"], "b": BM25["bm25_b"]},
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        release_client(self._key, self.path)
