"""The file readers: every file is built here (PDFs with reportlab, DOCX with python-docx), nothing is shipped."""

from __future__ import annotations

import codecs
import io
import random
import zipfile
from pathlib import Path

import pytest

from rag.readers import READERS, Extracted, Unreadable, read_docx, read_html, read_markdown, read_pdf, read_text
from rag.readers.titles import first_heading, meaningful

from .helpers import make_pdf

FRENCH = "Le café est très bon. Déjà vu, naïve façade à côté de l'hôtel, près de la forêt où vivait sa grand-mère.\n"
ROOT = Path(__file__).resolve().parent.parent
NOISE = bytes(random.Random(0).choices(range(1, 256), k=4000))
ENGLISH_1252 = "He said “hello” – it’s only 5 € for the coffee… The résumé was naïve, but the decision was final.\n"


def read_twice(reader, data: bytes) -> Extracted:
    first, second = reader(data), reader(data)
    assert first == second  # the same bytes always give the same text: every offset of the index depends on it
    return first


# --- plain text ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + "Grüße\r\nzwei".encode(), "Grüße\r\nzwei"),
        (codecs.BOM_UTF16_LE + "Grüße\nkafé".encode("utf-16-le"), "Grüße\nkafé"),
        (codecs.BOM_UTF16_BE + "Grüße\nkafé".encode("utf-16-be"), "Grüße\nkafé"),
        (codecs.BOM_UTF32_LE + "Grüße 😀".encode("utf-32-le"), "Grüße 😀"),
        (FRENCH.encode("latin-1"), FRENCH),
        (ENGLISH_1252.encode("cp1252"), ENGLISH_1252),
        ("Все люди рождаются свободными и равными в своем достоинстве и правах.".encode("cp1251"), None),
        (b"plain ascii\r\nwith CRLF\rand CR\n", "plain ascii\r\nwith CRLF\rand CR\n"),
    ],
)
def test_text_decodes_any_encoding_and_keeps_line_ends(data: bytes, expected: str | None) -> None:
    text = read_twice(read_text, data).text
    if expected is None:
        assert text.startswith("Все люди")
    else:
        assert text == expected


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        NOISE,  # random bytes without a NUL
        codecs.BOM_UTF16_LE + b"\x00\xd8",  # a lone surrogate: the mark lies
    ],
)
def test_binary_is_unreadable(data: bytes) -> None:
    with pytest.raises(Unreadable, match="binary|garbled|byte-order mark"):
        read_text(data)


def test_text_title_skips_a_slogan_in_another_script() -> None:
    body = "Japan and Ukraine have cooperated for decades on energy and security. " * 20
    text = f"Новини України та Світу, авторитетно.\n\n\nJapan–Ukraine relations\n\n{body}"
    assert read_text(text.encode()).title == "Japan–Ukraine relations"
    assert read_text(f"Japan–Ukraine relations\n\n{body}".encode()).title == "Japan–Ukraine relations"
    bilingual = "Київ і Токіо співпрацюють. " * 20 + body  # no script dominates: the first line stands
    assert first_heading(f"Новини дня\n\n{bilingual}") == "Новини дня"


def test_title_of_the_bundled_article_under_a_ukrainian_slogan() -> None:
    path = next((ROOT / "corpus").glob("001_*.txt"), None)
    if path is None:
        pytest.skip("corpus/001_*.txt is not there")
    title = read_text(path.read_bytes()).title
    assert title is not None and title.startswith("Our countries – both Japan and Ukraine")


def test_markdown_title_and_format() -> None:
    md = "[![build](https://ci/badge.svg)](https://ci)\n\n# The Project\n\nIt does *things*.\n\n## Usage\n"
    got = read_twice(read_markdown, md.encode())
    assert (got.format, got.title, got.text) == ("markdown", "The Project", md)
    assert read_markdown(b"---\ntitle: 'From front matter'\n---\n# Heading\n").title == "From front matter"
    assert read_text(b"\n\n---\n2024-05-30\n").title is None


