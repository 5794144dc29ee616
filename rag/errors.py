"""Typed errors that say what happened and what to do.

The core raises these; each edge (CLI, server) translates them once: the CLI to a one-line message and exit
code 2, the server to a JSON error with a 4xx status.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: `code` is a stable machine-readable name, the message is for people."""

    code = "error"


class BadQuestion(RagError):
    code = "bad_question"


class BadRequest(RagError):
    code = "bad_request"


class CorpusError(RagError):
    code = "corpus_error"


class IndexMissing(RagError):
    code = "index_missing"


class IndexMismatch(RagError):
    """The index on disk was built with another model, chunker or format: it must be rebuilt."""

    code = "index_mismatch"


class IndexOutdated(IndexMismatch):
    """The index on disk was made by another version of rag or with other chunk settings (its format, or how it
    splits and reads text), with the same model: `rag ask` and `rag serve` rebuild it from the corpus."""


class OtherWords(IndexOutdated):
    """The index on disk was made with other word rules (another language's stop words and stems): its terms are
    made again, its vectors kept (`rag index` re-embeds nothing for it)."""


class ReaderUnavailable(RagError):
    """No reader process could be started (a full process table, a missing Python): a build stops, the index it
    would have replaced keeps serving."""

    code = "reader_unavailable"


class IndexCorrupt(RagError):
    code = "index_corrupt"


REBUILD = "run `rag index --full` to rebuild it"  # what every IndexCorrupt and IndexOutdated message ends with


class ModelError(RagError):
    code = "model_error"


class EngineError(RagError):
    """The search engine cannot be used: its library is not installed, or its server cannot be reached."""

    code = "engine_error"


class Conflict(RagError):
    """The request clashes with the current state (a rebuild already running, a file name already taken)."""

    code = "conflict"


class Cancelled(RagError):
    """A rebuild was cancelled (`DELETE /api/reindex`); the index it would have replaced is untouched."""

    code = "cancelled"


class StorageError(RagError):
    """The server cannot write where it must (a read-only or unwritable folder): its condition, not the client's."""

    code = "storage_error"


class StorageFull(StorageError):
    """The server's disk or quota is full: nothing was written."""

    code = "insufficient_storage"


class NotFound(RagError):
    code = "not_found"


class Unauthorized(RagError):
    code = "unauthorized"


class Forbidden(RagError):
    code = "forbidden"


class Busy(RagError):
    """The server has more questions waiting than it takes (`ask_queue`): ask again shortly."""

    code = "busy"
    retry_after = 1  # seconds: a full queue (64 questions at ~15 ms on two workers) drains in about half of it
