"""What a second attack on the server found (issue #20, part 2), each pinned: skipped files' names only for the
admin token, documents and downloads streamed, a body that stops arriving timed out, wrong tokens answered late,
sessions that expire and end on signing out, blank-looking upload names refused, and a full corpus disk answered
as the server's condition."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from rag.embedding import Encoder
from rag.errors import BadRequest
from rag.indexing.texts import Texts
from rag.server import access
from rag.server.security import Limits
from rag.server.uploads import check_upload_name

from .server_support import (
    AUTH,
    TOKEN,
    Served,
    admin,  # noqa: F401
    assert_error,
    bundled,  # noqa: F401
    serve_copy,
    snapshot,
    upload,
)
from .test_live import serving

READ = "r3ad-t0ken"
READER = {"Authorization": f"Bearer {READ}"}
WRONG = {"Authorization": "Bearer guess"}
BODY_SECONDS = 1.0  # the `guarded` server's body_seconds: short, so a test waits little for it
DOCUMENT = "001_6cd020ec01843fcd.txt"  # a document of the bundled corpus
BIG = 5_000_000  # characters: the 5 MB document of issue #20


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, bundled: Settings, encoder: Encoder) -> Served:  # noqa: F811
    """A private server (read and admin token) with a short body timeout."""
    root = tmp_path_factory.mktemp("guarded")
    return serve_copy(root, bundled, encoder, read_token=READ, admin_token=TOKEN, body_seconds=BODY_SECONDS)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, bundled: Settings, encoder: Encoder) -> Served:  # noqa: F811
    """An open server whose document `DOCUMENT` is 5 MB, in its index's text and as its file (never rebuilt)."""
    root = tmp_path_factory.mktemp("big")
    served = serve_copy(root, bundled, encoder)
    text = long_text(BIG)
    (served.corpus / DOCUMENT).write_text(text, encoding="utf-8")
    index = served.assistant.index
    index.texts = saved_texts(
        root / "texts", {d.source: index.texts.get(d.source) for d in index.documents} | {DOCUMENT: text}
    )
    return served


def long_text(chars: int) -> str:
    """`chars` characters of text with quotes, backslashes, new lines and non-ASCII letters (escaped in JSON)."""
    line = 'The "Kyiv" accord \\ signed in Tōkyō, 2024.\n'
    return (line * (chars // len(line) + 1))[:chars]


def saved_texts(folder: Path, texts: dict[str, str]) -> Texts:
    """`texts` saved as an index saves them, and opened as a loaded index opens them."""
    folder.mkdir()
    Texts(texts).save(folder, list(texts))
    return Texts.open(folder, list(texts))


# ---------------------------------------------------------------------------------------------------------------
# 6. Blank-looking names


BLANKS = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u034f", "\ufe0f", "\u00a0", "\u3000", "\u2007"]


@pytest.mark.parametrize("blank", BLANKS, ids=[f"U+{ord(c):04X}" for c in BLANKS])
def test_an_upload_name_with_a_blank_looking_character_is_refused(admin: Served, blank: str) -> None:  # noqa: F811
    admin.settle()
    before = snapshot(admin.corpus)
    for name in (f"{blank}.txt", f"notes{blank}v2.txt"):
        error = assert_error(upload(admin, name, b"Blank Notes\n\nThe owl ledger is blue.\n"), {400})
        assert "not an acceptable file name" in error["message"]
    assert snapshot(admin.corpus) == before
    assert not admin.service.state.running


def test_plain_names_in_any_script_are_still_accepted() -> None:
    for name in ("notes v2.txt", "Übersicht.md", "日本語のメモ.txt", "한글 문서.txt", "café.html"):
        assert check_upload_name(name) == name
    with pytest.raises(BadRequest):
        check_upload_name("\u3164.txt")


# ---------------------------------------------------------------------------------------------------------------
# 7. A full corpus disk


class FullDisk:
    """A file whose first write stores nothing and fails as a full disk does."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def fill_uploads(mp: pytest.MonkeyPatch) -> None:
    """From now on, the temporary file an upload is written to (`tempfile.mkstemp`) is on a full disk."""
    real_mkstemp, real_fdopen = tempfile.mkstemp, os.fdopen
    made: set[int] = set()

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        made.add(fd)
        return fd, name

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        opened = real_fdopen(fd, *args, **kwargs)
        return FullDisk(opened) if fd in made else opened

    mp.setattr(tempfile, "mkstemp", mkstemp)
    mp.setattr(os, "fdopen", fdopen)


def no_room_to_link(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def read_only(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


@pytest.mark.parametrize(
    ("where", "status", "code"),
    [
        ("write", 507, "insufficient_storage"),
        ("link", 507, "insufficient_storage"),
        ("read-only", 503, "storage_error"),
    ],
)
def test_an_upload_to_a_full_corpus_disk_is_the_server_s_condition(
    admin: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    status: int,
    code: str,
) -> None:
    admin.settle()
    before = snapshot(admin.corpus)
    with monkeypatch.context() as mp:
        if where == "write":
            fill_uploads(mp)
        else:
            mp.setattr(os, "link", no_room_to_link if where == "link" else read_only)
        r = upload(admin, "full-disk-notes.txt", b"Disk Notes\n\nThe owl ledger is blue.\n")
    error = assert_error(r, {status})
    assert error["code"] == code and "full-disk-notes.txt was not added" in error["message"]
    if status == 507:
        assert "disk is full (No space left on device)" in error["message"]
    assert snapshot(admin.corpus) == before  # no upload left behind, half-written or whole
    assert not admin.service.state.running


def test_a_name_the_file_system_refuses_is_still_the_client_s_error(
    admin: Served,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def too_long(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))

    admin.settle()
    monkeypatch.setattr(os, "link", too_long)
    error = assert_error(upload(admin, "long-name-notes.txt", b"Name Notes\n\nThe owl ledger is blue.\n"), {400})
    assert "is not a name the corpus folder accepts" in error["message"]
