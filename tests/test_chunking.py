"""Sentences and chunks: exact offsets for any text (hypothesis), and the splitting rules on examples."""

from __future__ import annotations

import base64
import random
import re
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.text.chunking import LONGEST_WORD, Chunk, is_word, make_chunks, pack_chunks, split_sentences

WORD = re.compile(r"\S+")

PIECES = [
    "Nov.",
    "Mr.",
    "Ms.",
    "H.E.",
    "e.g.",
    "U.S.",
    "1,214,249.49",
    "16,",
    "2024",
    "word",
    "Tokyo",
    "the",
    "and",
    "Japan",
    "ukraine",
    "café",
    "日本",
    "Україна",
    "naïve",
    "😀",
    ".",
    "!",
    "?",
    "...",
    ";",
    ":",
    ",",
    "(1)",
    "2.",
    '"',
    "“",
    "”",
    "’",
    "–",
    "-",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "\r\n\r\n",
    "\n \n",
    "\n\t\n",
    "\r",
    "\u00a0",
    "\u2028",
    "\x0b",
    "\x0c",
]
LONG_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=40, max_size=300)
TOKENS = st.one_of(st.sampled_from(PIECES), st.text(max_size=6), LONG_WORD)
STRUCTURED = st.lists(TOKENS, max_size=80).flatmap(
    lambda parts: st.sampled_from([" ", "", "\n"]).map(lambda sep: sep.join(parts))
)
TEXTS = st.one_of(st.text(max_size=300), STRUCTURED)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def words(text: str, start: int, end: int) -> int:
    return len(WORD.findall(text, start, end))


def check_sentences(text: str, spans: list[tuple[int, int]]) -> None:
    previous_end = 0
    for start, end in spans:
        assert 0 <= start < end <= len(text), (start, end)
        piece = text[start:end]
        assert piece == piece.strip(), repr(piece)
        assert start >= previous_end, "sentences overlap or are out of order"
        previous_end = end


def check_chunks(source: str, text: str, chunks: list[Chunk], sentences: list[tuple[int, int]]) -> None:
    for position, chunk in enumerate(chunks):
        assert chunk.id == f"{source}#{position}"
        assert chunk.source == source
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.sentences, "a chunk holds at least one sentence"
        first = chunk.first_sentence
        assert list(chunk.sentences) == sentences[first : first + len(chunk.sentences)]
        assert (chunk.start, chunk.end) == (chunk.sentences[0][0], chunk.sentences[-1][1])


@PROPERTY
@given(TEXTS)
def test_sentence_spans_are_exact_stripped_ordered_and_disjoint(text: str) -> None:
    spans = split_sentences(text)
    check_sentences(text, spans)


@PROPERTY
@given(TEXTS)
def test_sentences_cover_every_word(text: str) -> None:
    # Only what holds no word (stray punctuation, a blob of base64 on its own) may be left out. (A long token
    # that is a word by its script alone may lose a piece that pysbd cuts off: only words of usual length count.)
    spans = split_sentences(text)
    covered: set[int] = set()
    for start, end in spans:
        covered.update(range(start, end))
    in_words = [
        i
        for m in re.finditer(r"\S+", text)
        if len(m.group()) <= LONGEST_WORD and is_word(m.group())
        for i in range(m.start(), m.end())
    ]
    lost = [i for i in in_words if text[i].isalnum() and i not in covered]
    assert not lost, f"characters left out of every sentence: {[text[i] for i in lost]}"


@PROPERTY
@given(TEXTS, st.integers(min_value=10, max_value=40), st.integers(min_value=0, max_value=3))
def test_chunk_spans_are_exact_and_follow_the_sentences(text: str, chunk_words: int, overlap: int) -> None:
    sentences = split_sentences(text, max_words=chunk_words)
    chunks = make_chunks("doc.txt", text, chunk_words=chunk_words, overlap=overlap)
    check_chunks("doc.txt", text, chunks, sentences)
    assert bool(chunks) == bool(sentences)
    if chunks:  # together the chunks hold every sentence, in order
        assert chunks[0].first_sentence == 0
        assert chunks[-1].first_sentence + len(chunks[-1].sentences) == len(sentences)
    for chunk in chunks:
        # Words are counted in sentences: stray punctuation dropped between two sentences does not count.
        assert sum(words(text, a, b) for a, b in chunk.sentences) <= chunk_words
        for (_, gap_start), (gap_end, _) in pairwise(chunk.sentences):
            gap = [t for t in text[gap_start:gap_end].split() if len(t) <= LONGEST_WORD]
            assert not any(is_word(t) for t in gap)
    for before, after in pairwise(chunks):
        # `overlap` sentences are shared, unless with the next sentence they would not fit in one chunk
        last = before.first_sentence + len(before.sentences) - 1
        shared = max(before.first_sentence + 1, last + 1 - overlap)
        room = sum(words(text, a, b) for a, b in sentences[shared : last + 2]) <= chunk_words
        assert after.first_sentence == (shared if room else last + 1)


@PROPERTY
@given(st.lists(TEXTS, min_size=2, max_size=3))
def test_chunks_never_cross_documents(texts: list[str]) -> None:
    for i, text in enumerate(texts):
        source = f"dir/doc{i}.txt"
        chunks = make_chunks(source, text, chunk_words=20)
        check_chunks(source, text, chunks, split_sentences(text, max_words=20))


@pytest.mark.parametrize(
    "sentence",
    [
        "As a result: in Nov. 16, 2024 Japan and Ukraine agreed to strengthen cooperation.",
        "Ms. KAMIKAWA Yoko held a meeting with H.E. Mr. Dmytro KULEBA, Minister for Foreign Affairs of Ukraine.",
        "The Government of Japan decided to extend assistance of a total of 1,214,249.49 US dollars.",
    ],
)
def test_abbreviations_and_figures_do_not_end_a_sentence(sentence: str) -> None:
    text = f"{sentence} The next sentence follows here."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [sentence, "The next sentence follows here."]


