"""Plain text (.txt) and Markdown (.md), in any encoding; the text is kept exactly as decoded, less a byte-order mark.

No library beyond the standard one for UTF-8/16/32; legacy encodings are detected by chardetng (see `encoding`).
Line endings are not normalised: every offset of the index refers to the decoded text as it is. The title is the
first heading-like line (see `titles.first_heading`), or None when there is none.
"""

from __future__ import annotations

from .base import Extracted
from .encoding import decode
from .titles import first_heading


def read_text(data: bytes) -> Extracted:
    """A .txt file."""
    text = decode(data)
    return Extracted(text, "text", first_heading(text))


def read_markdown(data: bytes) -> Extracted:
    """A .md file: read as plain text (the markup stays, so offsets match the file); headings give the title."""
    text = decode(data)
    return Extracted(text, "markdown", first_heading(text))
