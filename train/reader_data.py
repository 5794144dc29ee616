"""Training pairs for the reader (`train/train_reader.py`), made from SQuAD 1.1's training set.

Each SQuAD question becomes a few (question, sentence) pairs, sentences cut by the product's own splitter
(`rag.text.chunking.split_sentences`), so the reader learns on the sentences it will be shown:
- the sentence that holds the answer, with the answer's character span in it (label 1);
- hard negatives: the sentences of the same article that share most words with the question but do not hold the
  answer (the near miss of "the topic is there and the fact is not": the question asked of the article without its
  answer sentence), and one sentence of the same paragraph drawn at random (label 0);
- a swapped near miss, for a share of questions: a number, year or name of the question that the answer sentence
  repeats is replaced by another of the same kind from the article, and the pair with the answer sentence is a
  negative ("when did X happen in 1858" asked of a sentence about 1862).

Questions are made to look like what people type (`casual`): lower case, no question mark, a typo, dropped articles,
an ordinary extra word, or telegraphic word order ("japan tanks how many"). Everything is drawn from one seeded
generator, so the same seed gives the same pairs.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.text.chunking import split_sentences
from rag.text.words import TOKEN, words_for

NUMBER = re.compile(r"\b\d[\d,.]*\b")
NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][a-z]{2,}\b")
WH = re.compile(
    r"^(how (many|much|long|old|often|far|large|big)|what (year|date|day|month|time|percentage|kind of|type of)|"
    r"in what year|in which year|when|who|whom|whose|where|which|what|why|how)\b",
    re.I,
)
AUXILIARIES = {"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "the", "a", "an", "of"}
# Words people add that change nothing about what is asked ("how much money did ..." for "how much did ...").
EXTRA_WORDS = ("exactly", "actually", "really", "roughly", "about", "approximately", "total", "overall", "officially")


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: int  # 1: the sentence answers the question
    answer: tuple[int, int] | None  # the answer's characters inside `sentence` (label 1 only)
    kind: str  # "answer", "hard", "random", "swapped"


@dataclass(frozen=True)
class Item:
    """One SQuAD question with its article's sentences."""

    question: str
    article: str
    sentences: list[str]  # the article's sentences
    paragraph: range  # positions of the question's paragraph's sentences in `sentences`
    answer_at: int  # position of the sentence holding the answer
    answer: tuple[int, int]  # inside that sentence


def read_items(path: Path, limit_articles: int | None = None) -> list[Item]:
    """Questions whose answer text occurs once in its paragraph and lies inside one sentence."""
    by_article: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            by_article[record["title"]].append(record)
    items: list[Item] = []
    for n, (title, paragraphs) in enumerate(by_article.items()):
        if limit_articles is not None and n >= limit_articles:
            break
        sentences: list[str] = []
        for record in paragraphs:
            context = record["context"]
            spans = split_sentences(context)
            first = len(sentences)
            sentences += [context[a:b] for a, b in spans]
            for qa in record["qas"]:
                answer = qa["answers"][0]
                if qa.get("answer_occurrences", 1) != 1:
                    continue  # its offset is a guess
                start, end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
                inside = [i for i, (a, b) in enumerate(spans) if a <= start and end <= b]
                if inside:
                    a = spans[inside[0]][0]
                    where = range(first, len(sentences))
                    items.append(
                        Item(qa["question"].strip(), title, sentences, where, first + inside[0], (start - a, end - a))
                    )
    return items


def make_pairs(
    items: list[Item],
    rng: np.random.Generator,
    hard: int = 2,
    swap_share: float = 0.25,
    casual_share: float = 0.5,
    random_share: float = 1.0,
) -> list[Pair]:
    """The pairs of every item, in the items' order (the trainer shuffles them).

    Args:
        hard: hard negatives a question (the rest of its negatives: one random sentence of its paragraph).
        swap_share: the share of questions that also get a swapped near miss.
        casual_share: the share of questions rewritten as people type them (`casual`).
        random_share: the share of questions that also get a random sentence of their paragraph (easy negatives:
            the reader re-ranks the scorer's best candidates, which are rarely that easy).
    """
    words = words_for("en")
    term_cache: dict[int, dict[int, set[str]]] = {}
    pairs: list[Pair] = []
    for item in items:
        terms = term_cache.setdefault(id(item.sentences), {})
        question = casual(item.question, rng, casual_share)
        pairs.append(Pair(question, item.sentences[item.answer_at], 1, item.answer, "answer"))
        answer_text = _answer_text(item)
        wanted = set(words.terms(item.question))
        scored = []
        for i, sentence in enumerate(item.sentences):
            if i == item.answer_at or answer_text.lower() in sentence.lower():
                continue
            if i not in terms:
                terms[i] = set(words.terms(sentence))
            scored.append((len(wanted & terms[i]), float(rng.random()), i))
        scored.sort(reverse=True)
        for _, _, i in scored[:hard]:
            pairs.append(Pair(question, item.sentences[i], 0, None, "hard"))
        others = [
            i for i in item.paragraph if i != item.answer_at and answer_text.lower() not in item.sentences[i].lower()
        ]
        if others and (random_share >= 1 or rng.random() < random_share):
            pairs.append(Pair(question, item.sentences[int(rng.choice(others))], 0, None, "random"))
        if rng.random() < swap_share:
            swapped = swap_value(item, rng)
            if swapped is not None:
                pairs.append(
                    Pair(casual(swapped, rng, casual_share), item.sentences[item.answer_at], 0, None, "swapped")
                )
    return pairs


