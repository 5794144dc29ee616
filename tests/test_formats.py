"""A mixed corpus, end to end: PDFs, a DOCX, HTML pages with navigation and scripts, Latin-1 and UTF-16 text, all
made by the test itself, indexed with the real model and asked through the HTTP API and the CLI.

Every document must be indexed; every quote (answer, exact span, citation) must equal the served text at its
offsets (`GET /api/documents/{source}`); a PDF citation must carry the page its marked sentence starts on; and each
question must be answered from the document that holds its answer.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from rag import Settings, indexing
from rag.cli import main
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.server.api import create_app

from .helpers import make_pdf, write_corpus

pytestmark = pytest.mark.slow

# Page texts of the long PDF: the answer to each PDF question is on a page of its own.
PDF_PAGES = [
    ["Lighthouse Survey of the Inland Sea", "The survey was made in the spring by the harbour office."],
    ["The Tsurishima lighthouse was first lit in 1873.", "Its lamp burned whale oil until 1911."],
    ["Keepers lived on the island with their families.", "Supplies came by boat twice a month."],
    ["The Nabeshima lighthouse stands 24 metres tall.", "It was automated in 1968."],
]
HTML_PAGE = """<!doctype html><html><head><title>Glassblowing in Otaru</title>
<style>body { color: red }</style><script>var tracker = "Otaru glass ads";</script></head>
<body><nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/about">About us</a></nav>
<header><p>Subscribe to our newsletter for weekly offers.</p></header>
<main><h1>Glassblowing in Otaru</h1>
<p>Otaru became a glassmaking town when oil lamps were made there for the herring fishery.</p>
<h2>The workshops</h2>
<p>The oldest workshop on Sakaimachi Street opened in 1901 and still blows floats by hand.</p></main>
<footer><p>Copyright Otaru Glass Shop. All rights reserved.</p></footer></body></html>"""
LATIN1 = "Café Notes\n\nThe café near the station roasts its beans in a copper drum every Thursday.\n"
UTF16 = "Orchard Notes\n\nThe Aomori orchards harvest the Fuji apple in late October.\n"


@dataclass(frozen=True)
class Asked:
    question: str
    source: str
    holds: str  # words the quoted sentence must hold
    page: int | None = None


QUESTIONS = [
    Asked("When was the Tsurishima lighthouse first lit?", "survey.pdf", "1873", page=2),
    Asked("How tall is the Nabeshima lighthouse?", "survey.pdf", "24 metres", page=4),
    Asked("When did the oldest glass workshop on Sakaimachi Street open?", "otaru.html", "1901"),
    Asked("What share of the budget went to the new ferry?", "budget.docx", "40%"),
    Asked("Which day does the café roast its beans?", "cafe.txt", "Thursday"),
    Asked("When is the Fuji apple harvested in Aomori?", "orchard.txt", "late October"),
]


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Island Council Budget", 0)
    document.add_paragraph("The council met in March to agree on the spending of the coming year.")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([["Item", "Share"], ["New ferry", "40%"], ["School roof", "15%"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Forty percent of the budget, 40%, went to the new ferry to the mainland.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@dataclass
class Mixed:
    corpus: Path
    index: Path
    client: TestClient
    report: indexing.BuildReport


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Mixed:
    root = tmp_path_factory.mktemp("mixed")
    corpus = write_corpus(
        root / "corpus",
        {
            "survey.pdf": make_pdf(PDF_PAGES),
            "otaru.html": HTML_PAGE,
            "budget.docx": make_docx(),
            "cafe.txt": LATIN1.encode("latin-1"),
            "orchard.txt": UTF16.encode("utf-16"),  # with its byte-order mark
            "scan.pdf": make_pdf([[], []]),  # pages without a text layer
        },
    )
    settings = Settings(corpus=corpus, index=root / "index")
    index, report = indexing.build(settings, encoder, progress=False)
    client = TestClient(create_app(Assistant(settings, index, encoder)))
    return Mixed(corpus, settings.index, client, report)


def served_text(mixed: Mixed, source: str) -> dict[str, Any]:
    r = mixed.client.get(f"/api/documents/{source}")
    assert r.status_code == 200, r.text
    return r.json()


def test_every_document_is_indexed_and_the_scan_is_skipped_with_its_reason(mixed: Mixed) -> None:
    indexed = sorted(mixed.report.added)
    assert indexed == ["budget.docx", "cafe.txt", "orchard.txt", "otaru.html", "survey.pdf"]
    [scan] = mixed.report.skipped
    assert scan.source == "scan.pdf" and "no text layer" in scan.reason and "OCR" in scan.reason


def test_the_served_documents_carry_format_title_and_pages(mixed: Mixed) -> None:
    formats = {d["source"]: (d["format"], d["pages"]) for d in mixed.client.get("/api/documents").json()}
    assert formats["survey.pdf"] == ("pdf", 4) and formats["budget.docx"] == ("docx", 0)
    pdf = served_text(mixed, "survey.pdf")
    assert set(pdf) == {"source", "title", "format", "pages", "text"}
    for number, lines in enumerate(PDF_PAGES):
        assert pdf["text"][pdf["pages"][number] :].startswith(lines[0])
    html = served_text(mixed, "otaru.html")
    assert html["title"] == "Glassblowing in Otaru"
    for boilerplate in ("Subscribe", "Copyright", "tracker", "color: red", "About us"):
        assert boilerplate not in html["text"]
    assert served_text(mixed, "cafe.txt")["text"] == LATIN1
    assert served_text(mixed, "orchard.txt")["text"] == UTF16
    assert "New ferry | 40%" in served_text(mixed, "budget.docx")["text"]  # a table row is a line of text


@pytest.mark.parametrize("asked", QUESTIONS, ids=[q.source + ":" + q.holds for q in QUESTIONS])
def test_each_question_is_answered_from_its_document_with_exact_quotes(mixed: Mixed, asked: Asked) -> None:
    body = mixed.client.post("/api/ask", json={"question": asked.question}).json()
    answer = body["answer"]
    assert answer is not None, body
    assert answer["source"] == asked.source and asked.holds in answer["text"], answer
    assert answer["page"] == asked.page
    text = served_text(mixed, answer["source"])["text"]
    assert text[answer["start"] : answer["end"]] == answer["text"]
    if answer["exact"]:
        assert text[answer["exact"]["start"] : answer["exact"]["end"]] == answer["exact"]["text"]
    for c in body["citations"]:
        cited = served_text(mixed, c["source"])
        assert cited["text"][c["start"] : c["end"]] == c["text"]
        if cited["format"] == "pdf":  # the page that holds the marked sentence's first character (issue #21)
            assert c["page"] == sum(1 for start in cited["pages"] if start <= c["highlight"]["start"])
        else:
            assert c["page"] is None


def test_the_document_page_marks_the_pdf_page_of_the_passage_and_links_the_original(mixed: Mixed) -> None:
    body = mixed.client.post("/api/ask", json={"question": QUESTIONS[1].question}).json()
    a = body["answer"]
    page = mixed.client.get(f"/documents/{a['source']}", params={"start": a["start"], "end": a["end"]}).text
    assert 'id="page-4"' in page and "page 4" in page
    assert 'href="/files/survey.pdf"' in page
    original = mixed.client.get("/files/survey.pdf")
    assert original.status_code == 200 and original.content == (mixed.corpus / "survey.pdf").read_bytes()
    assert "attachment" in original.headers["content-disposition"]


def test_rag_ask_names_the_pdf_page_and_rag_show_prints_the_passage(mixed: Mixed) -> None:
    args = ["--corpus", str(mixed.corpus), "--index", str(mixed.index)]
    asked = CliRunner().invoke(main, [*args, "ask", QUESTIONS[0].question])
    assert asked.exit_code == 0, asked.output
    assert "survey.pdf p. 2" in asked.stdout
    answer = json.loads(CliRunner().invoke(main, [*args, "ask", QUESTIONS[0].question, "--json"]).stdout)["answer"]
    shown = CliRunner().invoke(
        main, [*args, "show", "survey.pdf", "--start", str(answer["start"]), "--end", str(answer["end"])]
    )
    assert shown.exit_code == 0 and shown.stdout.rstrip("\n") == answer["text"]
    missing = CliRunner().invoke(main, [*args, "show", "nothing.pdf"])
    assert missing.exit_code == 2 and "not in the index" in missing.stderr


def test_the_chat_names_the_pdf_page_of_the_answer_and_of_its_card(mixed: Mixed) -> None:
    fragment = mixed.client.post("/turn", data={"q": QUESTIONS[1].question, "n": "1"}).text
    assert "survey.pdf p. 4</a>" in fragment  # the answer's source line
    # its card: the passage starts on page 1, its marked sentence (the answer) is on page 4 (issue #21)
    assert "survey.pdf p. 4</span>" in fragment and "survey.pdf p. 1</span>" not in fragment
