"""Settings: one object, every field with a default, a help string and an environment variable.

`Settings.from_env()` reads `RAG_<FIELD>` variables; the CLI's options override them. The settings table in the
README is generated from `FIELDS` (a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine_types import ENGINES
from .errors import BadRequest

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# auto: a new index is int8 (with backend onnx), which kept every quality figure of bench/quality.py within 1 point
# of fp32 (answer accuracy -0.4, R@1 -0.2, unanswerable abstention +1.5, calibration error -1.0 on check; dev the
# same) and built indexes 1.4-1.5x faster (bench/encoder.py), the rule of issue #12; an existing index keeps the
# precision it was built with, also through a full rebuild, so that an index built before is not refused, its
# updates re-embed only what changed, and a server and a separate `rag index` agree on it.
DEFAULT_PRECISION = "auto"
PRECISIONS = ("auto", "fp32", "int8")
LANGUAGE = re.compile(r"auto|none|[a-zA-Z]{2}")

# The limits on what one question may ask for, defined here only: the checks (pipeline.py), the settings check
# below, the API's field descriptions (server.py) and the chat pages (pages.py) all read them.
# 2,000: the encoder reads the first 256 word pieces of a question (the bundled model's max_seq_length), about
# 1,400 characters of English (5.3 a piece on the bundled corpus); longer text is a pasted document, not a question
# (the longest of bench/tuning.jsonl has 114 characters).
MAX_QUESTION_CHARS = 2000
# 50: retrieval proposes 50 candidates from each side (retrieval.CANDIDATES), so no allowed top_k widens the search.
MAX_TOP_K = 50
# 20 earlier questions: a follow-up is read with the last one only (conversation.py), but the chat without
# JavaScript answers every earlier turn again on each post (pages.py), so this bounds that work.
MAX_HISTORY = 20
COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")  # Milvus's rule for collection names


def _setting(default: Any, help: str, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    corpus: Path = _setting(Path("corpus"), "Folder of documents to index (searched recursively).")
    index: Path = _setting(Path("index"), "Folder where the built index is kept.")
    model: str = _setting(
        DEFAULT_MODEL,
        "Sentence-transformers model: a folder, a name cached locally, or the bundled default.",
    )
    backend: str = _setting("onnx", "Encoder runtime: onnx (exported once, locally; ~3x faster) or torch.")
    precision: str = _setting(
        DEFAULT_PRECISION,
        "Encoder weights: int8 (backend onnx; quantized once, locally: indexing and questions ~1.4x faster than "
        "fp32, answers within a point; README, Quality), fp32, or auto: the precision an existing index was built "
        "with, else int8 (fp32 with backend torch). An index is read with the precision it was built with.",
    )
    language: str = _setting(
        "auto",
        "Language the model reads, for word rules (stemming, stop words, question forms) and the note on questions "
        "in other languages: auto (en for the bundled model, none for others), a code such as en or de, or none "
        "(a multilingual model: no word rules).",
    )
    chunk_words: int = _setting(120, "Target chunk size in words; chunks are whole sentences.")
    chunk_overlap: int = _setting(1, "Sentences shared by neighbouring chunks of a document.")
    top_k: int = _setting(5, "Passages cited per answer.")
    # The default is fitted by train/fit_answer.py (the highest threshold at which at most 5% of the answerable
    # tune questions abstain; rag/answer/weights.json "min_confidence"; a test keeps the two equal).
    min_confidence: float = _setting(
        0.22, "Below this confidence (the probability that the answer is right) the answer is withheld."
    )
    # 8: with lanes (`OnnxEncoder.encode_batches`), fp32 sentences encoded 1.2x as fast as in batches of 16, 1.5x as
    # fast as in batches of 32, 1.1x as fast as one a call (bench/encoder.py, 2026-12-01, median of three rounds).
    batch_size: int = _setting(8, "Texts per encoder batch while indexing (precision int8 runs one text a call).")
    max_file_bytes: int = _setting(
        40_000_000, "Corpus files larger than this are skipped, and reported (40 MB of text is about 6 million words)."
    )
    # 1,536 MB: a worker with every reader's library loaded takes 52 MB of address space; reading a 40 MB text file
    # (max_file_bytes) peaks at 318 MB (bench/sandbox.py), so this leaves 5x room for PDFs and DOCX; the PDF of
    # nested forms of issue #20 took 2.9 GB at 20 levels. Two workers at most: 3 GB in all, within a laptop's 8.
    reader_memory_mb: int = _setting(
        1536,
        "Memory (address space) of each reader process; a file that needs more is skipped, and reported "
        "(README, Security).",
    )
    # 60 s: the figure; the slowest file of the bundled corpus and squad11/corpus reads in 0.13 s
    # (bench/sandbox.py), and pypdfium2 reads hundreds of pages a second (bench/readers.py).
    reader_seconds: float = _setting(
        60.0, "Longest one file may take to read; a file that takes longer is skipped, and reported."
    )
    # 10 million characters: about 1.6 million words, some 3,500 book pages, which take about 8 minutes to embed on
    # 2 cores (bench/indexing.py: 197,000 words in 58 s at int8); a few kilobytes of PDF made 6.3 million
    # characters in issue #20.
    max_text_chars: int = _setting(
        10_000_000, "Text of one document past this many characters is cut (the build report says so)."
    )
    admin_token: str = _setting(
        "", "Bearer token for the server's admin routes (upload, rebuild); empty turns them off.", secret=True
    )
    read_token: str = _setting(
        "",
        "Token the server asks of every reader (bearer token, or the chat's login form); empty leaves asking and "
        "reading open to anyone who reaches the port.",
        secret=True,
    )
    max_upload_bytes: int = _setting(5_000_000, "Largest document the server accepts as an upload.")
    # 64: at about 15 ms a question on two cores (bench/latency.py), a full queue is answered within half a second.
    ask_queue: int = _setting(
        64, "Questions the server lets wait for the model; one more gets 503 with Retry-After, not a long wait."
    )
    # 60 s: the largest body the server takes (an upload of max_upload_bytes, 5 MB) arrives in 40 s at 1 Mbit/s, a
    # slow uplink; nginx waits 60 s too (client_body_timeout, between two reads where this bounds the whole body).
    body_seconds: float = _setting(
        60.0,
        "Longest a request body may take to arrive; one that stops arriving gets 408 and its connection is closed "
        "(raise it with max_upload_bytes on slow links).",
    )
    # 8 hours: a working day; OWASP's Session Management Cheat Sheet gives 4 to 8 hours as the absolute timeout of an
    # application used for a full office day.
    session_hours: float = _setting(
        8.0, "How long the chat's sign-in (read_token) lasts; signing out ends it on the server at once."
    )
    engine: str = _setting("local", "Search engine: " + " or ".join(e.summary for e in ENGINES.values()) + ".")
    milvus_uri: str = _setting(
        "",
        "Milvus to use with engine milvus: http://host:19530 for a server, or a path for Milvus Lite (empty: "
        "a Milvus Lite folder beside the index, INDEX-milvus.db).",
    )
    milvus_token: str = _setting("", "Token for a Milvus server (user:password, or an API key).", secret=True)
    collection: str = _setting("rag_chunks", "Milvus collection that holds the chunks (engine milvus).")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, type(f.default)) or isinstance(value, bool):
                object.__setattr__(self, f.name, _coerce(f.default, value))
        for name in ("corpus", "index"):
            object.__setattr__(self, name, getattr(self, name).expanduser())
        checks = [
            (self.chunk_words >= 10, f"chunk_words must be at least 10, not {self.chunk_words}"),
            (0 <= self.chunk_overlap <= 5, f"chunk_overlap must be from 0 to 5, not {self.chunk_overlap}"),
            (1 <= self.top_k <= MAX_TOP_K, f"top_k must be from 1 to {MAX_TOP_K}, not {self.top_k}"),
            (0 <= self.min_confidence <= 1, f"min_confidence must be from 0 to 1, not {self.min_confidence}"),
            (self.backend in ("onnx", "torch"), f"backend must be onnx or torch, not {self.backend!r}"),
            (self.precision in PRECISIONS, f"precision must be auto, fp32 or int8, not {self.precision!r}"),
            (
                self.precision != "int8" or self.backend == "onnx",
                f"precision {self.precision} needs backend onnx (set RAG_BACKEND=onnx, or RAG_PRECISION=fp32)",
            ),
            (
                LANGUAGE.fullmatch(self.language) is not None,
                f"language must be auto, none or a code such as en, not {self.language!r}",
            ),
            (self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}"),
            (self.max_file_bytes >= 1, f"max_file_bytes must be at least 1, not {self.max_file_bytes}"),
            (self.reader_memory_mb >= 256, f"reader_memory_mb must be at least 256, not {self.reader_memory_mb}"),
            (self.reader_seconds > 0, f"reader_seconds must be more than 0, not {self.reader_seconds}"),
            (self.max_text_chars >= 1, f"max_text_chars must be at least 1, not {self.max_text_chars}"),
            (self.max_upload_bytes >= 1, f"max_upload_bytes must be at least 1, not {self.max_upload_bytes}"),
            (self.ask_queue >= 1, f"ask_queue must be at least 1, not {self.ask_queue}"),
            (self.engine in ENGINES, f"engine must be {' or '.join(ENGINES)}, not {self.engine!r}"),  # engine_types
            (
                COLLECTION.fullmatch(self.collection) is not None,
                f"collection must be letters, digits and underscores, starting with a letter, not {self.collection!r}",
            ),
            (self.body_seconds > 0, f"body_seconds must be more than 0, not {self.body_seconds}"),
            (self.session_hours > 0, f"session_hours must be more than 0, not {self.session_hours}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadRequest(message)

    @property
    def model_language(self) -> str | None:
        """The language code the model reads, or None for a multilingual (or unknown) one."""
        if self.language == "auto":
            return "en" if self.model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}") else None
        return None if self.language == "none" else self.language.lower()

    @property
    def milvus_path(self) -> str:
        """Where Milvus is: the server's URI, or Milvus Lite's folder."""
        return self.milvus_uri or str(self.index.with_name(self.index.name + "-milvus.db"))

    def precision_for(self, recorded: str | None) -> str:
        """The precision to encode with: the setting, or for auto the one an index was built with (`recorded`;
        None when there is no index yet) or, for a new index, int8 with backend onnx and fp32 with torch."""
        if self.precision != "auto":
            return self.precision
        if self.backend != "onnx":
            return "fp32"
        return recorded or "int8"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then `RAG_*` environment variables, then `overrides` that are not None."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(f"RAG_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = _coerce(f.default, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(default: Any, raw: Any) -> Any:
    """`raw` (text from the environment, or a value of another type) as the type of `default`."""
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(raw, bool) or (isinstance(default, int) and isinstance(raw, float) and not raw.is_integer()):
        raise BadRequest(f"cannot read {raw!r} as {type(default).__name__}")
    try:
        return type(default)(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"cannot read {raw!r} as {type(default).__name__}") from None


FIELDS = [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(Settings)]


def settings_table() -> str:
    """The README's settings table (a test keeps the README equal to this)."""
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    rows += [
        f"| {name} | `RAG_{name.upper()}` | {f'`{default}`' if default != '' else '(empty)'} | {help} |"
        for name, default, help in FIELDS
    ]
    return "\n".join(rows)
