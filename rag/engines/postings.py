"""BM25 over the segments of an index, with the statistics of the whole index.

Each segment keeps its chunks' postings: for each term (an id of the index's vocabulary, shared by every segment),
the chunks that hold it and how often, and each chunk's length in terms. A question is scored from the postings of
its terms with the index-wide statistics (`Stats`: live chunks, how many of them hold each term, their average
length) that the segments' live chunks add up to, so a chunk scores exactly as in one index built from scratch
over the same chunks. bm25s, which the index used before segments, precomputes each score with the statistics of
the one corpus it indexed: adding a segment would have changed every score in the others. The formula is bm25s's
default ("lucene": Lucene's idf, Robertson's term-frequency part, k1 1.5, b 0.75, float32 scores), and
tests/test_postings.py checks the scores against bm25s on the same chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

K1, B = 1.5, 0.75  # bm25s's defaults (and Lucene's k1 is 1.2; the index has always scored with these)
FILE = "postings.npz"
LARGE = 50_000  # chunks; from here common question terms are left out (see `selective`)
COMMON = 0.1


class Postings:
    """One segment's postings: chunk rows and counts by term id (CSR over terms), and each chunk's length."""

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, counts: np.ndarray, lengths: np.ndarray) -> None:
        self.indptr, self.rows, self.counts, self.lengths = indptr, rows, counts, lengths
        self._norms: tuple[float, np.ndarray] | None = None

    @classmethod
    def build(cls, chunk_terms: Sequence[np.ndarray], terms: int) -> Postings:
        """The postings of chunks whose term ids (with repeats, any order) are `chunk_terms`; ids are below `terms`."""
        lengths = np.fromiter((len(t) for t in chunk_terms), dtype=np.int64, count=len(chunk_terms))
        flat = np.concatenate(chunk_terms).astype(np.int64) if len(chunk_terms) else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(chunk_terms), dtype=np.int64), lengths)
        pairs, counts = np.unique(flat * max(len(chunk_terms), 1) + owner, return_counts=True)  # by term, then row
        term, rows = np.divmod(pairs, max(len(chunk_terms), 1))
        indptr = np.zeros(terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=terms), out=indptr[1:])
        return cls(indptr, rows.astype(np.int32), counts.astype(np.int32), lengths.astype(np.int32))

    @property
    def size(self) -> int:
        """Chunks held, live or not."""
        return len(self.lengths)

    @property
    def terms(self) -> int:
        """Term ids covered (ids from here on, added by later segments, hold no chunk of this one)."""
        return len(self.indptr) - 1

    def doc_freq(self, live: np.ndarray | None = None) -> np.ndarray:
        """How many chunks (the `live` ones only, when given) hold each term id below `terms`."""
        if live is None:
            return np.diff(self.indptr)
        term = np.repeat(np.arange(self.terms, dtype=np.int64), np.diff(self.indptr))
        return np.bincount(term[live[self.rows]], minlength=self.terms)

    def norms(self, average: float) -> np.ndarray:
        """Each chunk's length part of BM25's denominator, `K1 * (1 - B + B * length / average)`, kept for the
        average length it was last asked for (it changes only when an update changes the index)."""
        cached = self._norms
        if cached is None or cached[0] != average:
            cached = (average, K1 * ((1 - B) + B * self.lengths / average))
            self._norms = cached
        return cached[1]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) of the chunks holding term id `term`."""
        if term >= self.terms:
            return self.rows[:0], self.counts[:0]
        span = slice(self.indptr[term], self.indptr[term + 1])
        return self.rows[span], self.counts[span]

    def save(self, folder: Path) -> None:
        with open(folder / FILE, "wb") as out:
            np.savez(out, indptr=self.indptr, rows=self.rows, counts=self.counts, lengths=self.lengths)

    @classmethod
    def load(cls, folder: Path) -> Postings:
        with np.load(folder / FILE) as data:
            return cls(data["indptr"], data["rows"], data["counts"], data["lengths"])