def test_meaningful_titles() -> None:
    for placeholder in ["", "  ", "Untitled", "Microsoft Word - report.docx", "report_final.pdf", "C:\\x\\y.doc"]:
        assert meaningful(placeholder) is None
    assert meaningful("  Annual   Report 2024 ") == "Annual Report 2024"


# --- PDF -------------------------------------------------------------------------------------------------------


def test_pdf_pages_and_offsets() -> None:
    pages = [["First page title", "Alpha sentence one."], ["Beta on page two."], [], ["Gamma on page four."]]
    got = read_twice(read_pdf, make_pdf(pages, title="Microsoft Word - draft.docx"))
    assert got.format == "pdf"
    assert got.text == "First page title\nAlpha sentence one.\n\nBeta on page two.\n\n\n\nGamma on page four."
    assert got.pages[0] == 0 and len(got.pages) == 4
    assert got.text[got.pages[1] :].startswith("Beta on page two.")
    assert got.text[got.pages[2] : got.pages[3]] == "\n\n"  # an empty page keeps its place
    assert got.text[got.pages[3] :] == "Gamma on page four."
    assert got.title == "First page title"  # the metadata title is an editor's placeholder


def test_pdf_metadata_title() -> None:
    assert read_pdf(make_pdf([["Body text."]], title="Annual Report 2024")).title == "Annual Report 2024"


def test_pdf_two_columns_read_column_by_column() -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    out = io.BytesIO()
    doc = BaseDocTemplate(out, pagesize=A4, invariant=True)
    width, height = A4
    columns = [Frame(50 + i * (width / 2 - 45), 50, width / 2 - 55, height - 100) for i in range(2)]
    doc.addPageTemplates([PageTemplate(frames=columns)])
    words = ["river", "mountain", "coffee", "paper", "engine", "signal", "harbor", "window", "garden", "silver"]
    paragraphs = [f"Marker{n:02d} " + " ".join(words[(n + k) % 10] for k in range(40)) + "." for n in range(30)]
    doc.build([Paragraph(p, getSampleStyleSheet()["Normal"]) for p in paragraphs])
    got = read_twice(read_pdf, out.getvalue())
    found = [got.text.find(f"Marker{n:02d}") for n in range(30)]
    assert -1 not in found and found == sorted(found)  # left column, then right, page after page
    assert len(got.pages) >= 2
    assert "Marker" in got.text[got.pages[1] : got.pages[1] + 20]


def test_scanned_pdf_without_text_layer() -> None:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    pdf.rect(72, 72, 300, 500, fill=1)  # shapes only, as a scan holds only a picture
    pdf.circle(200, 400, 50)
    pdf.showPage()
    pdf.save()
    with pytest.raises(Unreadable, match=r"no text layer \(scanned\?\); OCR is not supported"):
        read_pdf(out.getvalue())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make_pdf([["Secret."]], encrypt="hunter2"), "password"),
        (make_pdf([["Some text."]])[:400], "corrupt"),
        (b"%PDF-1.4 not really", "corrupt"),
    ],
)
def test_encrypted_or_corrupt_pdf(data: bytes, reason: str) -> None:
    with pytest.raises(Unreadable, match=reason):
        read_pdf(data)


