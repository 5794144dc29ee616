"""The default engine: FAISS for the dense side, BM25 over postings for the lexical side, NumPy arrays for the
vectors, all in the index folder beside the catalog, in segments (`segment.py`).

An update writes the documents it embedded as a new segment and marks the chunks of the documents it removed or
replaced as dead in the older ones; a merge (`rag/indexing/segments.py`) joins segments and drops dead chunks. A
question searches every segment, leaves dead chunks out, and scores BM25 with the statistics of the live chunks of
all of them (`postings.py`): the scores are those of one index built from scratch over the same chunks. The
fastest thing on one machine: a question's searches cost about a millisecond up to a million chunks (README,
Performance).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.sentences import SentenceRows
from . import dense
from .base import Candidates, Engine, Passages, Scored, Update
from .postings import Stats
from .postings import search as search_postings
from .segment import FILES, DamagedFile, Segment

__all__ = ["FILES", "DamagedFile", "LocalCandidates", "LocalEngine", "Segment"]


class LocalEngine(Engine):
    """Segments, oldest first, each with the sources whose chunks in it are dead (removed or replaced since)."""

    name = "local"

    def __init__(self, segments: list[Segment], dead: list[frozenset[str]], terms: int, stats: Stats | None = None):
        self.segments, self.dead = segments, dead
        self.live = [_live_mask(s, d) for s, d in zip(segments, dead, strict=True)]  # None: every chunk is live
        self.dead_chunks = [0 if live is None else len(live) - int(live.sum()) for live in self.live]
        self.terms = terms  # term ids of the index's vocabulary: 0 to terms - 1
        self.stats = stats or Stats.of([(s.postings, live) for s, live in zip(segments, self.live, strict=True)], terms)

    @classmethod
    def build(cls, update: Update, previous: LocalEngine | None = None) -> LocalEngine:
        """An engine of one segment holding every chunk of `update`: the vectors of the documents embedded now, the
        `previous` engine's for the others."""
        sources = dict.fromkeys(c.source for c in update.chunks)
        vectors = [update.fresh[s] if s in update.fresh else previous.document_vectors(s) for s in sources]  # type: ignore[union-attr]
        chunk_vectors = _stack([v[0] for v in vectors], update.dimension, np.float32)
        sentence_vectors = _stack([v[1] for v in vectors], update.dimension, np.float16)
        segment = Segment.build(update.chunks, update.table, update.first_row, chunk_vectors, sentence_vectors)
        return cls([segment], [frozenset()], update.table.terms_held)

    def changed(self, added: Segment | None, removed: frozenset[str], terms: int) -> LocalEngine:
        """This engine with the segment `added` (or none) and the chunks of the sources `removed` dead where they
        are live now; its statistics are brought up to date from the changed chunks alone."""
        segments, dead = list(self.segments), list(self.dead)
        doc_freq = np.zeros(terms, dtype=np.int64)
        doc_freq[: len(self.stats.doc_freq)] = self.stats.doc_freq
        chunks, length = self.stats.chunks, self.stats.length
        for i, segment in enumerate(segments):
            gone = {s for s in removed if s in segment.first_row and s not in dead[i]}
            if not gone:
                continue
            rows = np.zeros(segment.size, dtype=bool)  # the chunks that die now
            for source in gone:
                span = segment.chunk_rows(source)
                rows[span.start : span.stop] = True
            df = segment.postings.doc_freq(rows)
            doc_freq[: len(df)] -= df
            chunks, length = chunks - int(rows.sum()), length - int(segment.postings.lengths[rows].sum())
            dead[i] = dead[i] | gone
        if added is not None:
            segments.append(added)
            dead.append(frozenset())
            df = added.postings.doc_freq()
            doc_freq[: len(df)] += df
            chunks += added.postings.size
            length += int(added.postings.lengths.sum())
        return LocalEngine(segments, dead, terms, Stats(chunks, doc_freq, length))

    def apply(self, update: Update) -> LocalEngine:
        return LocalEngine.build(update, self)

    def search_dense(self, vector: np.ndarray, k: int) -> Scored:
        found = []
        for s, segment in enumerate(self.segments):
            live = self.live[s]
            fetch = min(k + self.dead_chunks[s], segment.size)  # dead ones found are left out below
            if fetch <= 0:
                continue
            scores, rows = dense.search(segment.structure, vector, fetch)
            kept = [(float(score), s, r) for score, r in zip(scores.tolist(), rows.tolist(), strict=True) if r >= 0]
            found += [f for f in kept if live is None or live[f[2]]][:k]
        best = heapq.nsmallest(k, found, key=lambda f: (-f[0], f[1], f[2]))
        return [(self.segments[s].chunks[r].id, score) for score, s, r in best]

    def search_lexical(self, terms: Sequence[str], k: int) -> Scored:
        assert self.vocabulary is not None, "the index sets its vocabulary on its engine"
        term_id = self.vocabulary.term_id
        ids = [term_id[t] for t in terms if t in term_id]
        parts = [(s.postings, live) for s, live in zip(self.segments, self.live, strict=True)]
        return [(self.segments[p].chunks[r].id, score) for p, r, score in search_postings(parts, self.stats, ids, k)]

    def fetch(self, ids: Sequence[str]) -> LocalCandidates:
        held = []
        for chunk_id in ids:
            for s in range(len(self.segments) - 1, -1, -1):  # the live copy of a chunk is in its newest segment
                row = self.segments[s].row.get(chunk_id)
                if row is not None and (self.live[s] is None or self.live[s][row]):  # type: ignore[index]
                    held.append((s, row))
                    break
        return LocalCandidates(self, held)

    def count(self) -> int:
        return self.stats.chunks

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def document_vectors(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunk and sentence vectors of the live document `source`."""
        for segment, dead in zip(reversed(self.segments), reversed(self.dead), strict=True):
            if source in segment.first_row and source not in dead:
                return segment.document_vectors(source)
        raise KeyError(source)


class LocalCandidates(Candidates):
    def __init__(self, engine: LocalEngine, held: list[tuple[int, int]]) -> None:
        self.engine, self.held = engine, held
        segments = engine.segments
        self.ids = [segments[s].chunks[r].id for s, r in held]
        dimension = segments[0].vectors.shape[1] if segments else 0
        self.vectors = (
            np.stack([segments[s].vectors[r] for s, r in held]) if held else np.zeros((0, dimension), np.float32)
        )

    def best_sentence_scores(self, query_vector: np.ndarray) -> np.ndarray:
        """For each candidate, a matrix product over its sentences, then their maximum."""
        out = np.zeros(len(self.held), dtype=np.float32)
        for i, (s, r) in enumerate(self.held):
            segment = self.engine.segments[s]
            rows = segment.chunk_sentences(r)
            out[i] = (segment.sentence_vectors[rows.start : rows.stop].astype(np.float32) @ query_vector).max()
        return out

    def passages(self, positions: Sequence[int]) -> Passages:
        """With one segment, a view of its own arrays (a position is a sentence row: nothing is copied); with more,
        the chosen chunks' sentences and their neighbours gathered from their segments."""
        chosen = [self.held[p] for p in positions]
        segments = self.engine.segments
        if len(segments) == 1:
            segment = segments[0]
            rows = np.asarray([r for _, r in chosen], dtype=np.int64)
            chunks = [segment.chunks[r] for r in rows.tolist()]
            return Passages(
                chunks,
                segment.first_sentence[rows],
                segment.sentence_vectors,
                segment.previous,
                segment.following,
                segment.table,
            )
        return _gathered(segments, chosen)


def _gathered(segments: list[Segment], chosen: list[tuple[int, int]]) -> Passages:
    """The passages of `chosen` (segment, row) chunks, each sentence once, with the sentences around each chunk."""
    wanted: dict[tuple[int, int], None] = {}
    for s, r in chosen:
        segment = segments[s]
        rows = segment.chunk_sentences(r)
        before, after = int(segment.previous[rows.start]), int(segment.following[rows.stop - 1])
        for row in ([before] if before >= 0 else []) + list(rows) + ([after] if after >= 0 else []):
            wanted[(s, row)] = None
    keys = sorted(wanted)
    position = {key: n for n, key in enumerate(keys)}
    previous = np.asarray([position.get((s, int(segments[s].previous[r])), -1) for s, r in keys], dtype=np.int32)
    following = np.asarray([position.get((s, int(segments[s].following[r])), -1) for s, r in keys], dtype=np.int32)
    vectors = np.stack([segments[s].sentence_vectors[r] for s, r in keys]).astype(np.float32)
    ids, caps, flags, indptr = [], [], [], [0]
    for s, r in keys:
        held = segments[s].table
        a, b = int(held.indptr[r]), int(held.indptr[r + 1])
        ids.append(held.ids[a:b])
        caps.append(held.caps[a:b])
        flags.append(int(held.flags[r]))
        indptr.append(indptr[-1] + b - a)
    table = SentenceRows(
        np.asarray(indptr, dtype=np.int64),
        np.concatenate(ids).astype(np.int64),
        np.concatenate(caps),
        np.asarray(flags, dtype=np.uint8),
    )
    first = np.asarray([position[(s, segments[s].chunk_sentences(r).start)] for s, r in chosen], dtype=np.int64)
    return Passages([segments[s].chunks[r] for s, r in chosen], first, vectors, previous, following, table)


def _live_mask(segment: Segment, dead: frozenset[str]) -> np.ndarray | None:
    if not dead:
        return None
    live = np.ones(segment.size, dtype=bool)
    for source in dead:
        rows = segment.chunk_rows(source)
        live[rows.start : rows.stop] = False
    return live


def _stack(parts: list[np.ndarray], dimension: int, dtype: type) -> np.ndarray:
    return np.vstack(parts).astype(dtype, copy=False) if parts else np.zeros((0, dimension), dtype=dtype)
