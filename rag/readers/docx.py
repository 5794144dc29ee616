"""Word documents (.docx), through python-docx (MIT): the one maintained pure-Python reader of the format.

The body is read in order, paragraphs and tables interleaved as in the document. Headings are written markdown
style ("# Title", "## Heading 2"), each its own paragraph; a table is one paragraph, one row a line, cells joined
by " | " (a cell merged across columns appears once). Page headers and footers, footnotes, comments and text boxes
are left out: boilerplate or asides, not the body. The title is the document's core property title when it means
something, else its first Title or Heading paragraph, else None.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from .base import Extracted, Unreadable
from .titles import meaningful

if TYPE_CHECKING:
    from docx.document import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

# python-docx holds every part of the package in memory, so a small file that unzips to gigabytes (a zip bomb)
# is refused; a thousand-page report with its figures unzips to well under 100 MB.
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024


def read_docx(data: bytes) -> Extracted:
    """The body's paragraphs and tables in order, blocks separated by blank lines."""
    from docx.table import Table  # at run time; the one above is for type checking

    document = _open(data)
    blocks: list[str] = []
    first_heading = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(_table(item))
            continue
        level = heading_level(item)
        text = item.text.strip()
        if text and level:
            first_heading = first_heading or text
            text = f"{'#' * level} {text}"
        blocks.append(text)
    title = meaningful(document.core_properties.title) or meaningful(first_heading)
    return Extracted("\n\n".join(b for b in blocks if b), "docx", title)


def _open(data: bytes) -> Document:
    import docx  # lazily: python-docx and lxml take ~0.13 s to import

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unzipped = sum(info.file_size for info in package.infolist())
        if unzipped > MAX_UNZIPPED_BYTES:
            raise Unreadable(f"DOCX unzips to {unzipped / 1e6:.0f} MB, over {MAX_UNZIPPED_BYTES / 1e6:.0f} MB")
        return docx.Document(io.BytesIO(data))
    except Unreadable:
        raise
    except Exception as exc:  # a broken zip, a missing part or bad XML: each library layer raises its own type
        raise Unreadable(f"not a Word document, or corrupt ({type(exc).__name__}: {exc})"[:200]) from None


def heading_level(paragraph: Paragraph) -> int:
    """1 for the Title style, N for Heading N, 0 for any other paragraph."""
    style = paragraph.style
    name = (style.name or "").lower() if style is not None else ""
    if name == "title":
        return 1
    if name.startswith("heading "):
        level = name.removeprefix("heading ").strip()
        return int(level) if level.isdigit() and 1 <= int(level) <= 6 else 0  # markdown has six levels
    return 0


def _table(table: Table) -> str:
    """One line a row, cells joined by " | "; a cell spanning several columns is repeated by python-docx: kept once."""
    lines = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)