# --- HTML ------------------------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><meta charset="{charset}"><title>Café  news</title>
<style>p {{ color: red }}</style><script>var tracking = "Do not index";</script></head><body>
<header><a href="/">Home</a> <span>The site slogan</span></header>
<nav><ul><li><a href="/a">Menu one</a></li><li><a href="/b">Menu two</a></li></ul></nav>
<div id="content"><h1>The   headline</h1><p>First paragraph, with <b>bold</b>
and a <a href="/x">link</a> inside</p><h2>Details</h2><p>Line one<br>line two: déjà vu.</p>
<ul><li>Item one</li><li>Item two</li></ul>
<table><tr><th>Name</th><th>Value</th></tr><tr><td>alpha</td><td>1</td></tr></table>
<div class="related"><a href="/r1">Related story one</a> <a href="/r2">Related story two</a></div></div>
<footer>Copyright 2024, all rights reserved</footer></body></html>"""
PAGE_TEXT = (
    "# The headline\n\nFirst paragraph, with bold and a link inside\n\n## Details\n\nLine one\nline two: déjà vu."
    "\n\nItem one\n\nItem two\n\nName | Value\nalpha | 1"
)


@pytest.mark.parametrize(("charset", "codec"), [("utf-8", "utf-8"), ("iso-8859-1", "latin-1"), ("cp1252", "cp1252")])
def test_html_main_content_without_boilerplate(charset: str, codec: str) -> None:
    got = read_twice(read_html, PAGE.format(charset=charset).encode(codec))
    assert (got.format, got.title, got.text) == ("html", "Café news", PAGE_TEXT)


def test_html_encoding_from_bom_or_detection_and_title_from_h1() -> None:
    page = PAGE.format(charset="utf-8").replace("<title>Café  news</title>", "")
    assert read_html(codecs.BOM_UTF16_LE + page.encode("utf-16-le")).text == PAGE_TEXT
    no_meta = page.replace('<meta charset="utf-8">', "").replace("déjà vu", FRENCH.strip())
    got = read_html(no_meta.encode("latin-1"))
    assert FRENCH.strip() in got.text and got.title == "The headline"


def test_html_main_element_and_link_only_page() -> None:
    page = "<body><div>Chrome</div><main><h3>Inside</h3><p>Kept text.</p></main></body>"
    assert read_html(page.encode()).text == "### Inside\n\nKept text."
    index = "<body><ul><li><a href=a>Chapter one</a></li><li><a href=b>Chapter two</a></li></ul></body>"
    assert read_html(index.encode()).text == "Chapter one\n\nChapter two"  # all links: kept rather than lost


def test_html_nested_beyond_any_real_page_is_refused_quickly() -> None:
    with pytest.raises(Unreadable, match="nesting deeper than 512 levels"):
        read_html(("<div>" * 20_000 + "deep" + "</div>" * 20_000).encode())
    assert read_html(("<div>" * 500 + "deep" + "</div>" * 500).encode()).text == "deep"


# --- DOCX ------------------------------------------------------------------------------------------------------


def make_docx(title: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading("Quarterly Report", 0)
    document.add_paragraph("Opening paragraph.")
    document.add_heading("Figures", 1)
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Sales", "Growth"], ["North", "10", "5%"], ["South", "", ""]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 1).merge(table.cell(2, 2)).text = "n/a"
    document.add_paragraph("After the table.")
    document.add_heading("Notes", 2)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_body_order_headings_and_table() -> None:
    got = read_twice(read_docx, make_docx())
    assert got.format == "docx" and got.title == "Quarterly Report"
    assert got.text == (
        "# Quarterly Report\n\nOpening paragraph.\n\n# Figures\n\n"
        "Region | Sales | Growth\nNorth | 10 | 5%\nSouth | n/a\n\nAfter the table.\n\n## Notes"
    )
    assert read_docx(make_docx(title="From the properties")).title == "From the properties"


def test_corrupt_docx() -> None:
    empty_zip = io.BytesIO()
    with zipfile.ZipFile(empty_zip, "w") as package:
        package.writestr("hello.txt", "not a document")
    for data in [b"PK\x03\x04 broken", make_docx()[:500], empty_zip.getvalue()]:
        with pytest.raises(Unreadable, match="not a Word document, or corrupt"):
            read_docx(data)


def test_every_suffix_has_a_reader() -> None:
    assert set(READERS) == {".txt", ".md", ".pdf", ".html", ".htm", ".docx"}
