"""Sentences and chunks, each with exact character offsets into its document's text.

Sentence boundaries come from pysbd (rule-based, handles abbreviations such as "Nov.", "H.E. Mr." and figures such
as "1,214,249.49"; no model to download). Blank lines always end a sentence. A single line break ends one too
(headings, list items), unless the next line starts in lower case or the line is wrapped (`lines.wraps`: nearly as
wide as its paragraph, without closing punctuation). Where pysbd ends a sentence inside a file name (".venv"), before
a lower-case word or after an abbreviation it lacks, the sentence goes on (`_join_false_ends`). A Markdown-style
heading's "## " is left out of its sentence. Sentences are
packed into chunks of about `chunk_words` words that share `overlap` sentences with their neighbour and never cross
documents. Every span satisfies `text[start:end] == span text`; a "sentence" without a word is dropped.

pysbd's time grows faster than the length of the text it is given, so a paragraph is handed to it in windows of
at most `WINDOW` characters, each cut after the last sentence end (else the last space) inside it: splitting time
then grows linearly with the text, whatever its punctuation (a 30 MB file of one line included). A window cut
inside a sentence hands its unfinished last sentence to the next window, so no fragment is made at the cut.
Inside a window, pysbd's own step that locates each sentence in the text (`Segmenter.segment`) searches the window
from its start once per sentence, and through every earlier copy of a repeated one: time that grows with the
window's sentences times its length, worst for many equal sentences (one word a line). So the sentences come from
pysbd's processor and are located here, with a cursor (half the splitting time of prose, a third of that of a word
list). A window without any character pysbd splits or rewrites at (no punctuation but commas and semicolons, no
line break) is one sentence, and pysbd is not run on it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import pysbd

from .lines import heading_marks, join_wraps

PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
WRAPPED_LINE = re.compile(r"(?<=\S)[ \t]*\r?\n(?=[ \t]*[a-z(])")
WORD = re.compile(r"\S+")
GLUED = re.compile(r"(?<=[a-z]{3}[.!?])(?=[A-Z][a-z])")
SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")
# Abbreviations that pysbd's English list lacks and that are followed by a number ("approx. 5 kg", "cf. 12"),
# found splitting technical prose (issue #21); pysbd's own list covers "e.g.", "vs.", "no.", "fig.", "p.".
ABBREVIATION = re.compile(r"(?<![\w.])(approx|ca|cf|ch|eq|esp|incl|max|ref|resp|sect|viz|vol)\.\Z", re.I)
# A last "word" that is no word: a lone dot ("pip install -e ."), a version or a path ("2.3.1.", "setup.py.").
NOT_A_WORD = re.compile(r"(\W*|.*[/\\~].*|.*\w\.\w.*)\.\Z")
# A character pysbd might split or rewrite at: anything but a letter, a digit, "_", a space, a tab, "," and ";".
# Its English rules act on . ! ? and their full-width forms, line breaks, list markers such as "a)" and "1.",
# quotes after "-", ellipses and abbreviations, all of which this matches; tests/test_unpunctuated.py checks that
# pysbd leaves a window of the other characters whole.
SPLIT_MARK = re.compile(r"[^\w \t,;]")
# pysbd takes 0.02 s for 2,000 characters of prose and 0.23 s for 10,000 of one unpunctuated line (measured in
# bench/indexing.py): windows this long keep it near its prose speed while holding dozens of sentences each.
WINDOW = 2000
# A sentence is cut at this many characters too: the bundled model reads 256 tokens, about 1,000 characters of
# English, and would ignore the rest of a longer one.
MAX_SENTENCE_CHARS = 1000
# A word is a run of up to 40 characters holding a letter or digit (the longest English dictionary words have
# about 30): a longer ASCII run (base64, a hash, a minified line) is not something a question names, and a
# "sentence" without a word is not indexed. Scripts written without spaces (Chinese, Japanese, Thai) are words
# whatever their length.
LONGEST_WORD = 40


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # (start, end) of each sentence, offsets into the document
    first_sentence: int  # position of sentences[0] among the document's sentences


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of text between blank lines, without surrounding white space."""
    spans, pos = [], 0
    for brk in PARAGRAPH_BREAK.finditer(text):
        spans.append((pos, brk.start()))
        pos = brk.end()
    spans.append((pos, len(text)))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s[0] < s[1]]