@pytest.mark.parametrize("blank", ["\n\n", "\r\n\r\n", "\n   \n", "\n\t\n\n"])
def test_a_blank_line_always_ends_a_sentence(blank: str) -> None:
    text = f"the first part has no full stop{blank}and the second part starts in lower case"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "the first part has no full stop",
        "and the second part starts in lower case",
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_hard_wrapped_lines_are_joined(newline: str) -> None:
    text = f"This sentence was wrapped by an editor{newline}in the middle of a line. Then another one."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        f"This sentence was wrapped by an editor{newline}in the middle of a line.",
        "Then another one.",
    ]


def test_a_line_break_before_a_capital_ends_a_heading() -> None:
    text = "Main Activities\nThe project has three parts. Each has a budget."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Main Activities",
        "The project has three parts.",
        "Each has a budget.",
    ]


def test_text_without_punctuation_is_one_sentence() -> None:
    text = "  no punctuation anywhere in this line of text  "
    assert split_sentences(text) == [(2, len(text) - 2)]


def test_stray_punctuation_is_not_a_sentence() -> None:
    text = "The first sentence. . . The second one!\n\n...\n\n- \n\nThe third."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["The first sentence.", "The second one!", "The third."]


def test_cutting_a_long_sentence_leaves_no_punctuation_only_piece() -> None:
    text = "0 0 0 0 0 0 0 0 0 0 :"
    spans = split_sentences(text, max_words=10)
    assert all(any(ch.isalnum() for ch in text[a:b]) for a, b in spans), [text[a:b] for a, b in spans]


@pytest.mark.parametrize("text", ["", " ", "\n\n\r\n", "\t \u00a0 "])
def test_blank_text_has_no_sentences_and_no_chunks(text: str) -> None:
    assert split_sentences(text) == []
    assert make_chunks("blank.txt", text) == []


def test_an_over_long_sentence_is_cut_between_words() -> None:
    text = " ".join(f"w{i}" for i in range(250)) + "."
    spans = split_sentences(text, max_words=100)
    assert [words(text, a, b) for a, b in spans] == [100, 100, 50]
    assert text[spans[0][0] : spans[-1][1]] == text  # nothing lost, no word split
    chunks = make_chunks("long.txt", text, chunk_words=100)
    assert [words(text, c.start, c.end) for c in chunks] == [100, 100, 50]


def test_chunks_hold_about_chunk_words_and_share_one_sentence() -> None:
    sentences = [" ".join(["word"] * 9) + f" s{i}." for i in range(12)]  # 10 words each
    text = " ".join(sentences)
    chunks = make_chunks("doc.txt", text, chunk_words=30, overlap=1)
    assert [len(c.sentences) for c in chunks] == [3, 3, 3, 3, 3, 2]
    assert all(words(text, c.start, c.end) <= 30 for c in chunks)
    for before, after in pairwise(chunks):
        assert after.sentences[0] == before.sentences[-1]  # exactly one sentence shared
        assert after.first_sentence == before.first_sentence + len(before.sentences) - 1


def test_overlap_zero_gives_disjoint_chunks() -> None:
    text = " ".join(" ".join(["word"] * 9) + f" s{i}." for i in range(7))
    chunks = make_chunks("doc.txt", text, chunk_words=20, overlap=0)
    for before, after in pairwise(chunks):
        assert after.start > before.end


def test_no_chunk_is_contained_in_the_previous_one() -> None:
    def sentence(n: int, tag: str) -> str:
        return " ".join([tag] * (n - 1)) + f" {tag}end."

    text = " ".join([sentence(50, "a"), sentence(60, "b"), sentence(100, "c")])
    chunks = pack_chunks("doc.txt", text, split_sentences(text, max_words=120), 120, 1)
    for before, after in pairwise(chunks):
        assert not (before.start <= after.start and after.end <= before.end), f"{after.id} lies inside {before.id}"


def one_line(n_words: int, seed: int = 0) -> str:
    """Words without punctuation or line breaks: what a PDF dump or an export without sentence ends looks like."""
    rng = random.Random(seed)
    vocabulary = ["harbour", "grain", "ledger", "seventeen", "Kyiv", "shipment", "council", "winter", "x", "a"]
    return " ".join(rng.choice(vocabulary) for _ in range(n_words))


def test_one_long_line_is_cut_into_full_sentences_at_word_boundaries() -> None:
    text = one_line(30_000)
    spans = split_sentences(text, max_words=120)
    assert len(spans) == 250  # 30,000 words in sentences of 120: nothing lost, no fragments
    for start, end in spans:
        assert text[start:end].split() and len(text[start:end].split()) <= 120
        assert (start == 0 or text[start - 1] == " ") and (end == len(text) or text[end] == " ")


def test_splitting_reports_progress_window_by_window_and_in_full() -> None:
    text = one_line(20_000)
    steps: list[int] = []
    split_sentences(text, 120, progress=steps.append)
    assert sum(steps) == len(text) and len(steps) > 10 and max(steps) <= 2000


def test_a_blob_without_words_makes_no_passage_and_a_long_word_is_cut() -> None:
    blob = base64.b64encode(bytes(range(256)) * 40).decode()  # 13,656 characters without a space
    text = f"A sentence before it. {blob} A sentence after it."
    assert [text[a:b] for a, b in split_sentences(text)] == ["A sentence before it.", "A sentence after it."]
    long = "word " + "x" * 2500
    assert all(b - a <= 1000 for a, b in split_sentences(long))
