"""The corpus folder's writes, for both edges (`rag add` and `rag remove`, the server's uploads and removals): a
file added under a plain name that reads as what it is, once its format's reader read it, written whole or not at
all; a document removed only from inside the corpus; an indexed document's original file, opened as indexing reads
it. Failures say whose they are: a name the file system refuses is the caller's (400), a full disk or a folder that
cannot be written is the host's (507, 503; issue #20). Nothing here updates the index: the caller does.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .config import Settings
from .errors import BadRequest, Conflict, NotFound, StorageError, StorageFull
from .readers import READERS, Unreadable
from .readers.documents import check_text, open_corpus_file
from .readers.sandbox import pool_for

# Where the server's messages send a caller for the documents' source paths; the CLI gives its own (`Corpus.hint`).
HINT = "GET /api/documents lists the documents"


class Listing(Protocol):
    """What `remove` and `open_original` need of an index: its documents by source, and its manifest."""

    manifest: dict[str, Any]

    def entry(self, source: str) -> Any: ...


class Corpus:
    """The corpus folder of `settings`, and the limits and reader processes its settings give."""

    def __init__(self, settings: Settings, hint: str = HINT) -> None:
        self.settings, self.folder, self.hint = settings, settings.corpus, hint

    def add(self, name: str, data: bytes, max_bytes: int) -> str:
        """Write file `name` into the corpus, atomically and never over a file, once the reader of its format read
        it as indexing will (in a reader process); returns its source path. Raises `BadRequest` for a name or a
        file that cannot be added, `Conflict` when the name is taken, `StorageError` when the folder cannot take it.
        """
        name = check_upload_name(name)
        if len(data) > max_bytes:
            raise BadRequest(f"the file is {len(data)} bytes; the limit is {max_bytes}")
        try:
            check_text(pool_for(self.settings).read(Path(name).suffix.lower(), data).extracted.text)
        except Unreadable as exc:
            raise BadRequest(f"{name}: {exc}") from None
        write_upload(self.folder, name, data)
        return name

    def remove(self, source: str, index: Listing) -> None:
        """Delete the corpus file of `source`, a document of `index` or a file it skipped (already gone: nothing to
        do). `index` still cites it until the caller updates it."""
        parts = Path(source).parts
        if not source or "\\" in source or "\x00" in source or Path(source).is_absolute() or ".." in parts:
            raise BadRequest(f"{source!r} is not a document path: use a document's source path ({self.hint})")
        if index.entry(source) is None and source not in index.manifest.get("skipped", {}):
            raise NotFound(f"{source!r} is not in the index; {self.hint}")
        # Its folder must lie inside the corpus: a linked folder leading out of it never has a file deleted.
        if not (self.folder / source).parent.resolve().is_relative_to(self.folder.resolve()):
            raise BadRequest(f"{source!r} lies outside the corpus folder (a link); remove it by hand")
        (self.folder / source).unlink(missing_ok=True)

    def open_original(self, source: str, index: Listing) -> tuple[str, BinaryIO, int]:
        """The name, open file and size of the corpus file of `index`'s document `source`, opened as indexing reads
        it (once, and checked as opened: a link swapped meanwhile never serves a file from outside the corpus); the
        caller closes it. Raises `NotFound` when it is not indexed, is gone or now leads out of the corpus."""
        if index.entry(source) is None:
            raise NotFound(f"{source!r} is not in the index; {self.hint}")
        try:
            opened, stat = open_corpus_file(self.folder, self.folder / source, self.settings.max_file_bytes)
        except Unreadable as exc:
            raise NotFound(f"{source!r} is in the index but its file is no longer in the corpus ({exc})") from None
        return Path(source).name, opened, stat.st_size


RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.I)
MAX_NAME = 200  # characters, for the pages and the logs
# Bytes of UTF-8: the file systems the corpus lives on (ext4, APFS, NTFS in UTF-16 units) allow 255 a name.
MAX_NAME_BYTES = 255
# Unicode categories no file name may hold: controls (Cc: U+0000-001F, U+007F-009F, U+0085 among them), format
# characters (Cf: the bidirectional overrides such as U+202E, zero-width spaces and joiners), line and paragraph
# separators (Zl U+2028, Zp U+2029), surrogates, private-use and unassigned code points: each makes a name read
# as something else on a page or a terminal.
UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# Characters that show as nothing or as a plain space, in categories `UNSAFE` allows (issue #20: "\u3164.txt" showed
# as ".txt"): the Default_Ignorable_Code_Point characters of Unicode's DerivedCoreProperties.txt that are not Cf or
# Cn (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0; the combining grapheme joiner; the Khmer inherent vowels;
# the Mongolian and the other variation selectors), and U+2800, the Braille pattern that has no dots.
BLANK = frozenset(
    chr(c)
    for first, last in [
        (0x034F, 0x034F),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x2800, 0x2800),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFFA0, 0xFFA0),
        (0xE0100, 0xE01EF),
    ]
    for c in range(first, last + 1)
)
# The errors of a link that the new name causes (a character or a length this file system refuses): the client's.
NAME_ERRORS = frozenset({errno.EINVAL, errno.ENAMETOOLONG, errno.EILSEQ})


def check_upload_name(name: str) -> str:
    """A plain file name for the corpus folder: no folders, no hidden or reserved names, a known suffix."""
    base = (name or "").strip()
    bad = (
        not base
        or "/" in base
        or "\\" in base
        or "\x00" in base
        or base.startswith(".")
        or len(base) > MAX_NAME
        or len(base.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES
        or RESERVED.match(base)
        or any(misleading(c) for c in base)
    )
    if bad:
        raise BadRequest(f"{name!r} is not an acceptable file name: use a plain name such as notes.txt")
    if Path(base).suffix.lower() not in READERS:
        raise BadRequest(f"{base}: only {', '.join(sorted(READERS))} files can be added")
    return base


def misleading(c: str) -> bool:
    """Whether character `c` makes a file name read as something else: a control or format character, a blank
    one (`BLANK`), or a space other than U+0020 (it looks like one and is not, so two names would look the same)."""
    category = unicodedata.category(c)
    return category in UNSAFE or c in BLANK or (category == "Zs" and c != " ")


def write_upload(corpus: Path, name: str, data: bytes) -> None:
    """Write `data` as `corpus/name`, whole or not at all, never over a file (`Conflict` if the name is taken)."""
    if (corpus / name).exists():
        raise Conflict(f"{name} is already in the corpus; choose another name")
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=corpus)
    except OSError as exc:
        raise unwritable(name, exc) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.link(tmp, corpus / name)  # fails if the name was taken meanwhile, never overwrites
    except FileExistsError:
        raise Conflict(f"{name} is already in the corpus; choose another name") from None
    except OSError as exc:
        if exc.errno in NAME_ERRORS:  # a name this file system refuses (a rule no check here knows): the client's
            raise BadRequest(f"{name!r} is not a name the corpus folder accepts ({exc.strerror})") from None
        raise unwritable(name, exc) from None  # a full disk, a read-only folder: the server's condition
    finally:
        os.unlink(tmp)


def unwritable(name: str, exc: OSError) -> StorageError:
    """The error for an upload the corpus folder could not take for the server's own reason: its disk or quota is
    full (507), or it cannot be written at all (503). Nothing was added either way."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"the server's disk is full ({why}), so {name} was not added; upload it once there is room")
    return StorageError(f"the server cannot write into its corpus folder ({why}), so {name} was not added")
