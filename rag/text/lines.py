"""Line breaks inside sentences, and heading marks in front of them: what the splitter reads past, offsets kept.

A hard-wrapped line (a PDF's line, a text file wrapped at 72 columns) ends without closing punctuation and runs
nearly as wide as the widest line of its paragraph, while a heading, a list item or the last line of a paragraph is
shorter or ends with punctuation. `join_wraps` turns the line break after each wrapped line into a space (one
character for one, so every offset still holds), so that "GNU General Public" and "License version 3.0" on the next
line are one sentence. `heading_marks` measures the "## " in front of a Markdown-style heading (as in .md files and
the HTML reader's headings), which a sentence leaves out.
"""

from __future__ import annotations

import re

# A line at least this share of its paragraph's widest line is filled to the margin: ragged-right text wrapped at
# 72 columns leaves lines of 60 to 72 characters (words are rarely over 12 letters), a share over 0.8; headings
# above such paragraphs ("1 Introduction", "Chapter 2: The licence") stay under 0.7.
WRAP_SHARE = 0.7
# Paragraphs whose widest line is narrower are not wrapped prose (a list of names, a verse, code); the narrowest
# wrapped prose in practice is a two-column paper's column, 45 to 60 characters.
MIN_WRAP_WIDTH = 40
CLOSED = (".", "!", "?", ":", ";", "|", '"', "”", ")")  # a line ending so closes its sentence, or a table row
LIST_ITEM = re.compile(r"([-*•·▪–—]|\d{1,3}[.)]|[a-zA-Z][.)])\s")
GOES_ON = re.compile(r"[\w\"'“‘(]")  # a wrapped sentence goes on with a word, a number or an opening quote
HEADING_MARKS = re.compile(r"#{1,6}[ \t]+")


def wraps(line: str, next_line: str, widest: int) -> bool:
    """Whether `line` (stripped) is a hard-wrapped line that `next_line` (stripped) goes on from, in a paragraph
    whose widest line has `widest` characters."""
    return (
        widest >= MIN_WRAP_WIDTH
        and len(line) >= WRAP_SHARE * widest
        and not line.endswith(CLOSED)
        and not line.startswith("#")
        and " | " not in line
        and GOES_ON.match(next_line) is not None
        and LIST_ITEM.match(next_line) is None
    )


def join_wraps(text: str) -> str:
    """`text` with the line break after each wrapped line (`wraps`) turned into a space; as long as `text`."""
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    widest = _paragraph_widths(stripped)
    out = []
    for i, line in enumerate(lines):
        joined = i + 1 < len(lines) and stripped[i + 1] != "" and wraps(stripped[i], stripped[i + 1], widest[i])
        if joined and line.endswith("\r"):
            line = line[:-1] + " "
        out.append(line + (" " if joined else "\n"))
    return "".join(out)[: len(text)]


def _paragraph_widths(stripped: list[str]) -> list[int]:
    """For each line, the width of the widest line of its paragraph (lines between blank ones)."""
    widths = [0] * len(stripped)
    first = 0
    for i in range(len(stripped) + 1):
        if i == len(stripped) or not stripped[i]:
            widest = max((len(s) for s in stripped[first:i]), default=0)
            widths[first:i] = [widest] * (i - first)
            first = i + 1
    return widths


def heading_marks(text: str, start: int, end: int) -> int:
    """How many characters of "## " a sentence `text[start:end]` begins with, when it is a Markdown-style heading
    at the start of its line; 0 otherwise."""
    if not text.startswith("#", start) or text[text.rfind("\n", 0, start) + 1 : start].strip():
        return 0
    found = HEADING_MARKS.match(text, start, end)
    return found.end() - start if found and found.end() < end else 0
