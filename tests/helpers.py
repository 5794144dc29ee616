"""Helpers shared by the tests: the bundled corpus, a small corpus of our own, writing corpora."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.embedding import Encoder

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

# Three short documents on distinct topics, for small indexes built with the real model.
SMALL_DOCS = {
    "tea.txt": (
        "Green Tea Notes\n\n"
        "Green tea is grown on the hills of Shizuoka. The leaves are steamed soon after picking to stop "
        "oxidation. Farmers harvest the first flush in early May."
    ),
    "bridges.md": (
        "# Suspension Bridges\n\n"
        "The Akashi Kaikyo Bridge has a central span of 1,991 metres. It links Kobe with Awaji Island. "
        "Construction began in 1988 and the bridge opened in April 1998."
    ),
    "trains/shinkansen.txt": (
        "The Shinkansen\n\n"
        "The first Shinkansen line opened in October 1964 between Tokyo and Osaka. Trains on the line now run "
        "at up to 285 km/h. The network carries about 400,000 passengers a day on the Tokaido route."
    ),
}


def write_corpus(folder: Path, docs: Mapping[str, str | bytes]) -> Path:
    """Write `docs` (relative path -> text or raw bytes) below `folder`; returns `folder`."""
    for name, content in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def make_pdf(pages: list[list[str]], title: str = "", encrypt: str | None = None) -> bytes:
    """A PDF (reportlab) with one page a list of lines, each line drawn as a string of its own."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, encrypt=encrypt, invariant=True)
    pdf.setTitle(title)
    for lines in pages:
        for i, line in enumerate(lines):
            pdf.drawString(72, 760 - 16 * i, line)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def assistant_over_small_docs(root: Path, encoder: Any) -> Any:
    """An `Assistant` over `SMALL_DOCS`, its corpus and index written below `root`."""
    from rag import Assistant, Settings, indexing

    settings = Settings(corpus=write_corpus(root / "corpus", SMALL_DOCS), index=root / "index")
    index, _ = indexing.build(settings, encoder, progress=False)
    return Assistant(settings, index, encoder)


def small_index(root: Path, encoder: Any) -> Any:
    """SMALL_DOCS written below `root` and indexed with `encoder`: the `Settings` of that corpus and index."""
    from rag import indexing
    from rag.config import Settings

    settings = Settings(corpus=write_corpus(root / "corpus", SMALL_DOCS), index=root / "index")
    indexing.build(settings, encoder, progress=False)
    return settings


def reuse(encoder: Encoder) -> Callable[[Encoder], Any]:
    """A stand-in for `Encoder._load` (monkeypatched in) that hands every new encoder the loaded model of
    `encoder`, the session's, so that the code under test does not load one of its own."""
    encoder._ensure_loaded()
    return lambda self: (encoder._run, encoder._run_batches, encoder.dimension)


# Sets the address-space limit, then becomes the command: the limit is set by the child itself, not by a
# `preexec_fn` run between fork and exec, which aborts the child (SIGABRT) when the test process holds gRPC's
# threads (pymilvus, after the Milvus tests): "Other threads are currently calling into gRPC, skipping fork()".
_LIMITED = "import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (n, n)); " + (
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def with_memory_limit(command: list[str], limit_bytes: int) -> list[str]:
    """`command` run with its address space limited to `limit_bytes` (RLIMIT_AS, kept across exec)."""
    return [sys.executable, "-c", _LIMITED, str(limit_bytes), *command]
