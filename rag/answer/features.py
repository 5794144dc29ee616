"""Features of every candidate answer sentence, and of the question as a whole, for the fitted scorer.

A question's candidates are the sentences of the passages retrieval found, each once (with the best passage that
holds it). Everything is computed from the question's vector and terms, the sentences' stored vectors and the
sentence table (terms in order, names, flags, document frequencies), never from a search engine's internals, and
in a few vectorized NumPy operations: it costs well under a millisecond for ten passages.

The feature groups (`GROUPS`) of what `train/fit_answer.py` fits:
- dense: cosine of the question to the sentence and its neighbours, and how it stands among the candidates;
- lexical: IDF-weighted share of the question's terms in the sentence, its neighbours and its passage, whether it
  holds the question's rarest term, shared word pairs, and how much it says beyond the question;
- type: the question's form (who, when, where, how many, which ...) against what the sentence holds (a date, a
  quantity, a name the question does not already have), title lines, a number before "how many X"'s X;
- passage: the rank and fused score of the passage;
- products: the element-wise product of question and sentence vectors (a learned, diagonal similarity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..engines import Passages
from ..retrieval import Hit
from ..text.chunking import Chunk
from ..text.question import FORMS, focus_pattern, question_form
from ..text.sentences import DATE, HEADING, QUANTITY, Rows
from ..text.vocabulary import Vocabulary

TYPED = ("date", "quantity", "name")
# The feature that says a sentence holds what a question form asks for (a form not listed asks for no one kind).
EXPECTS = {"when": "when_date", "quantity": "quantity_quantity", "who": "who_name", "where": "where_name"}
GROUPS: dict[str, list[str]] = {
    "dense": ["cos", "cos_gap", "cos_rank", "cos_prev", "cos_next"],
    "lexical": [
        "cover",
        "cover_gap",
        "cover_window",
        "cover_share",
        "rare",
        "rare_window",
        "pairs",
        "evidence",
        "novel",
        "length",
    ],
    "type": [f"form_{f}" for f in FORMS]
    + [f"{f}_{t}" for f in FORMS for t in TYPED]
    + ["heading", "focus", "names_new"],
    "passage": ["hit_rank", "hit_score", "hit_top"],
}
NAMES = [name for group in GROUPS.values() for name in group]
COLUMN = {name: i for i, name in enumerate(NAMES)}
QUESTION_NAMES = [
    "top_logit",
    "margin",
    "top_cos",
    "max_cos",
    "top_cover",
    "top_window",
    "rare_anywhere",
    "max_cover",
    "max_window",
    "max_pairs",
    "missing_anywhere",
    "rarest_missing",
    "missing_top",
    "unknown",
    "typed_top",
    "typed_any",
    "terms",
    *(f"form_{f}" for f in FORMS),
]


@dataclass(frozen=True)
class Query:
    """What answer selection reads of a question."""

    text: str
    vector: np.ndarray
    terms: tuple[str, ...]  # as searched
    term_ids: np.ndarray  # its distinct terms, as vocabulary ids (-1: no sentence holds it)
    idf: np.ndarray
    pairs: np.ndarray  # codes of its consecutive term pairs (both terms known): first id * `width` + second
    form: str  # `rag.text.question.FORMS`, of the question as asked
    width: int  # the vocabulary's size, which pair codes are made with
    asked: str  # the question as asked (`text` is what is searched: with a follow-up, the earlier question too)
    language: str | None  # the index's language, which the question is read in
    focus: re.Pattern[str] | None  # for "How many X", a number just before X (`focus_pattern`)

    @classmethod
    def read(
        cls,
        text: str,
        vector: np.ndarray,
        terms: list[str],
        vocabulary: Vocabulary,
        language: str | None,
        asked: str | None = None,
    ) -> Query:
        """`text` is what is searched; `asked`, when given, the question as asked (a follow-up's own words, whose
        form counts rather than the earlier question's it was read with)."""
        distinct = list(dict.fromkeys(terms))
        ids = vocabulary.lookup(distinct)
        ordered = vocabulary.lookup(terms)
        known = (ordered[:-1] >= 0) & (ordered[1:] >= 0)
        width = max(len(vocabulary), 1)
        pairs = ordered[:-1][known] * width + ordered[1:][known]
        asked = text if asked is None else asked
        form = question_form(asked, language)
        focus = focus_pattern(asked) if form == "quantity" else None
        return cls(text, vector, tuple(terms), ids, vocabulary.idf(ids), pairs, form, width, asked, language, focus)


@dataclass(frozen=True)
class Pool:
    """The candidate sentences of one question, with their features."""

    rows: np.ndarray  # positions of the sentences in the passages' arrays
    hit: np.ndarray  # position among the hits of the passage each is taken from
    spans: list[tuple[int, int]]  # document offsets
    cos: np.ndarray
    features: np.ndarray  # (len(rows), len(NAMES)), columns in `NAMES` order
    vectors: np.ndarray  # (len(rows), dimension): the candidates' sentence vectors
    query_vector: np.ndarray
    window_match: np.ndarray  # (len(rows), question terms): the term is in the sentence or a neighbour

    def __len__(self) -> int:
        return len(self.rows)

    def products(self) -> np.ndarray:
        """The element-wise products of the question's and each candidate's vector."""
        return self.vectors * self.query_vector


def gather_pool(passages: Passages, hits: list[Hit], query: Query) -> Pool:
    """Every sentence of the hits' passages (`passages.chunks[i]` is hit i's), once (with its best passage), and
    its features."""
    rows, hit, spans = _candidates(passages)
    table, vectors = passages.table, passages.vectors
    prev, after = passages.previous[rows], passages.following[rows]
    # The candidates and their neighbours (mostly candidates too) are read once.
    read = np.unique(np.concatenate([rows, prev[prev >= 0], after[after >= 0]]))
    at, at_prev, at_next = (np.searchsorted(read, np.maximum(r, 0)) for r in (rows, prev, after))
    cos_read = _cosines(vectors, read, query.vector)
    matches, caps_read, counts, pair_hits, flags = _lexical(table, read, query)
    match, caps_new, counts, pair_hits, flags = matches[at], caps_read[at], counts[at], pair_hits[at], flags[at]
    cos = cos_read[at]
    m_prev = matches[at_prev] & (prev >= 0)[:, None]
    m_next = matches[at_next] & (after >= 0)[:, None]
    window = match | m_prev | m_next
    weight = query.idf / max(float(query.idf.sum()), 1e-9)
    cover, cover_window = match @ weight, window @ weight
    rarest = int(np.argmax(query.idf)) if len(query.idf) else -1
    evidence = _passage_cover(match, hit, weight)
    cols = {
        "cos": cos,
        "cos_gap": cos - cos.max(initial=0.0),
        "cos_rank": 1.0 / (1.0 + np.argsort(np.argsort(-cos))),
        "cos_prev": np.where(prev >= 0, cos_read[at_prev], 0.0),
        "cos_next": np.where(after >= 0, cos_read[at_next], 0.0),
        "cover": cover,
        "cover_gap": cover - cover.max(initial=0.0),
        "cover_window": cover_window,
        "cover_share": match.mean(axis=1) if match.shape[1] else np.zeros(len(rows)),
        "rare": match[:, rarest] if rarest >= 0 else np.zeros(len(rows)),
        "rare_window": window[:, rarest] if rarest >= 0 else np.zeros(len(rows)),
        "pairs": pair_hits / max(len(query.pairs), 1),
        "evidence": evidence,
        "novel": 1.0 - match.sum(axis=1) / np.maximum(counts, 1),
        "length": np.log1p(counts),
        "heading": (flags & HEADING) > 0,
        "focus": _focus(passages, hit, spans, query),
        "names_new": np.minimum(caps_new, 3) / 3,
        "hit_rank": 1.0 / (1.0 + hit),
        "hit_score": np.asarray([hits[h].score for h in hit.tolist()]),
        "hit_top": hit == 0,
    }
    holds = {"date": (flags & DATE) > 0, "quantity": (flags & QUANTITY) > 0, "name": caps_new > 0}
    cols[f"form_{query.form}"] = 1.0  # the other forms' columns stay 0
    for kind in TYPED:
        cols[f"{query.form}_{kind}"] = holds[kind]
    features = np.zeros((len(rows), len(NAMES)), dtype=np.float32)
    for name, values in cols.items():
        features[:, COLUMN[name]] = values
    return Pool(rows, hit, spans, cos, features, np.asarray(vectors[rows], dtype=np.float32), query.vector, window)


def question_features(query: Query, pool: Pool, logits: np.ndarray) -> np.ndarray:
    """Features of the question as a whole, given each candidate's score: what the confidence is fitted on."""
    best = int(np.argmax(logits))
    others = np.delete(logits, best)
    f = dict(zip(NAMES, pool.features[best].tolist(), strict=True))
    rarest = int(np.argmax(query.idf)) if len(query.idf) else -1
    total = max(float(query.idf.sum()), 1e-9)
    top_missing = ~pool.window_match[best]
    anywhere_missing = ~pool.window_match.any(axis=0)
    values = [
        float(logits[best]),
        float(logits[best] - others.max()) if len(others) else 10.0,
        f["cos"],
        float(pool.cos.max()),
        f["cover"],
        f["cover_window"],
        float(pool.window_match[:, rarest].any()) if rarest >= 0 else 0.0,
        float(pool.features[:, COLUMN["cover"]].max()),
        float(pool.features[:, COLUMN["cover_window"]].max()),
        float(pool.features[:, COLUMN["pairs"]].max()),
        float(query.idf[anywhere_missing].sum() / total),
        float(query.idf[top_missing].max(initial=0.0) / max(float(query.idf.max(initial=0.0)), 1e-9)),
        float(np.log1p(top_missing.sum())),
        float(query.idf[query.term_ids < 0].sum() / total),
        f[EXPECTS.get(query.form, "")] if query.form in EXPECTS else 1.0,
        float(pool.features[:, COLUMN[EXPECTS[query.form]]].max()) if query.form in EXPECTS else 1.0,
        float(np.log1p(len(query.idf))),
        *(float(query.form == form) for form in FORMS),
    ]
    return np.asarray(values, dtype=np.float32)


def _candidates(passages: Passages) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Positions of the passages' sentences (each once, first passage wins), their passage and spans."""
    rows: list[int] = []
    hit: list[int] = []
    spans: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, chunk in enumerate(passages.chunks):
        for row, span in zip(passages.positions(i), chunk.sentences, strict=True):
            if row not in seen:
                seen.add(row)
                rows.append(row)
                hit.append(i)
                spans.append(span)
    return np.asarray(rows, dtype=np.int64), np.asarray(hit, dtype=np.int64), spans


def _cosines(vectors: np.ndarray, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
    return np.asarray(vectors[rows], dtype=np.float32) @ query_vector


def _lexical(
    table: Rows, rows: np.ndarray, query: Query
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each row: which question terms it holds, how many capitalized terms the question lacks, its number of
    terms, how many of the question's word pairs it holds, and its flags. Rows of -1 count as empty."""
    safe = np.maximum(rows, 0)
    starts, ends = table.indptr[safe], table.indptr[safe + 1]
    counts = np.where(rows >= 0, ends - starts, 0)
    owner = np.repeat(np.arange(len(rows)), counts)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) if len(rows) else starts
    flat = offsets + np.arange(int(counts.sum()))
    ids, caps = table.ids[flat].astype(np.int64), table.caps[flat]
    order = np.argsort(query.term_ids, kind="stable")
    sorted_ids = query.term_ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
    found = sorted_ids[pos] == ids if len(sorted_ids) else np.zeros(len(ids), dtype=bool)
    match = np.zeros((len(rows), len(query.term_ids)), dtype=bool)
    match[owner[found], order[pos[found]]] = True
    caps_new = np.bincount(owner[caps & ~found], minlength=len(rows))
    same = owner[:-1] == owner[1:]
    codes = ids[:-1] * query.width + ids[1:]
    paired = same & (ids[:-1] >= 0) & (ids[1:] >= 0) & np.isin(codes, query.pairs)
    pair_hits = np.bincount(owner[:-1][paired], minlength=len(rows))
    return match, caps_new, counts, pair_hits, np.where(rows >= 0, table.flags[safe], 0)


def _passage_cover(match: np.ndarray, hit: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """For each candidate, the weighted share of the question's terms found anywhere in its passage."""
    held = np.zeros((int(hit.max(initial=-1)) + 1, match.shape[1]), dtype=bool)
    np.logical_or.at(held, hit, match)
    return (held @ weight)[hit]


def _focus(passages: Passages, hit: np.ndarray, spans: list[tuple[int, int]], query: Query) -> np.ndarray:
    """For "How many X ...", whether the sentence holds a number just before X."""
    pattern = query.focus
    if pattern is None:
        return np.zeros(len(spans))
    chunks: list[Chunk] = [passages.chunks[h] for h in hit.tolist()]
    return np.asarray(
        [pattern.search(c.text[a - c.start : b - c.start]) is not None for c, (a, b) in zip(chunks, spans, strict=True)]
    )
