"""Titles: the first heading-like line of a text, and whether a title from a file's metadata means anything.

A leading line in another script than the body (a site slogan in Ukrainian above an English article) is boilerplate,
not the document's title, and is passed over; so is a numbered section heading ("1 Introduction", "2.3 Methods"), the
first heading of a document whose title is elsewhere or nowhere. Shortening a long title is left to the caller.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from ..text.lines import wraps

HEAD_LINES = 10  # the title is among the first non-empty lines; past them the text is body, not a header
SCRIPT_SAMPLE = 20_000  # characters of the text whose letters decide its script: a few pages, quick to count
# A script is the body's own when it holds most of the letters; 75% leaves out bilingual texts (no line is passed
# over for its script there), while an article in one script with a foreign slogan above it scores over 95%.
MAIN_SCRIPT_SHARE = 0.75
SECTION_NUMBER = re.compile(r"(\d{1,2}(\.\d{1,2})*\.?|[IVX]{1,4}\.)[ \t]+\w")  # "1 ", "2.3 ", "4. ", "IV. "
# A heading-like line has at most this many words: 20 words are about 120 characters, half as much again as the 80
# of a title (`documents.TITLE_CHARS`); a longer first line is body text, or a page extracted without line breaks.
HEADING_LIKE_WORDS = 20
ATX_HEADING = re.compile(r"#{1,6}[ \t]+(.*?)[ \t#]*$")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)
FRONT_TITLE = re.compile(r"^title:[ \t]*[\"']?(.*?)[\"']?[ \t]*$", re.M)
MARKUP_LINE = re.compile(r"(!\[|\[!\[|<[a-zA-Z!/])")  # badges, images and raw HTML at the top of a README
JAPANESE = {"HIRAGANA", "KATAKANA", "CJK"}  # one script for this purpose: Japanese text mixes all three
# File names, placeholders and editor defaults that PDF and DOCX writers leave in the metadata title.
PLACEHOLDER = re.compile(
    r"(untitled.*|title|document\d*|slide \d+|powerpoint presentation|microsoft (word|powerpoint|excel) - .*"
    r"|.*\.(docx?|pdf|tex|dvi|ps|rtf|odt|pptx?|xlsx?|indd|txt|html?|md)|[^ ]*[/\\][^ ]*)",
    re.I,
)


def first_heading(text: str, heading_like: bool = False) -> str | None:
    """The title in front matter, else the first line (a markdown heading or not) in the body's script that is not
    a numbered section heading, else None.

    Args:
        heading_like: pass over lines that are no heading too (for PDFs, where the first line of a page extracted
            without line breaks is the whole page, and the line under "1 Introduction" is body text): lines of more
            than `HEADING_LIKE_WORDS` words, ending as a sentence does, or wrapped into the next (`lines.wraps`).
    """
    front = FRONT_MATTER.match(text)
    if front:
        found = FRONT_TITLE.search(front.group(1))
        if found and found.group(1).strip():
            return found.group(1).strip()
        text = text[front.end() :]
    main = script(text[:SCRIPT_SAMPLE], MAIN_SCRIPT_SHARE)
    head = _head_lines(text)
    widest = max((len(line) for line in head), default=0)
    for i, line in enumerate(head):
        if MARKUP_LINE.match(line) or not any(ch.isalpha() for ch in line):
            continue  # a rule, a date or number alone, a badge: not a title
        heading = ATX_HEADING.fullmatch(line)
        line = heading.group(1) if heading else line
        if SECTION_NUMBER.match(line) or (heading_like and not _heading_like(line, head[i + 1 : i + 2], widest)):
            continue
        if main is None or script(line) in (main, None):
            return line
    return None


def _heading_like(line: str, after: list[str], widest: int) -> bool:
    """Whether `line` reads as a heading: short, not ending as a sentence does, not wrapped into the line `after`."""
    wrapped = bool(after) and wraps(line, after[0], widest)
    return len(line.split()) <= HEADING_LIKE_WORDS and not line.endswith((".", ",", ";")) and not wrapped


def meaningful(title: str | None) -> str | None:
    """`title` on one line, or None if it is empty, a placeholder or a file name."""
    line = " ".join((title or "").split())
    if sum(ch.isalpha() for ch in line) < 2 or PLACEHOLDER.fullmatch(line):  # 2: a title has a word, not an initial
        return None
    return line


def script(text: str, share: float = 0.0) -> str | None:
    """The script most of the letters of `text` are in ("LATIN", "CYRILLIC", ...), if it holds `share` of them."""
    counts: Counter[str] = Counter()
    for ch, n in Counter(text).items():  # each distinct character looked up once: Counter(text) runs in C
        if ch.isalpha():
            counts[_script_of(ch)] += n
    if not counts:
        return None
    name, count = counts.most_common(1)[0]
    return name if count >= share * counts.total() else None


def _script_of(letter: str) -> str:
    name = unicodedata.name(letter, "").split(" ", 1)[0]
    return "CJK" if name in JAPANESE else name


def _head_lines(text: str) -> list[str]:
    lines = []
    for line in text[:SCRIPT_SAMPLE].splitlines():
        if line.strip():
            lines.append(line.strip())
            if len(lines) == HEAD_LINES:
                break
    return lines