def _answer_text(item: Item) -> str:
    a, b = item.answer
    return item.sentences[item.answer_at][a:b]


def swap_value(item: Item, rng: np.random.Generator) -> str | None:
    """The question with one number or name that its answer sentence also holds replaced by a different one of
    the same kind from the article; None when it has none."""
    sentence = item.sentences[item.answer_at]
    for pattern in (NUMBER, NAME):
        found = [m for m in pattern.finditer(item.question) if m.group() in sentence]
        if not found:
            continue
        target = found[int(rng.integers(len(found)))]
        pool = sorted({m.group() for s in item.sentences for m in pattern.finditer(s)} - set(pattern.findall(sentence)))
        if not pool:
            continue
        new = str(rng.choice(pool))
        return item.question[: target.start()] + new + item.question[target.end() :]
    return None


def casual(question: str, rng: np.random.Generator, share: float = 0.5) -> str:
    """The question as people type it, `share` of the time: each change drawn on its own (the shares below are
    guesses at how people type, not fitted: lower case and no question mark are the most common)."""
    if rng.random() < 1 - share:  # (drawn so that the default 0.5 draws as the shipped reader's run did)
        return question
    changes = [telegraphic, with_typo, without_articles, with_extra_word]
    for change in changes:
        if rng.random() < 0.3:
            question = change(question, rng)
    if rng.random() < 0.7:
        question = question.rstrip(" ?")
    if rng.random() < 0.7:
        question = question.lower()
    return question


def with_typo(question: str, rng: np.random.Generator) -> str:
    """One letter dropped, doubled or swapped with the next, in a word of five letters or more."""
    long = [m for m in re.finditer(r"[A-Za-z]{5,}", question)]
    if not long:
        return question
    m = long[int(rng.integers(len(long)))]
    word, i = m.group(), int(rng.integers(1, len(m.group()) - 1))
    how = int(rng.integers(3))
    if how == 0:
        word = word[:i] + word[i + 1 :]
    elif how == 1:
        word = word[:i] + word[i] + word[i:]
    else:
        word = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return question[: m.start()] + word + question[m.end() :]


def without_articles(question: str, rng: np.random.Generator) -> str:
    return re.sub(r"\b(the|a|an) ", "", question, flags=re.I)


def with_extra_word(question: str, rng: np.random.Generator) -> str:
    words = question.split()
    at = int(rng.integers(1, max(len(words), 2)))
    return " ".join(words[:at] + [str(rng.choice(EXTRA_WORDS))] + words[at:])


def telegraphic(question: str, rng: np.random.Generator) -> str:
    """ "How many tanks did Japan send?" -> "Japan send tanks how many": the topic first, the question words last."""
    m = WH.match(question)
    if m is None:
        return question
    rest = [w for w in TOKEN.findall(question[m.end() :]) if w.lower() not in AUXILIARIES]
    return " ".join(rest + [m.group().lower()]) if rest else question


def batches(pairs: list[Pair], size: int, rng: np.random.Generator, pool: int = 1) -> Iterator[list[Pair]]:
    """Shuffled batches of `size` pairs.

    With `pool` > 1, each run of `pool` batches' worth of shuffled pairs is sorted by length before it is cut, and
    those batches are yielded in random order: a batch is padded to its longest pair, so pairs of like length
    waste less of each step on padding, while every batch is still drawn from across the data.
    """
    order = rng.permutation(len(pairs))
    span = size * max(pool, 1)
    for at in range(0, len(order), span):
        run = order[at : at + span]
        if pool > 1:
            run = sorted(run, key=lambda j: len(pairs[j].question) + len(pairs[j].sentence))
        cuts = [run[i : i + size] for i in range(0, len(run), size)]
        for c in rng.permutation(len(cuts)) if pool > 1 else range(len(cuts)):
            yield [pairs[j] for j in cuts[c]]