@dataclass(frozen=True)
class Stats:
    """What BM25 reads of the whole index: live chunks, how many of them hold each term id, their total length."""

    chunks: int
    doc_freq: np.ndarray  # by term id
    length: int

    @classmethod
    def of(cls, parts: Sequence[tuple[Postings, np.ndarray | None]], terms: int) -> Stats:
        """The statistics of the live chunks of `parts` ((postings, live mask or None for all)), over `terms` ids."""
        doc_freq = np.zeros(terms, dtype=np.int64)
        chunks = length = 0
        for postings, live in parts:
            df = postings.doc_freq(live)
            doc_freq[: len(df)] += df
            chunks += postings.size if live is None else int(live.sum())
            length += int(postings.lengths.sum() if live is None else postings.lengths[live].sum())
        return cls(chunks, doc_freq, length)

    def idf(self, term: int) -> float:
        df = int(self.doc_freq[term]) if term < len(self.doc_freq) else 0
        return float(np.log(1 + (self.chunks - df + 0.5) / (df + 0.5)))

    def selective(self, terms: Sequence[int]) -> list[int]:
        """In a large index, the question's terms without those found in more than a tenth of the chunks (keeping
        the two rarest): their weight is small, their postings long (500,000 rows for one word at a million
        chunks), and the dense side still reads the whole question."""
        known = [t for t in terms if t < len(self.doc_freq) and self.doc_freq[t] > 0]
        if self.chunks < LARGE or len(known) <= 2:
            return known
        by_rarity = sorted(known, key=lambda t: self.doc_freq[t])
        return by_rarity[:2] + [t for t in by_rarity[2:] if self.doc_freq[t] <= COMMON * self.chunks]


def search(
    parts: Sequence[tuple[Postings, np.ndarray | None]], stats: Stats, terms: Sequence[int], k: int
) -> list[tuple[int, int, float]]:
    """Up to `k` (part, row, score) triples with a score above zero, best first (ties: earlier part, then row),
    for the question's term ids `terms` (a repeated term counts again, as in bm25s)."""
    terms = stats.selective(terms)
    if not terms or stats.chunks == 0 or k <= 0:
        return []
    average = stats.length / stats.chunks
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (part, row, score) arrays
    for p, (postings, live) in enumerate(parts):
        rows_list, scores_list = [], []
        norms = postings.norms(average)
        for term in terms:
            rows, counts = postings.postings(term)
            if not len(rows):
                continue
            # As bm25s computes it: the term-frequency part in float64, times the idf in float32, kept as float32.
            tf = counts.astype(np.float64)
            scores_list.append((np.float32(stats.idf(term)) * (tf / (norms[rows] + tf))).astype(np.float32))
            rows_list.append(rows)
        if rows_list:
            summed = _summed(np.concatenate(rows_list), np.concatenate(scores_list), postings.size, live)
            best, scores = _best(*summed, k)
            found.append((np.full(len(best), p, dtype=np.int64), best.astype(np.int64), scores))
    if not found:
        return []
    part, row, score = (np.concatenate(a) for a in zip(*found, strict=True))
    order = np.lexsort((row, part, -score))[:k]  # a few candidates a part: sorting them all is cheap
    return [(int(part[i]), int(row[i]), float(score[i])) for i in order if score[i] > 0]


def _summed(
    rows: np.ndarray, weights: np.ndarray, size: int, live: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The live rows among `rows` and the sums of their `weights` (in float64, in the order given, as bincount adds
    them). Few rows are sorted: each term's postings are already in row order, so a stable sort (timsort) only
    merges those runs, much quicker than np.unique's quicksort. Many rows are added up over the whole segment
    (linear), and come back as None: the scores are then one array over every row, zero where no posting fell."""
    weights = weights.astype(np.float64)
    if len(rows) * 8 < size:
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        rows, scores = rows[starts], np.add.reduceat(weights[order], starts)
        if live is not None:
            keep = live[rows]
            rows, scores = rows[keep], scores[keep]
        return rows, scores
    scores = np.bincount(rows, weights=weights, minlength=size)
    if live is not None:
        np.multiply(scores, live, out=scores)
    return None, scores


# The stride of `_best`'s sample: a longer one finds its threshold quicker and leaves more rows above it.
# `bench/lexical.py --chunks 1000000 --samples 8 16 32 64 128` (2026-12-07, median ms a search, two runs each):
# 8: 2.02, 2.00; 16: 1.96, 1.94; 32: 1.90, 1.85; 64: 1.93, 2.01; 128: 1.96, 2.08.
SAMPLE = 32


def _best(rows: np.ndarray | None, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows (`rows` names them; None: the positions) whose score is above zero and among the `k` best, ties at
    the k-th included, in any order. On a large array, the k-th best of every SAMPLE-th score is a threshold no
    higher than the k-th best of all, so the rows at or above it hold the k best; those are few, and only they are
    compared."""
    threshold = 0.0
    if len(scores) > SAMPLE * k * 4:  # a sample of 4k scores or more; smaller arrays are partitioned whole (chosen)
        sample = scores[::SAMPLE]
        threshold = float(np.partition(sample, len(sample) - k)[len(sample) - k])
    keep = np.flatnonzero(scores >= threshold) if threshold > 0 else np.flatnonzero(scores > 0)
    scores = scores[keep]
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        at_least = scores >= kth
        keep, scores = keep[at_least], scores[at_least]
    return (keep if rows is None else rows[keep]), scores