def split_sentences(
    text: str, max_words: int = 80, progress: Callable[[int], None] | None = None
) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`; a sentence over `max_words` words is cut between words.

    Args:
        progress: called with the number of characters split since its last call, window by window.
    """
    # Joining wrapped lines with spaces keeps every offset: the replacement has the same length.
    joined = WRAPPED_LINE.sub(lambda m: " " * len(m.group()), join_wraps(text))  # widths of the lines as written
    spans: list[tuple[int, int]] = []
    done = 0  # characters reported to `progress`
    for p_start, p_end in split_paragraphs(joined):
        start = p_start
        while start < p_end:
            end, clean = window_end(joined, start, p_end)
            pieces = [
                (c, d)
                for a, b in _join_false_ends(joined, _segment(joined, text, start, end))
                for g, h in _split_glued(text, a, b)  # stray punctuation, such as a lone "." left by a cut, goes
                for c, d in _cut_long(text, g, h, max_words)
                if _has_word(text, c, d)
            ]
            if not clean and len(pieces) > 1:  # the window cut its last sentence short: it starts the next one
                end = pieces.pop()[0]
            spans += pieces
            if progress is not None:
                progress(end - done)
                done = end
            start = end
    if progress is not None:
        progress(len(text) - done)
    return spans


def window_end(text: str, start: int, end: int) -> tuple[int, bool]:
    """Where the window of `text` from `start` ends (at most `WINDOW` characters on, before `end`), and whether
    it ends a sentence: after the last sentence end in its second half, else after its last space."""
    if end - start <= WINDOW:
        return end, True
    limit = start + WINDOW
    ends = [m.end() for m in SENTENCE_END.finditer(text, start + WINDOW // 2, limit)]
    if ends:
        return ends[-1], True
    return (text.rfind(" ", start + 1, limit) + 1 or limit), False


def _segment(joined: str, text: str, start: int, end: int) -> list[tuple[int, int]]:
    """pysbd's sentences of `joined[start:end]` as stripped spans of `text`."""
    spans, cursor = [], start
    for segment in pysbd_sentences(joined[start:end]):
        found = joined.find(segment, cursor, end)
        if found < 0:  # pysbd returned altered text: fall back to the rest of the window
            found, segment = cursor, joined[cursor:end]
        a, b = _strip(text, found, found + len(segment))
        spans.append((a + heading_marks(text, a, b), b))  # "## Setup" is the sentence "Setup"
        cursor = found + len(segment)
    return [s for s in spans if s[0] < s[1]]


def _join_false_ends(joined: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """pysbd's sentences, each joined to the one before where that one did not end: inside a word (a file name
    such as ".venv" or "~/.config", split at its dot), after a dot that ends no word and before a lower-case word
    ("pip install -e . in the folder", "2.3.1. is old"), or after an abbreviation pysbd lacks and before a number
    or a lower-case word ("approx. 5 kg"). A line break between two sentences keeps them apart, unless `joined` (the
    text with wrapped lines joined) has a space there."""
    sentences: list[tuple[int, int]] = []
    for a, b in spans:
        if sentences and _goes_on(joined, sentences[-1], a):
            sentences[-1] = (sentences[-1][0], b)
        else:
            sentences.append((a, b))
    return sentences


def _goes_on(text: str, before: tuple[int, int], start: int) -> bool:
    """Whether the sentence at `start` goes on with the sentence `before`, which pysbd ended too early."""
    gap, first = text[before[1] : start], text[start]
    if "\n" in gap or "\r" in gap or text[before[1] - 1] != ".":
        return False
    last_word = text[text.rfind(" ", before[0], before[1]) + 1 : before[1]]
    if gap == "":
        return first.isalnum()
    if ABBREVIATION.search(last_word):
        return first.islower() or first.isdigit()
    return first.islower() and NOT_A_WORD.fullmatch(last_word) is not None


def pysbd_sentences(window: str) -> list[str]:
    """The sentences pysbd finds in `window`, as `Segmenter.segment` returns them less their trailing white space:
    its processor's output, without the step in which `segment` searches the window for each of them."""
    if not SPLIT_MARK.search(window):  # nothing pysbd splits at: the whole window is one sentence
        return [window] if window.strip() else []
    sentences = _segmenter().processor(window).process()
    return sentences if isinstance(sentences, list) else []


def make_chunks(source: str, text: str, chunk_words: int = 120, overlap: int = 1) -> list[Chunk]:
    """Split one document into sentences and pack them into chunks of about `chunk_words` words."""
    return pack_chunks(source, text, split_sentences(text, max_words=chunk_words), chunk_words, overlap)


def pack_chunks(
    source: str, text: str, sentences: list[tuple[int, int]], chunk_words: int, overlap: int
) -> list[Chunk]:
    """Group consecutive sentences into chunks; a chunk shares its first `overlap` sentences with the last one."""
    sizes = [len(WORD.findall(text, a, b)) for a, b in sentences]
    chunks: list[Chunk] = []
    first = 0
    while first < len(sentences):
        last, words = first, sizes[first]
        while last + 1 < len(sentences) and words + sizes[last + 1] <= chunk_words:
            last += 1
            words += sizes[last]
        start, end = sentences[first][0], sentences[last][1]
        chunks.append(
            Chunk(
                id=f"{source}#{len(chunks)}",
                source=source,
                start=start,
                end=end,
                text=text[start:end],
                sentences=tuple(sentences[first : last + 1]),
                first_sentence=first,
            )
        )
        if last + 1 >= len(sentences):
            break
        # Share `overlap` sentences with the next chunk, unless they would leave no room for a new sentence
        # (the next chunk would then repeat the end of this one and add nothing).
        shared = max(first + 1, last + 1 - overlap)
        first = shared if sum(sizes[shared : last + 2]) <= chunk_words else last + 1
    return chunks


def _split_glued(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut where a sentence ends without a space before the next ("recovery.During"), which pysbd keeps whole."""
    cuts = [m.end() for m in GLUED.finditer(text, start, end)]
    bounds = [start, *cuts, end]
    return [_strip(text, a, b) for a, b in itertools.pairwise(bounds) if a < b]


def _has_word(text: str, start: int, end: int) -> bool:
    return any(is_word(token) for token in text[start:end].split())


def is_word(token: str) -> bool:
    if len(token) <= LONGEST_WORD:
        return any(ch.isalnum() for ch in token)
    return not token.isascii() and any(ch.isalpha() and not ch.isascii() for ch in token)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """The sentence, or pieces of it of at most `max_words` words and `MAX_SENTENCE_CHARS` characters, cut
    between words (inside a word only when one word alone is longer). A run that is no word (`is_word`) is left
    out, and ends the piece before it."""
    pieces: list[tuple[int, int]] = []
    first, last, count = -1, -1, 0  # the piece being filled (first < 0: none yet) and its words
    for word in WORD.finditer(text, start, end):
        junk = len(word.group()) > LONGEST_WORD and not is_word(word.group())
        for a, b in [] if junk else _cut_word(word.start(), word.end()):
            if first >= 0 and (count == max_words or b - first > MAX_SENTENCE_CHARS):
                pieces.append((first, last))
                first, count = -1, 0
            first = a if first < 0 else first
            last, count = b, count + 1
        if junk and first >= 0:
            pieces.append((first, last))
            first, count = -1, 0
    if first >= 0:
        pieces.append((first, last))
    return pieces


def _cut_word(start: int, end: int) -> list[tuple[int, int]]:
    """A word longer than `MAX_SENTENCE_CHARS` in pieces of that length; any other word whole."""
    return [(a, min(a + MAX_SENTENCE_CHARS, end)) for a in range(start, end, MAX_SENTENCE_CHARS)]
