"""The local engine's BM25 side (postings with the index's term ids), and the vocabulary questions are read by:
scores against a brute-force reference, typo repair, stop words, idf, save and load."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rag.engines import postings as postings_module
from rag.engines.postings import Postings, Stats, search
from rag.text.sentences import SentenceTable
from rag.text.vocabulary import Vocabulary
from rag.text.words import ENGLISH, tokenize

DOCS = [
    "Japan supports Ukraine against nuclear terrorism and nuclear threats.",
    "The cat sat on the mat with another cat.",
    "Nuclear safety and nuclear power plants in Ukraine were discussed at length by the ministers of both countries.",
    "Generators were sent to Ukraine by Japan last winter to keep the lights on.",
    "Cherry blossoms bloom in Tokyo in spring, and the parks fill with visitors.",
    "Japan provided financial and humanitarian aid; generators and transformers followed.",
]
K1, B = 1.5, 0.75  # bm25s defaults (Lucene variant)


def reference_bm25(docs: list[list[str]], query: list[str]) -> np.ndarray:
    """Textbook BM25 with Lucene's idf and no (k1 + 1) factor, written out term by term."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = np.zeros(n)
    for i, doc in enumerate(docs):
        tf = Counter(doc)
        for term in query:
            df = sum(term in d for d in docs)
            if df == 0 or tf[term] == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            scores[i] += idf * tf[term] / (tf[term] + K1 * (1 - B + B * len(doc) / avgdl))
    return scores


class LexicalIndex:
    """BM25 over `texts`, each one chunk of one segment, as the local engine scores it (term ids of `words`)."""

    def __init__(self, texts: list[str]) -> None:
        table = SentenceTable.build(texts, ENGLISH)
        self.term_id = {t: i for i, t in enumerate(table.vocabulary)}
        self.postings = Postings.build([table.term_ids(i) for i in range(len(texts))], table.terms_held)
        self.size = len(texts)

    def search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        parts = [(self.postings, None)]
        ids = [self.term_id[t] for t in terms if t in self.term_id]
        return [(row, score) for _, row, score in search(parts, Stats.of(parts, len(self.term_id)), ids, k)]

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        return cls(texts)


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build(DOCS)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    """The vocabulary of DOCS, each text one sentence."""
    table = SentenceTable.build(DOCS, ENGLISH)
    return Vocabulary(table.vocabulary, table.doc_freq, len(table), ENGLISH)


@pytest.mark.parametrize(
    "question",
    [
        "nuclear Ukraine",
        "Which cat sat on the mat?",
        "Japan generators winter",
        "humanitarian aid from Japan",
        "When do cherry blossoms bloom in Tokyo?",
        "ministers discussed power plants",
    ],
)
def test_scores_agree_with_a_brute_force_bm25(lexical: LexicalIndex, vocabulary: Vocabulary, question: str) -> None:
    terms = vocabulary.query_terms(question)
    expected = reference_bm25(tokenize(DOCS), terms)
    hits = lexical.search(terms, k=len(DOCS))
    assert hits, "the question shares words with the documents"
    assert hits[0][0] == int(np.argmax(expected))  # top-1 agreement
    got = np.zeros(len(DOCS))
    for row, score in hits:
        got[row] = score
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_search_returns_best_first_and_only_positive_scores(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    hits = lexical.search(vocabulary.query_terms("nuclear"), k=10)
    assert [row for row, _ in hits] == [0, 2]
    assert hits[0][1] >= hits[1][1] > 0


def test_search_respects_k(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    assert len(lexical.search(vocabulary.query_terms("Japan Ukraine generators"), k=2)) == 2


def test_a_misspelled_query_word_is_mapped_to_a_known_one(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    terms = vocabulary.query_terms("terorism")
    assert terms == tokenize(["terrorism"])[0]
    assert lexical.search(terms, k=3)[0][0] == 0


def test_two_typos_are_repaired_in_a_long_word_only(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    assert vocabulary.query_terms("humanitarain")[0] == tokenize(["humanitarian"])[0][0]  # long: distance 2
    assert vocabulary.query_terms("cst") == ["cst"]  # too short to guess


def test_a_typo_is_never_repaired_to_a_term_only_removed_documents_held() -> None:
    terms = tokenize(["terrorism Kyiv"])[0]
    live = Vocabulary(terms, np.array([2, 1]), 3, ENGLISH)
    assert not live.has_dead_terms() and live.query_terms("terorism") == tokenize(["terrorism"])[0]
    removed = Vocabulary(terms, np.array([0, 1]), 1, ENGLISH)  # its documents removed, the term kept
    assert removed.has_dead_terms() and removed.query_terms("terorism") == tokenize(["terorism"])[0]


def test_an_unrelated_word_is_left_alone(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    assert vocabulary.query_terms("sourdough") == tokenize(["sourdough"])[0]
    assert lexical.search(vocabulary.query_terms("sourdough"), k=5) == []


def test_stop_words_and_question_words_are_removed() -> None:
    assert tokenize(["What is it? How many did they do, and why? When, where, which, whose, how much?"]) == [[]]
    assert tokenize(["How many forums did they organise?"]) == [["forum", "organis"]]


def test_terms_are_lower_cased_and_stemmed() -> None:
    assert tokenize(["Supports SUPPORTED supporting"]) == [["support"] * 3]


def test_a_question_of_stop_words_finds_nothing(lexical: LexicalIndex, vocabulary: Vocabulary) -> None:
    assert vocabulary.query_terms("What is it?") == []
    assert lexical.search([], k=5) == []


def test_idf_is_highest_for_an_unknown_term(vocabulary: Vocabulary) -> None:
    def idf(term: str) -> float:
        return float(vocabulary.idf(vocabulary.lookup([term]))[0])

    known = {t for doc in tokenize(DOCS) for t in doc}
    unknown = idf("zzzunseen")
    assert all(0 < idf(t) < unknown for t in known)
    assert unknown == pytest.approx(math.log(1 + (len(DOCS) + 0.5) / 0.5))
    assert idf("nuclear") < idf("cat")  # in two documents against one


def test_save_and_load_give_the_same_scores(lexical: LexicalIndex, vocabulary: Vocabulary, tmp_path: Path) -> None:
    lexical.postings.save(tmp_path)
    loaded = LexicalIndex.build(DOCS)
    loaded.postings = Postings.load(tmp_path)
    terms = vocabulary.query_terms("Japan nuclear generators")
    before, after = lexical.search(terms, 6), loaded.search(terms, 6)
    assert [row for row, _ in after] == [row for row, _ in before]
    assert [score for _, score in after] == pytest.approx([score for _, score in before])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("texts", [[], ["To be, or not to be.", "It is what it is."]], ids=["no-texts", "stop-words"])
def test_an_index_without_terms_finds_nothing(texts: list[str]) -> None:
    empty = LexicalIndex.build(texts)
    assert empty.size == len(texts)
    assert empty.search(["japan"], k=3) == []


def test_a_large_index_leaves_common_query_terms_out(vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"japan ukraine report number{i}" + (" rosatom" if i % 50 == 0 else "") for i in range(200)]
    lexical = LexicalIndex.build(texts)
    terms = vocabulary.query_terms("japan ukraine rosatom number7")
    everything = lexical.search(terms, 5)
    monkeypatch.setattr(postings_module, "LARGE", 100)  # this index counts as large now
    selective = lexical.search(terms, 5)
    # "japan" and "ukrain" are in every text: left out; the two rarest terms decide, and agree with the full query
    assert [row for row, _ in selective] == [row for row, _ in everything][: len(selective)]
    assert selective[0][1] < everything[0][1]
