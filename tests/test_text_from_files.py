"""Text from real files (issue #21): file names and versions inside sentences, sentences wrapped across lines and
pages of a PDF, heading marks, permalinks and dot leaders, titles, and the page of a citation.

Each file is made by the test and indexed with the real model; every quote is checked against the served text at
its offsets (`GET /api/documents/{source}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import Settings, indexing
from rag.embedding import Encoder
from rag.pipeline import Assistant
from rag.readers import read_html, read_pdf
from rag.readers.titles import first_heading
from rag.server.api import create_app
from rag.text.chunking import split_sentences
from rag.text.lines import join_wraps, wraps

from .helpers import make_pdf, write_corpus

SETUP_MD = """# Setting up the harbour tool

The virtual environment of the harbour tool is .venv in the project folder, made by setup.py as README.md says.

## Versions

Release v2.3.1 of the harbour tool needs Python 3.11 and takes approx. 5 minutes to install.
The harbour tool weighs its ferries in units of 2.5 tonnes.
"""
# A page of a PDF: lines wrapped at about 80 characters, one sentence across a wrap ("GNU General Public |
# License") and one across the page break ("kept at the | Harbour Museum").
LICENCE_PAGES = [
    [
        "Licence of the Harbour Tool",
        "The harbour tool is a small program that plans the berths of the ferries",
        "in the port of Otaru. The harbour tool is distributed under the GNU General Public",
        "License version 3.0 or later, which the harbour office chose for all of its",
        "programs when it first published them. Since the first season of its use, the",
        "logbooks of every ferry that called at the port have been kept at the",
    ],
    [
        "Harbour Museum of Otaru, where visitors may read them on weekdays.",
        "The museum opened its reading room in 1925 and closes it in August.",
    ],
]
MANUAL_PAGES = [
    ["Contents", "Introduction ........ 2", "Berths . . . . . . . . 2"],
    [
        "1 Introduction",
        "The berth planner of the harbour tool gives each ferry a berth for the night,",
        "and it sends the plan to the captains by radio at six in the evening.",
    ],
]
DOCS_HTML = """<!doctype html><html><head><title>Tide tables</title></head><body><main>
<h1 id="tides">Tide tables<a class="headerlink" href="#tides">¶</a></h1>
<h2 id="spring"><a class="anchor" href="#spring">#</a> Spring tides</h2>
<p>The spring tide at the Otaru pier rises by 40 centimetres above the mean.</p>
<h2 id="neap">Neap tides <a href="#neap" aria-label="link">🔗</a></h2>
<p>The neap tide at the Otaru pier rises by 12 centimetres above the mean.</p>
</main></body></html>"""


# A page extracted without line breaks: title, authors and body on one line.
RUN_TOGETHER = (
    "Harbour Tool Manual Otaru Harbour Office The harbour tool plans the berths of the ferries in the port of"
    " Otaru and was written by the harbour office in 2019 for its staff and the captains of the ferries."
)


def one_line_pdf(line: str) -> bytes:
    """A PDF of one page holding `line` in a small font, so that it fits the page's width."""
    import io

    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out, invariant=True)
    pdf.setFont("Helvetica", 4)
    pdf.drawString(10, 700, line)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


