"""Edge: a document's JSON (`GET /api/documents/{source}`) and its original file (`GET /files/{source}`), streamed
a piece at a time.

Built whole, each response held its document while the client read it: 200 connections that never read a 5 MB
document took the server from 384 MB to 1,589 MB and delayed `/api/health` by up to 2.8 s (issue #20). Streamed,
a response holds one piece: the text is read from the index's file (or cut from the text of a new build, in memory
already) and the original from the corpus file opened once and checked (`open_corpus_file`), and the server sends
the next piece only once the client has taken the last (uvicorn pauses a response while more than its 64 kB
high-water mark is unsent). So many slow readers cost a piece each, however long the document, and each piece is
read in Starlette's thread pool in well under a millisecond, never the event loop's time.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from ..errors import NotFound
from ..indexing.store import Index

# 64 kB a piece: uvicorn's flow-control high-water mark, so one piece fills what it buffers for a slow client, and a
# 5 MB document is 80 pieces.
PIECE = 65_536


def document_response(index: Index, source: str) -> StreamingResponse:
    """The JSON of document `source` of `index` (source, title, format, pages, text: as `DocumentText.to_dict`),
    streamed; raises `NotFound` for a source the index does not hold."""
    entry = index.entry(source)
    if entry is None or source not in index.texts:
        raise NotFound(f"{source!r} is not in the index; GET /api/documents lists the documents")
    head = {"source": source, "title": entry.title, "format": entry.format, "pages": list(entry.pages)}
    text = index.texts.json_pieces(source, PIECE)
    return StreamingResponse(_json_pieces(head, text), media_type="application/json")


def _json_pieces(head: dict[str, Any], text: Iterator[bytes]) -> Iterator[bytes]:
    yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "text": '  # the object without its closing brace
    yield from text
    yield b"}"


def file_response(name: str, opened: BinaryIO, size: int) -> StreamingResponse:
    """A download of the `size` bytes of `opened` as file `name`; the file is closed at the end of the stream (a
    response dropped unsent leaves it to the garbage collector, which closes it with the generator)."""
    quoted = quote(name)  # as starlette's FileResponse: a plain name in quotes, any other percent-encoded
    disposition = f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"Content-Disposition": disposition, "Content-Length": str(size)}
    return StreamingResponse(_file_pieces(opened, size), media_type=media_type, headers=headers)


def _file_pieces(opened: BinaryIO, size: int) -> Iterator[bytes]:
    """The first `size` bytes of `opened` (its size when it was checked: a file that grew since is not read
    further), then the file is closed."""
    with opened:
        left = size
        while left > 0 and (piece := opened.read(min(PIECE, left))):
            left -= len(piece)
            yield piece
