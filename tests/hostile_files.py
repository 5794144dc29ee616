"""Small files built to make a reader's library spend gigabytes or minutes (issue #20), made in the test run, never
committed. Each is a valid file of its format: only the cost of reading it is hostile."""

from __future__ import annotations

import zlib


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (object 1 the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % at for at in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def _page(contents: bytes, resources: bytes = b"") -> list[bytes]:
    """Catalog, pages, one page (objects 1-3), its font (4) and its content stream (5)."""
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> " + resources + b">> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        contents,
    ]


def nested_forms_pdf(levels: int = 30) -> bytes:
    """The page draws form X1; each form draws the next one twice; the last shows a word: 2^levels words for PDFium
    to lay out, from a file of a few kilobytes (issue #20: 30 levels aborted the server with SIGABRT)."""
    first = 6
    objects = _page(_stream(b"/X Do"), b"/XObject << /X %d 0 R >> " % first)
    for level in range(levels):
        number = first + level
        last = level == levels - 1
        body = b"BT /F1 12 Tf 72 720 Td (word) Tj ET" if last else b"/X Do /X Do"
        inner = b"" if last else b"/XObject << /X %d 0 R >> " % (number + 1)
        extra = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> %s>> " % inner
        objects.append(_stream(body, extra))
    return pdf(objects)


def inflating_pdf(megabytes: int = 200) -> bytes:
    """One page whose FlateDecode content stream inflates to `megabytes` MB of text operators (issue #20: 200 MB,
    from a 583 kB file, took 2.6 GB to read)."""
    line = b"BT /F1 12 Tf 72 720 Td (word word word word word) Tj ET\n"
    content = zlib.compress(line * (megabytes * 1_000_000 // len(line)), 9)
    return pdf(_page(_stream(content, b"/Filter /FlateDecode ")))


def plain_pdf(text: bytes = b"A plain page of text.") -> bytes:
    """A one-page PDF that reads at once, to check that a reader after a hostile file works."""
    return pdf(_page(_stream(b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET")))