@dataclass
class Served:
    client: TestClient

    def ask(self, question: str) -> dict[str, Any]:
        body = self.client.post("/api/ask", json={"question": question}).json()
        assert body["answer"] is not None, body
        return body

    def document(self, source: str) -> dict[str, Any]:
        r = self.client.get(f"/api/documents/{source}")
        assert r.status_code == 200, r.text
        return r.json()

    def check_quotes(self, body: dict[str, Any]) -> None:
        """Every quote of `body` equals the served text at its offsets; a PDF citation names its marked
        sentence's page."""
        answer = body["answer"]
        assert self.document(answer["source"])["text"][answer["start"] : answer["end"]] == answer["text"]
        for c in body["citations"]:
            served = self.document(c["source"])
            assert served["text"][c["start"] : c["end"]] == c["text"]
            mark = served["text"][c["highlight"]["start"] : c["highlight"]["end"]]
            assert mark and not mark.startswith("#") and "¶" not in mark and "...." not in mark
            if served["format"] == "pdf":
                assert c["page"] == sum(1 for s in served["pages"] if s <= c["highlight"]["start"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Served:
    root = tmp_path_factory.mktemp("real_text")
    files: dict[str, str | bytes] = {
        "setup.md": SETUP_MD,
        "licence.pdf": make_pdf(LICENCE_PAGES),
        "manual.pdf": make_pdf(MANUAL_PAGES),
        "tides.html": DOCS_HTML,
        "intro.pdf": make_pdf([MANUAL_PAGES[1]]),
        "run.pdf": one_line_pdf(RUN_TOGETHER),
    }
    settings = Settings(corpus=write_corpus(root / "corpus", files), index=root / "index")
    index, _ = indexing.build(settings, encoder, progress=False)
    return Served(TestClient(create_app(Assistant(settings, index, encoder))))


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    "sentence",
    [
        "The environment is .venv in the project folder, and setup.py reads README.md first.",
        "Keep it in ~/.config/rag for later, as pip install -e . in the folder does.",
        "Release v2.3.1 needs Python 3.11 and 2.5 GB, approx. 5 minutes, cf. section 2 of the notes.",
        "Version 2.3.1. is the last one, e.g. for Dr. Smith.",
    ],
)
def test_file_names_versions_decimals_and_abbreviations_end_no_sentence(sentence: str) -> None:
    assert sentences(f"{sentence} The next sentence.") == [sentence, "The next sentence."]


def test_a_file_name_in_a_sentence_is_quoted_whole(served: Served) -> None:
    body = served.ask("What is the virtual environment of the harbour tool?")
    assert ".venv in the project folder" in body["answer"]["text"]
    served.check_quotes(body)
    text = served.document("setup.md")["text"]
    assert "Release v2.3.1 of the harbour tool needs Python 3.11 and takes approx. 5 minutes to install." in (
        sentences(text)
    )


def test_wrapped_lines_and_a_page_break_stay_one_sentence(served: Served) -> None:
    body = served.ask("Which licence is the harbour tool distributed under?")
    assert "GNU General Public\nLicense version 3.0 or later" in body["answer"]["text"]
    assert body["answer"]["page"] == 1
    served.check_quotes(body)
    body = served.ask("Where have the logbooks of the ferries been kept?")
    assert "kept at the\nHarbour Museum of Otaru" in body["answer"]["text"] and body["answer"]["page"] == 1
    served.check_quotes(body)


def test_headings_lists_and_short_paragraphs_are_not_joined() -> None:
    text = "1 Introduction\nThe planner gives each ferry a berth for the night, and it sends the plan\nTo the captains."
    assert sentences(text)[0] == "1 Introduction"
    listed = "Steps to take before the ferry season starts in the port of Otaru\n1. Check the berths\n2. Call"
    assert len(sentences(listed)) == 3
    assert join_wraps("short line\nNext line") == "short line\nNext line"
    assert not wraps("A table row | with cells | of the same width as the", "Next row | and more", 50)
    text = "x" * 60 + " ends here\r\nAnd goes on."
    assert len(join_wraps(text)) == len(text) and "\n" not in join_wraps(text)


def test_the_answer_page_and_its_card_page_are_the_marked_sentences(served: Served) -> None:
    body = served.ask("When did the museum open its reading room?")
    assert "1925" in body["answer"]["text"] and body["answer"]["page"] == 2
    served.check_quotes(body)  # the card's page is its marked sentence's, not where its passage starts
    [card] = [c for c in body["citations"] if c["n"] == body["answer"]["citation"]]
    assert card["page"] == 2


def test_heading_marks_and_permalinks_are_not_quoted(served: Served) -> None:
    html = served.document("tides.html")["text"]
    assert not {"¶", "🔗"} & set(html) and "Spring tides" in html and "# Spring" not in html.replace("## Spring", "")
    body = served.ask("How high does the neap tide rise at the Otaru pier?")
    assert "12 centimetres" in body["answer"]["text"]
    served.check_quotes(body)
    for source in ("tides.html", "setup.md"):
        text = served.document(source)["text"]
        assert "Versions" in sentences(text) or "Spring tides" in sentences(text)
        assert not [s for s in sentences(text) if s.startswith("#")]


def test_dot_leaders_are_dropped_from_pdf_text() -> None:
    got = read_pdf(make_pdf(MANUAL_PAGES))
    assert got.text.startswith("Contents\nIntroduction\nBerths\n\n1 Introduction")
    assert "...." not in got.text and ". . ." not in got.text


def test_titles_are_no_section_heading_or_run_together_text(served: Served) -> None:
    assert served.document("manual.pdf")["title"] == "Contents"
    assert served.document("intro.pdf")["title"] == "intro.pdf"  # "1 Introduction" and body lines: no title
    assert served.document("run.pdf")["title"] == "run.pdf"  # one run of text: no heading-like line
    assert served.document("licence.pdf")["title"] == "Licence of the Harbour Tool"
    assert served.document("tides.html")["title"] == "Tide tables"
    assert first_heading(RUN_TOGETHER, heading_like=True) is None
    assert first_heading("2.3 Methods\n# Harbour Tool Manual\nBody.") == "Harbour Tool Manual"
    assert read_html(DOCS_HTML.replace("<title>Tide tables</title>", "").encode()).title == "Tide tables"


# Words, file names, dots, heading marks and line breaks of every kind, in lines of many widths.
PIECES = st.sampled_from(
    ["word", "Word", ".venv", "2.3.1.", "approx.", "5", ". ", "## ", "#", "\n", "\r\n", " ", "\n\n"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=80))
def test_sentences_keep_exact_offsets_whatever_the_lines(pieces: list[str]) -> None:
    text = "".join(pieces)
    joined = join_wraps(text)
    assert len(joined) == len(text)
    assert all(a == b or (a in "\r\n" and b == " ") for a, b in zip(text, joined, strict=True))
    spans = split_sentences(text)
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    assert all(text[a:b] == text[a:b].strip() for a, b in spans)
    at_line_start = [(a, b) for a, b in spans if not text[text.rfind("\n", 0, a) + 1 : a].strip()]
    assert not [text[a:b] for a, b in at_line_start if re.match(r"#{1,6}[ \t]+\S", text[a:b])]
