"""PDF, through pypdfium2 (Google's PDFium, the engine of Chrome's viewer; BSD-3-Clause / Apache-2.0 wheels).

Chosen by measurement (`bench/readers.py`; bench/results/readers.json): on generated PDFs (one column; two columns)
and real ones (a two-column ACL paper, a 36-page pdfTeX manual, the DMCA summary from Acrobat PDFWriter, a
magazine table page from InDesign), PDFium extracted 120 to 490 pages/s, pypdf 16 to 134, pdfminer.six 4 to 23: PDFium
was 3.6 to 16 times as fast as pypdf and 19 to 38 times as fast as pdfminer on every file. All three follow the
content stream, which is column by column in two-column papers from LaTeX or Word (word order 1.0 on the
generated two-column file); none reorders columns written line by line across the page, not even pdfminer's layout
analysis (word order ~0.51 for all three). PDFium also marks the hyphen of a word broken at a line end and drops the
break ("Ex-/isting" gives "Existing"), where pypdf and pdfminer leave 11 to 112 words a file cut in two halves.

Pages are joined with a blank line, so that no sentence spans two pages, unless a page ends in a wrapped line that the
next page goes on from (`text.lines.wraps`): then with a line break, which the splitter reads as a space; `pages`
holds where each one starts. A table of contents' dot leaders ("Introduction ....... 12") are dropped with their page
number. PDFium is not thread-safe, hence the lock: the indexer and an upload may read PDFs at the same time.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from ..text.lines import wraps
from .base import Extracted, Unreadable
from .titles import first_heading, meaningful

if TYPE_CHECKING:
    import pypdfium2

PAGE_BREAK = "\n\n"
WRAPPED_PAGE_BREAK = "\n"  # after a page whose last line is wrapped: the sentence goes on on the next page
# Four or more dots (spaced or not, or ellipses) and a page number at a line's end: a table of contents' leader.
DOT_LEADER = re.compile(r"[ \t]*(?:[.…·][ \t]*){4,}(?:\d+|[ivxlc]{1,4})?[ \t]*$", re.M)
SOFT_HYPHEN = re.compile("[\x02\ufffe]")  # PDFium's mark where it joined a word hyphenated at a line end
LINE_END = re.compile(r"\r\n?")
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # left by broken font encodings; never text
TRAILING_SPACE = re.compile(r"[ \t]+$", re.M)
LOAD_ERRORS = {  # PDFium's FPDF_ERR_* codes from FPDF_GetLastError
    2: "PDF file cannot be opened",
    3: "not a PDF, or corrupt",
    4: "PDF encrypted with a password; remove the password to index it",
    5: "PDF with an unsupported security handler",
}
_lock = threading.Lock()


def read_pdf(data: bytes) -> Extracted:
    """The text of every page in order, pages joined by a blank line; raises `Unreadable` without a text layer."""
    with _lock:
        doc = _open(data)
        try:
            page_texts = [_page_text(doc, i) for i in range(len(doc))]
            title = meaningful(doc.get_metadata_dict().get("Title"))
        finally:
            doc.close()
    if not page_texts:
        raise Unreadable("PDF without pages")
    text, pages = _join(page_texts)
    if not any(ch.isalnum() for ch in text):
        raise Unreadable("PDF with no text layer (scanned?); OCR is not supported, so it cannot be indexed")
    return Extracted(text, "pdf", title or first_heading(text, heading_like=True), pages)


def _open(data: bytes) -> pypdfium2.PdfDocument:
    import pypdfium2  # lazily: loading PDFium takes ~0.1 s, which `rag --help` need not pay

    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise Unreadable(LOAD_ERRORS.get(exc.err_code or 0, f"PDF that PDFium cannot read ({exc})")) from None


def _page_text(doc: pypdfium2.PdfDocument, index: int) -> str:
    page = doc[index]
    try:
        textpage = page.get_textpage()
        try:
            raw = textpage.get_text_bounded()  # full Unicode, unlike get_text_range's UCS-2
        finally:
            textpage.close()
    finally:
        page.close()
    return clean(raw)


def clean(raw: str) -> str:
    """A page's text: hyphenation marks dropped, line ends as "\\n", no control characters or trailing blanks."""
    text = CONTROLS.sub("", LINE_END.sub("\n", SOFT_HYPHEN.sub("", raw)))
    return TRAILING_SPACE.sub("", DOT_LEADER.sub("", text)).strip()


def _join(page_texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """The pages joined by `PAGE_BREAK` (`WRAPPED_PAGE_BREAK` where a sentence goes on), and where each starts."""
    parts, starts, pos = [], [], 0
    for i, page_text in enumerate(page_texts):
        if i:
            parts.append(WRAPPED_PAGE_BREAK if _goes_on(page_texts[i - 1], page_text) else PAGE_BREAK)
            pos += len(parts[-1])
        starts.append(pos)
        parts.append(page_text)
        pos += len(page_text)
    return "".join(parts), tuple(starts)


def _goes_on(page: str, next_page: str) -> bool:
    """Whether `page` ends in a wrapped line that the first line of `next_page` goes on from."""
    lines = page.split("\n")
    widest = max(len(line.strip()) for line in lines)
    return bool(next_page) and wraps(lines[-1].strip(), next_page.split("\n", 1)[0].strip(), widest)
