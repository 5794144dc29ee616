"""Sentences and chunks, each with exact character offsets into its document's text.

Sentence boundaries come from pysbd (rule-based, handles abbreviations such as "Nov.", "H.E. Mr." and figures such
as "1,214,249.49"; no model to download). Blank lines always end a sentence. A single line break ends one too
(headings, list items), unless the next line starts in lower case, which marks a hard-wrapped line. Sentences are
packed into chunks of about `chunk_words` words that share `overlap` sentences with their neighbour and never cross
documents. Every span satisfies `text[start:end] == span text`; a "sentence" without a letter or digit is dropped.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import pysbd

PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
WRAPPED_LINE = re.compile(r"(?<=\S)[ \t]*\r?\n(?=[ \t]*[a-z(])")
WORD = re.compile(r"\S+")
GLUED = re.compile(r"(?<=[a-z]{3}[.!?])(?=[A-Z][a-z])")


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


def split_sentences(text: str, max_words: int = 80) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`; a sentence over `max_words` words is cut between words."""
    # Joining wrapped lines with spaces keeps every offset: the replacement has the same length.
    joined = WRAPPED_LINE.sub(lambda m: " " * len(m.group()), text)
    spans: list[tuple[int, int]] = []
    for p_start, p_end in split_paragraphs(joined):
        cursor = p_start
        for segment in _segmenter().segment(joined[p_start:p_end]):
            found = joined.find(segment, cursor, p_end)
            if found < 0:  # pysbd returned altered text: fall back to the rest of the paragraph
                found, segment = cursor, joined[cursor:p_end]
            start, end = _strip(text, found, found + len(segment))
            cursor = found + len(segment)
            # Stray punctuation, such as a lone "." or ":" left by a cut, is not a sentence.
            for a, b in _split_glued(text, start, end):
                spans += [(c, d) for c, d in _cut_long(text, a, b, max_words) if _has_word(text, c, d)]
    return spans


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
    return any(ch.isalnum() for ch in text[start:end])


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    words = list(WORD.finditer(text, start, end))
    if len(words) <= max_words:
        return [(start, end)]
    return [
        (words[i].start(), words[min(i + max_words, len(words)) - 1].end()) for i in range(0, len(words), max_words)
    ]
