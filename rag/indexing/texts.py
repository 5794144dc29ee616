"""Each document's text as its reader extracted it, kept with the index.

Every offset of a response refers to this text, so it is saved with the vectors it was embedded from: a citation
stays checkable against exactly what was indexed, even when the file changed on disk since or a PDF library
extracts it differently after an upgrade.

On disk, `texts.jsonl` holds one document a line (`{"source", "text"}`) in the manifest's document order, and
`texts.offsets.npy` the byte offset and length of each line, so one document is read with one `pread` without
loading the rest. A loaded `Texts` keeps the file open: a rebuild that swaps a new index folder into place
(which renames and removes the old one) does not pull the text from under an index still answering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILE = "texts.jsonl"
OFFSETS = "texts.offsets.npy"


class Texts:
    """Document texts by source: held in memory (a new build) or read from an index folder (a loaded index)."""

    def __init__(self, memory: dict[str, str] | None = None) -> None:
        self._memory: dict[str, str] = dict(memory or {})
        self._fd: int | None = None
        self._where: dict[str, list[int]] = {}

    @classmethod
    def open(cls, folder: Path, sources: list[str]) -> Texts:
        """The texts saved in `folder` for `sources` (the manifest's documents, in order)."""
        offsets = np.load(folder / OFFSETS)
        if offsets.shape != (len(sources), 2):
            raise ValueError(f"{OFFSETS} holds {offsets.shape[0]} documents, the manifest {len(sources)}")
        texts = cls()
        texts._fd = os.open(folder / FILE, os.O_RDONLY)
        texts._where = dict(zip(sources, offsets.tolist(), strict=True))  # [offset, length] of each
        return texts

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def __contains__(self, source: str) -> bool:
        return source in self._memory or source in self._where

    def get(self, source: str) -> str:
        """The text of `source`; raises KeyError for a source the index does not hold."""
        if source in self._memory:
            return self._memory[source]
        offset, length = self._where[source]
        assert self._fd is not None
        row = json.loads(os.pread(self._fd, length, offset))
        if row.get("source") != source:
            raise ValueError(f"{FILE} is out of step with the manifest at {source}")
        return str(row["text"])

    def json_pieces(self, source: str, size: int) -> Iterator[bytes]:
        """The text of `source` as a JSON string (quotes and escapes included, UTF-8), in pieces of about `size`
        bytes: read from the file a piece at a time (a loaded index), or cut from the text in memory (a new build),
        so a reader of a long document holds one piece, never a copy of its text. Raises KeyError for a source the
        index does not hold (at once, before any piece)."""
        if source in self._memory:
            return _encoded_pieces(self._memory[source], size)
        offset, length = self._where[source]
        start, end = self._text_span(source, offset, length)
        if start < 0:  # a line not as `save` writes it: decoded and encoded again
            return _encoded_pieces(self.get(source), size)
        return self._read_pieces(start, end, size)

    def _text_span(self, source: str, offset: int, length: int) -> tuple[int, int]:
        """Where in the file the JSON string of `source`'s text lies, in its line as `save` writes it
        (`{"source": ..., "text": ...}`); (-1, -1) when the line is not written so."""
        assert self._fd is not None
        head = ('{"source": ' + json.dumps(source, ensure_ascii=False) + ', "text": ').encode()
        tail = b"}\n"
        written = os.pread(self._fd, len(head), offset) == head and os.pread(self._fd, 2, offset + length - 2) == tail
        return (offset + len(head), offset + length - len(tail)) if written else (-1, -1)

    def _read_pieces(self, start: int, end: int, size: int) -> Iterator[bytes]:
        assert self._fd is not None
        while start < end:
            piece = os.pread(self._fd, min(size, end - start), start)
            if not piece:
                raise ValueError(f"{FILE} ends before the text it holds")
            yield piece
            start += len(piece)

    def add(self, source: str, text: str) -> None:
        self._memory[source] = text

    def save(self, folder: Path, sources: list[str]) -> None:
        """Write the texts of `sources`, in that order, into `folder`."""
        offsets = np.zeros((len(sources), 2), dtype=np.int64)
        position = 0
        with open(folder / FILE, "wb") as out:
            for i, source in enumerate(sources):
                line = json.dumps({"source": source, "text": self.get(source)}, ensure_ascii=False) + "\n"
                data = line.encode("utf-8")
                out.write(data)
                offsets[i] = position, len(data)
                position += len(data)
        np.save(folder / OFFSETS, offsets)


def _encoded_pieces(text: str, size: int) -> Iterator[bytes]:
    """`text` as a JSON string in pieces of about `size` bytes (a character's escape is never cut)."""
    step = max(1, size // 4)  # characters: at most 4 bytes each in UTF-8, more only where escaped
    yield b'"'
    for i in range(0, len(text), step):
        yield json.dumps(text[i : i + step], ensure_ascii=False)[1:-1].encode()
    yield b'"'


@dataclass(frozen=True)
class DocumentText:
    """One indexed document as served: `text[start:end]` is the quote of every citation into it."""

    source: str
    title: str
    format: str
    pages: tuple[int, ...]  # offset in `text` where each page starts; () when the format has no pages
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "format": self.format,
            "pages": list(self.pages),
            "text": self.text,
        }
