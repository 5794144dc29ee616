"""Readers: one module a file format, each turning a file's bytes into the text that is indexed.

`READERS` maps a file suffix to its reader. A reader returns an `Extracted`: the text every offset of the index
refers to, the title when the format carries one, and where each page starts for paged formats. A file that holds
no usable text raises `Unreadable` with the reason, which is reported as a skipped file. Each reader imports its
library when first called, so importing this package stays fast.
"""

from __future__ import annotations

from .base import Extracted, Reader, Unreadable
from .docx import read_docx
from .html import read_html
from .pdf import read_pdf
from .text import read_markdown, read_text

# Bump when any reader's output changes for the same bytes, so that text cached by content hash is extracted anew.
EXTRACTION_VERSION = 2

READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".md": read_markdown,
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
}

__all__ = [
    "EXTRACTION_VERSION",
    "READERS",
    "Extracted",
    "Reader",
    "Unreadable",
    "read_docx",
    "read_html",
    "read_markdown",
    "read_pdf",
    "read_text",
]
