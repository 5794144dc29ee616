"""Hostile files against the readers (issue #20): a small file that costs minutes, code smuggled into the index, a
page that picks its own codec.

Every hostile file is built here from a few lines, never committed. A reader that could spend much time or memory
on one runs in a child process under an address-space limit (RLIMIT_AS) and a wall-clock timeout, so that a
regression fails the test instead of stalling or exhausting the test run.
"""

from __future__ import annotations

import functools
import io
import json
import resource
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from rag.readers import read_docx
from rag.readers.docx import heading_level, heading_levels

# The child's address space: Python with lxml or selectolax and a small file needs ~0.3 GB; the attacks of the issue
# took 2.6 to 7.9 GB, so a regression hits this limit (MemoryError) long before the machine's.
CHILD_MEMORY = 2 * 1024**3

CHILD = """
import json, sys, time
from rag import readers
reader = getattr(readers, sys.argv[1])
data = open(sys.argv[2], "rb").read()
start = time.perf_counter()
try:
    result = {"chars": len(reader(data).text)}
except readers.Unreadable as exc:
    result = {"unreadable": str(exc)}
result["seconds"] = time.perf_counter() - start
print(json.dumps(result))
"""


def read_in_child(tmp_path: Path, reader: str, data: bytes, seconds: float) -> dict[str, Any]:
    """`reader`'s result on `data` in a child process with a memory limit; the test fails past `seconds`."""
    path = tmp_path / "hostile.bin"
    path.write_bytes(data)
    limit = functools.partial(resource.setrlimit, resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, reader, str(path)],
            preexec_fn=limit,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{reader} took over {seconds:g} s on a {len(data) / 1000:.0f} kB file")
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- DOCX: styles read once ----------------------------------------------------------------------------------------


def docx_with(body: str, styles: str = "") -> bytes:
    """python-docx's blank document with `body` as the body's XML and `styles` added to its styles part."""
    import docx

    blank = io.BytesIO()
    docx.Document().save(blank)
    out = io.BytesIO()
    with zipfile.ZipFile(blank) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                head, _, rest = data.partition(b"<w:body>")
                data = head + b"<w:body>" + body.encode() + b"<w:sectPr" + rest.partition(b"<w:sectPr")[2]
            elif item.filename == "word/styles.xml":
                data = data.replace(b"</w:styles>", styles.encode() + b"</w:styles>")
            target.writestr(item.filename, data)
    return out.getvalue()


def test_docx_of_many_paragraphs_and_styles_is_read_in_linear_time(tmp_path: Path) -> None:
    # python-docx scanned every style for each paragraph's default style: 20,000 paragraphs and 2,000 added styles
    # (a 30 kB file) took minutes; read once, the styles cost nothing per paragraph (about 1 s here).
    styles = "".join(
        f'<w:style w:type="character" w:styleId="c{i}"><w:name w:val="c{i}"/></w:style>' for i in range(2000)
    )
    data = docx_with("<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 20_000, styles)
    assert len(data) < 100_000
    assert read_in_child(tmp_path, "read_docx", data, seconds=30)["chars"] == len("x\n\n" * 20_000) - 2


def test_heading_levels_match_python_docx_style_lookup() -> None:
    """The styles read once give each paragraph the style python-docx's own lookup gives it: by id, the first style
    with an id, the default paragraph style for a missing, empty, unknown or character style id."""
    import docx

    styles = (
        '<w:style w:type="paragraph" w:styleId="Dup"><w:name w:val="heading 3"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Dup"><w:name w:val="heading 5"/></w:style>'
        '<w:style w:type="character" w:styleId="Chars"><w:name w:val="heading 2"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Odd"><w:name w:val="Heading 9"/></w:style>'
    )
    ids = ["Heading1", "Title", "Heading2", "Dup", "Chars", "Odd", "Missing", "", None]
    body = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="{i}"/></w:pPr><w:r><w:t>p</w:t></w:r></w:p>' if i is not None else "<w:p/>"
        for i in ids
    )
    document = docx.Document(io.BytesIO(docx_with(body, styles)))
    levels = heading_levels(document)
    paragraphs = document.paragraphs
    assert [levels.of(p._p.style) for p in paragraphs] == [heading_level(p.style.name) for p in paragraphs]
    assert [levels.of(p._p.style) for p in paragraphs] == [1, 1, 2, 3, 0, 0, 0, 0, 0]


def test_default_paragraph_style_can_be_a_heading() -> None:
    """The last paragraph style marked as default applies to paragraphs without a style, as in python-docx."""
    styles = '<w:style w:type="paragraph" w:default="1" w:styleId="Big"><w:name w:val="heading 2"/></w:style>'
    body = "<w:p><w:r><w:t>Plain</w:t></w:r></w:p>"
    assert read_docx(docx_with(body, styles)).text == "## Plain"
