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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Extracted, Unreadable
from .titles import meaningful

if TYPE_CHECKING:
    from docx.document import Document
    from docx.table import Table

# python-docx holds every part of the package in memory, so a small file that unzips to gigabytes (a zip bomb)
# is refused; a thousand-page report with its figures unzips to well under 100 MB.
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024


def read_docx(data: bytes) -> Extracted:
    """The body's paragraphs and tables in order, blocks separated by blank lines."""
    from docx.table import Table  # at run time; the one above is for type checking

    document = _open(data)
    levels = heading_levels(document)
    blocks: list[str] = []
    first_heading = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(_table(item))
            continue
        level = levels.of(item._p.style)
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
    except (Unreadable, MemoryError):  # out of memory is the reader process's limit, not a damaged file
        raise
    except Exception as exc:  # a broken zip, a missing part or bad XML: each library layer raises its own type
        raise Unreadable(f"not a Word document, or corrupt ({type(exc).__name__}: {exc})"[:200]) from None


@dataclass(frozen=True)
class HeadingLevels:
    """The heading level of each paragraph style, read once from the styles part.

    python-docx's `Paragraph.style` looks the style up anew for every paragraph, and for a paragraph without a
    style of its own (most of them) scans every style for the default one: 0.5 ms a paragraph with Word's 160
    styles, so 85,000 one-run paragraphs (a 48 kB file) took 41 s, and a file that adds styles costs more for each.
    The lookup follows python-docx's rules (`Styles.get_by_id`): an id that is missing, empty or names a style of
    another type means the default paragraph style, and that is the last paragraph style marked as default.
    """

    by_id: dict[str, int | None]  # None: the id names a style of another type
    default: int = 0

    def of(self, style_id: str | None) -> int:
        """The heading level of a paragraph whose `w:pStyle` is `style_id` (None: it has none)."""
        level = self.by_id.get(style_id) if style_id else None
        return self.default if level is None else level


def heading_levels(document: Document) -> HeadingLevels:
    """The heading level of every style of `document`, by style id; the first style with an id wins, as in
    python-docx (an XPath lookup that takes the first match)."""
    from docx.enum.style import WD_STYLE_TYPE

    by_id: dict[str, int | None] = {}
    default = 0
    for style in document.styles.element.style_lst:
        paragraph_style = style.type == WD_STYLE_TYPE.PARAGRAPH
        level = heading_level(style.name_val) if paragraph_style else None
        if style.styleId is not None:
            by_id.setdefault(style.styleId, level)
        if paragraph_style and style.default:
            default = level or 0
    return HeadingLevels(by_id, default)


def heading_level(style_name: str | None) -> int:
    """1 for the Title style, N for Heading N, 0 for any other style."""
    name = (style_name or "").lower()
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
