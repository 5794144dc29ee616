"""Bytes to text for the text and HTML readers: byte-order mark, then UTF-8, then a declared charset, then detection.

Detection uses chardetng (the detector of Firefox, through the chardetng-py binding; MIT / Apache-2.0) rather than
charset-normalizer: on sample paragraphs in ten legacy encodings (`bench/readers.py`: Western, Central European,
Cyrillic, Greek, Japanese, Chinese) chardetng decoded all ten correctly and charset-normalizer eight, missing the two
commonest: Latin-1 French and cp1252 English, which it read as Baltic and Central European code pages ("trčs",
"Naďve"). In a wider trial of eleven, charset-normalizer also took cp1250 Polish for cp1252 and was right six times.
Detection always names some encoding, so what decodes to control characters or replacement marks is rejected as
binary or garbled.
"""

from __future__ import annotations

import codecs
import unicodedata

from .base import Unreadable
from .charsets import codec_for

# UTF-32 LE's mark begins with UTF-16 LE's, so the UTF-32 marks are tried first.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Real text has next to no control characters or replacement marks; binary data decoded with a single-byte code
# page has about 13% (33 of the 256 byte values are C0 controls or DEL), so 1% separates the two with room to spare.
GARBLED_SHARE = 0.01
ALLOWED_CONTROLS = frozenset("\t\n\r\f\v\x1b")  # white space, and ESC of terminal colour codes in logs
BAD_CATEGORIES = frozenset({"Cc", "Cs", "Cn"})  # controls, lone surrogates, unassigned code points


def decode(data: bytes, declared: str | None = None) -> str:
    """The text of `data`, without its byte-order mark; raises `Unreadable` for binary or garbled data.

    `declared` is a charset the file names itself (HTML's meta charset); it is used when the bytes decode with it.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return _checked(_strict(data[len(bom) :], encoding), encoding)
    if b"\x00" in data:  # only UTF-16/32 text holds NUL bytes, and that is recognised by its mark above
        raise Unreadable("binary file (contains NUL bytes)")
    for candidate in ("utf-8", codec_name(declared)):
        if candidate:
            try:
                return _checked(data.decode(candidate), candidate)
            except UnicodeDecodeError:
                pass
    detected = detect(data)
    return _checked(data.decode(detected, errors="replace"), detected)


def codec_name(label: str | None) -> str | None:
    """Python's codec for a charset label, or None for one that is no WHATWG label (see `charsets`): a name taken
    from a file never selects a Python codec by itself ("unicode_escape", "rot13")."""
    return codec_for(label) if label else None


def detect(data: bytes) -> str:
    """The legacy encoding chardetng finds most likely for `data` (which is not UTF-8)."""
    import chardetng_py  # lazily: only files that are not UTF-8 need it

    return codec_name(chardetng_py.detect(data, allow_utf8=False)) or "cp1252"


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"marked as {encoding} by its byte-order mark, but byte {exc.start} does not decode") from None


def _checked(text: str, encoding: str) -> str:
    """`text`, unless too many of its characters are controls, replacement marks or unassigned code points."""
    odd = [
        ch
        for ch in set(text)
        if ch == "\ufffd" or (unicodedata.category(ch) in BAD_CATEGORIES and ch not in ALLOWED_CONTROLS)
    ]
    bad = sum(text.count(ch) for ch in odd)  # set() and count() run in C: fast on a book-sized text
    if text and bad > GARBLED_SHARE * len(text):
        raise Unreadable(
            f"binary or garbled: {bad / len(text):.0%} of the characters are not text (read as {encoding})"
        )
    return text
