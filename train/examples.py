"""The tune, check and dev examples of `train/fit_answer.py`: every question with its candidate sentences as the
pipeline gathers them, what each would quote and whether it holds an answer, and the near misses made from
answerable questions (a key word the documents never use; the answer sentences taken away)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer import Query, gather_pool, quoted_text
from rag.answer.features import Pool
from rag.embedding import Encoder
from rag.evaluation import holds
from rag.indexing import store
from rag.pipeline import POOL
from rag.retrieval import search
from rag.text.words import TOKEN

SEED = 0


@dataclass
class Example:
    """One question with its candidates, as the pipeline sees them."""

    query: Query
    pool: Pool
    labels: np.ndarray  # candidate i's quoted text holds an answer
    passage_labels: np.ndarray  # hit j's passage holds an answer
    answerable: bool
    group: str  # the article, for grouped cross-validation
    quoted: list[str]  # what each candidate would quote
    answers: list[str]
    made: bool = False  # a near miss made from a question (see `near_misses`, `without_answer`)


def collect(index: store.Index, encoder: Encoder, items: list[dict]) -> list[Example]:
    """Examples of every question of `items` (the eval format)."""
    vectors = encoder.encode([it["question"] for it in items], 64)
    out, group = [], ""
    for item, vector in zip(items, vectors, strict=True):
        group = item.get("group") or item.get("source") or group  # unanswerable ones follow their article's
        answers = item.get("answers") or []
        terms = index.vocabulary.query_terms(item["question"])
        hits, passages = search(index.engine, vector, terms, POOL)
        query = Query.read(item["question"], vector, terms, index.vocabulary, "en")
        pool = gather_pool(passages, hits, query)
        chunks = passages.chunks
        quoted = [quoted_text(chunks[h], span) for h, span in zip(pool.hit.tolist(), pool.spans, strict=True)]
        labels = np.asarray([holds(t, answers) for t in quoted])
        held = np.asarray([holds(c.text, answers) for c in chunks])
        made = bool(item.get("made"))
        out.append(Example(query, pool, labels, held, bool(answers), group, quoted, answers, made))
    return out


def without_answer(examples: list[Example], share: float, seed: int = SEED) -> list[Example]:
    """Near misses as users meet them: a `share` of the answerable questions asked with every candidate sentence
    that holds the answer taken away, so the topic is there and the fact is not."""
    rng = np.random.default_rng(seed)
    out = []
    for e in examples:
        if e.answerable and e.labels.any() and (~e.labels).any() and rng.random() < share:
            keep = np.flatnonzero(~e.labels)
            p = e.pool
            pool = Pool(
                p.rows[keep],
                p.hit[keep],
                [p.spans[i] for i in keep],
                p.cos[keep],
                p.features[keep],
                p.vectors[keep],
                p.query_vector,
                p.window_match[keep],
            )
            quoted = [e.quoted[i] for i in keep]
            out.append(Example(e.query, pool, e.labels[keep], e.passage_labels, False, e.group, quoted, [], True))
    return out


def near_misses(items: list[dict], index: store.Index, words: list[str], seed: int = SEED) -> list[dict]:
    """Unanswerable questions made from answerable ones: the question's rarest word that the documents hold is
    replaced by a word they never use (from the model's own word-piece vocabulary), as in "How many tanks did ...?"
    asked of documents that mention no tanks. They teach the confidence that a key word found nowhere near any
    candidate means the answer is not there, which SQuAD's near misses (the topic's words all present) do not."""
    rng = np.random.default_rng(seed)
    vocabulary, rules = index.vocabulary, index.words
    unused = [w for w in words if rules.stem(w) not in vocabulary and not rules.is_stop(w)]
    out, group = [], ""
    for item in items:
        group = item.get("source") or group
        if not item.get("answers"):
            continue
        spelled = [w for w in TOKEN.findall(item["question"]) if not rules.is_stop(w.lower())]
        ids = vocabulary.lookup([rules.stem(w.lower()) for w in spelled])
        if not len(ids) or (ids < 0).all():
            continue
        rarest = spelled[int(np.argmax(np.where(ids >= 0, vocabulary.idf(ids), -1.0)))]
        new = str(rng.choice(unused))
        new = new.capitalize() if rarest[0].isupper() else new
        question = re.sub(rf"\b{re.escape(rarest)}\b", new, item["question"], count=1)
        out.append(
            {"question": question, "answers": [], "kind": "unanswerable", "source": None, "made": True, "group": group}
        )
    return out


def model_words(model_folder: Path) -> list[str]:
    """Whole lower-case words of five letters or more from the model's word-piece vocabulary."""
    vocabulary = (model_folder / "vocab.txt").read_text(encoding="utf-8").split()
    return sorted(w for w in vocabulary if len(w) >= 5 and w.isascii() and w.isalpha() and w.islower())
