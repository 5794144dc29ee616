"""Splitting text without sentence ends, or of many equal sentences, in work linear in its length (issue #11: a
5 MB upload of one word repeated held the rebuild for minutes).

The work is counted, not timed, where it can be: how often pysbd is run, and how many matches its step that
locates each sentence in the text goes through (quadratic in the sentences of a window before). One ratio of
times, within one run and the best of three, checks the whole splitter on twice the text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pysbd
import pysbd.segmenter
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.text import chunking
from rag.text.chunking import MAX_SENTENCE_CHARS, WINDOW, split_sentences

from .test_chunking import TEXTS

MB = 1 << 20


@pytest.fixture
def pysbd_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of each text pysbd's processor is run on (every path to its sentences goes through it)."""
    runs: list[int] = []
    original = pysbd.Segmenter.processor

    def counted(self: pysbd.Segmenter, text: str) -> Any:
        runs.append(len(text))
        return original(self, text)

    monkeypatch.setattr(pysbd.Segmenter, "processor", counted)
    return runs


@pytest.fixture
def locate_matches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many matches pysbd's segmenter iterates over to locate its sentences in the text (`re.finditer` as its
    module sees it), in a one-element list."""
    count = [0]

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(re, name)

        def finditer(self, pattern: str, string: str, flags: int = 0) -> Iterator[re.Match[str]]:
            for match in re.finditer(pattern, string, flags):
                count[0] += 1
                yield match

    monkeypatch.setattr(pysbd.segmenter, "re", Counting())
    return count


def check_spans(text: str, spans: list[tuple[int, int]], max_words: int) -> None:
    for start, end in spans:
        piece = text[start:end]
        assert piece == piece.strip() and piece, (start, end)
        assert end - start <= MAX_SENTENCE_CHARS and len(piece.split()) <= max_words
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize(
    "unit", ["lorem ", "a", "harbour grain ledger, seventeen; Kyiv\t"], ids=["one word", "no space", "few marks"]
)
def test_text_without_sentence_marks_is_split_without_pysbd(unit: str, pysbd_runs: list[int]) -> None:
    text = (unit * (MB // len(unit) + 1))[:MB]
    spans = split_sentences(text, max_words=120)
    assert pysbd_runs == []  # before the fix: once a window, about 700 runs for this 1 MB
    check_spans(text, spans, 120)
    words = len(text.split()) if unit != "a" else 0  # a run of a million "a" is no word (`is_word`)
    covered = sum(len(text[a:b].split()) for a, b in spans)
    assert covered == words  # every word in exactly one sentence: nothing lost at the window cuts
    if unit == "lorem ":
        assert len(spans) == -(-words // 120)  # full sentences of 120 words, as many as the words call for


def test_many_equal_sentences_are_located_in_linear_work(locate_matches: list[int], pysbd_runs: list[int]) -> None:
    text = "Word\n" * 40_000  # one word a line: 400 equal sentences in each window of 2,000 characters
    spans = split_sentences(text, max_words=120)
    assert [text[a:b] for a, b in spans] == ["Word"] * 40_000
    assert pysbd_runs  # pysbd does split this text (at its line breaks)
    # Before the fix pysbd's segmenter searched the whole window once a sentence: 400 * 401 / 2 matches a window,
    # about 8 million here. Locating each sentence once is at most one match a sentence.
    assert locate_matches[0] <= len(spans)


# Every character that `SPLIT_MARK` lets through, in each class it names: letters of several scripts, digits, "_",
# space, tab, comma and semicolon.
PIECES = list("aZéßжя日本٣7_ \t,;") + ["lorem ", "Mr ", "No ", "ii ", "I ", "e g "]  # words that have rules with marks
UNMARKED = st.lists(st.sampled_from(PIECES), max_size=120).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(UNMARKED)
def test_pysbd_leaves_a_window_without_marks_whole(window: str) -> None:
    """What lets `pysbd_sentences` skip pysbd: on such a window it returns the window as one sentence."""
    assert not chunking.SPLIT_MARK.search(window)
    expected = [window.strip()] if window.strip() else []
    got = [s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(window)]
    assert got == expected
    assert [s.strip() for s in chunking.pysbd_sentences(window)] == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_pysbd_sentences_are_the_segmenters_own(window: str) -> None:
    """Taking the sentences from pysbd's processor, without the segmenter's step that locates them, changes none."""
    segmenter = pysbd.Segmenter(language="en", clean=False)
    assert [s.strip() for s in chunking.pysbd_sentences(window)] == [s.strip() for s in segmenter.segment(window)]


def best_times(texts: list[str], rounds: int = 5) -> list[float]:
    """The shortest of `rounds` times of splitting each of `texts`, measured in turn (so that a burst of load on a
    shared machine slows them alike)."""
    best = [float("inf")] * len(texts)
    for _ in range(rounds):
        for i, text in enumerate(texts):
            started = time.perf_counter()
            split_sentences(text, max_words=120)
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def test_splitting_time_grows_linearly_on_text_without_ends() -> None:
    words = ["harbour", "grain", "ledger", "seventeen", "Kyiv", "shipment", "council", "winter", "x", "a"]
    one = " ".join(words[(i * 7) % len(words)] for i in range(MB // 4 // 7))  # about a quarter of a MB, one line
    assert len(one) > 100 * WINDOW  # many windows: the ratio measures the splitter, not one pysbd call
    single, double = best_times([one, one + " " + one])
    # Linear work makes the ratio 2; 3 leaves room for timer noise and stays well below the 4 of quadratic work.
    assert double / single < 3, (single, double)
