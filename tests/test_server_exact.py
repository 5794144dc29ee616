"""The exact answer in bold (chat, /turn and the document page), and the note above the passages."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import pytest
from markupsafe import escape

from rag.answer import Answer, Exact, Response
from rag.server import pages

from .server_support import (
    DOCUMENT_PAGE,
    OFF_TOPIC,
    QUESTION,
    XSS_SOURCE,
    XSS_TEXT,
    Served,
    answer_with,
    assert_inert,
    canned,
    inner_text,
    links,
    strong_exact,
)

# ---------------------------------------------------------------------------------------------------------------
# The exact answer in bold, and the note above the passages


EXACT_SENTENCE = 'On <b>2 May</b> the "Spice & Co" <script>alert(1)</script> ledger priced cloves at 12 rupees.'


EXACT = '"Spice & Co" <script>alert(1)</script>'


NOTE = 'This question seems to be in <i>Ukrainian</i> & "odd"; the model reads English. <script>alert(1)</script>'


def canned_response(exact: Any = "default", note: str | None = NOTE) -> dict[str, Any]:
    """A response whose answer sentence (and bold span, and note) hold markup; offsets as in a real document."""
    before = "The ledger is old. "
    passage = before + EXACT_SENTENCE + " It was found in 1990."
    c_start = 200
    a_start = c_start + len(before)
    a_end = a_start + len(EXACT_SENTENCE)
    if exact == "default":
        x_start = a_start + EXACT_SENTENCE.index(EXACT)
        exact = {"text": EXACT, "start": x_start, "end": x_start + len(EXACT)}
    answer = {"text": EXACT_SENTENCE, "source": "ledger.txt", "start": a_start, "end": a_end, "citation": 1}
    if exact is not None:
        answer["exact"] = exact
    other = "Clove buds dry for four days. The price of 12 rupees was a record."
    return {
        "question": "Who priced the cloves?",
        "abstained": False,
        "confidence": 0.9,
        "answer": answer,
        "citations": [
            {
                "n": 1,
                "source": "ledger.txt",
                "title": "Ledger",
                "chunk_id": "ledger.txt#0",
                "text": passage,
                "start": c_start,
                "end": c_start + len(passage),
                "score": 0.8,
                "highlight": {"start": a_start, "end": a_end},
            },
            {
                "n": 2,
                "source": "cloves.txt",
                "title": "Cloves",
                "chunk_id": "cloves.txt#0",
                "text": other,
                "start": 0,
                "end": len(other),
                "score": 0.5,
                "highlight": {"start": 30, "end": len(other)},
            },
        ],
        "context": None,
        "note": note,
    }


def with_exact(monkeypatch: pytest.MonkeyPatch, served: Served, note: str | None = None) -> None:
    """The served assistant's real answers, with an exact span (a year, or a date ending in one) added when the
    answer has none of its own, and `note` set when given."""
    real_ask = served.assistant.ask

    def ask(*args: Any, **kwargs: Any) -> Response:
        body = real_ask(*args, **kwargs).to_dict()
        a = body["answer"]
        if a and not a.get("exact"):
            m = re.search(r"(?:[A-Z][a-z]+ \d{1,2}, )?\b\d{4}\b", a["text"])
            assert m, a["text"]
            a["exact"] = {"text": m.group(), "start": a["start"] + m.start(), "end": a["start"] + m.end()}
        if note is not None:
            body["note"] = note
        return canned(body)

    monkeypatch.setattr(served.assistant, "ask", ask)


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_the_exact_answer_is_bold_and_escaped_inside_the_quoted_sentence(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    r = plain.client.post(path, data={"q": "Who priced the cloves?", "n": "3"})
    assert r.status_code == 200
    page, turn = r.text, 3 if path == "/turn" else 1
    quoted = re.search(r'<blockquote class="answer">\s*<p class="has-exact">(.*?)</p>', page, re.S)
    assert quoted, page
    assert html.unescape(re.sub(r"<[^>]*>", "", quoted.group(1))) == EXACT_SENTENCE  # nothing added or lost
    bold = f'<strong class="exact">{escape(EXACT)}</strong>'
    assert bold in quoted.group(1)  # inside the quoted sentence, escaped
    before, after = EXACT_SENTENCE.split(EXACT)
    assert quoted.group(1) == f"{escape(before)}{bold}{escape(after)}"
    # the card that holds the answer has it bold inside its marked sentence; the other card has no bold
    card = inner_text(page, "li", f'id="c{turn}-1"')
    assert card is not None and EXACT_SENTENCE in card
    mark = re.search(r'<mark class="hl-answer"[^>]*>(.*?)</mark>', page, re.S)
    assert mark and bold in mark.group(1)
    assert html.unescape(re.sub(r"<[^>]*>", "", mark.group(1))) == EXACT_SENTENCE
    assert strong_exact(page) == [EXACT, EXACT]
    assert "<strong" not in page.split(f'id="c{turn}-2"')[1]
    assert_inert(page)


def test_the_answer_card_links_to_the_exact_span_in_the_document(
    plain: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    fragment = plain.client.post("/turn", data={"q": "Who priced the cloves?", "n": "1"}).text
    body = canned_response()
    exact, hl = body["answer"]["exact"], body["citations"][0]["highlight"]
    hrefs = links(fragment, "/documents/")
    assert len(hrefs) == 3
    assert hrefs[1] == (
        f"/documents/ledger.txt?start={body['citations'][0]['start']}&end={body['citations'][0]['end']}"
        f"&hs={hl['start']}&he={hl['end']}&xs={exact['start']}&xe={exact['end']}"
    )
    assert "xs=" not in hrefs[0] and "xs=" not in hrefs[2]  # the answer's own link, and a card without the answer


def test_a_real_answer_with_an_exact_span_leads_to_it_in_the_document(
    plain: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_exact(monkeypatch, plain)
    body = plain.ask(QUESTION)
    a, exact = body["answer"], body["answer"]["exact"]
    text = plain.assistant.document_text(a["source"])
    assert text[exact["start"] : exact["end"]] == exact["text"]
    # the cards that hold the answer sentence (overlapping passages that both hold it are one card)
    cards = pages.citation_cards(Response.from_dict(body))
    holders = [k for k in cards if k["mark"] and k["mark"]["start"] == a["start"]]
    assert len(holders) == 1
    fragment = plain.client.post("/turn", data={"q": QUESTION, "n": "1"}).text
    assert strong_exact(fragment) == [exact["text"]] * (1 + len(holders))  # the quoted sentence, then the cards
    quoted = inner_text(fragment, "blockquote", 'class="answer"')
    assert quoted is not None and quoted.strip().startswith(a["text"])
    with_xs = [h for h in links(fragment, "/documents/") if "xs=" in h]
    assert len(with_xs) == len(holders)
    assert all(h.endswith(f"xs={exact['start']}&xe={exact['end']}") for h in with_xs)
    r = plain.client.get(with_xs[0])
    assert r.status_code == 200
    assert strong_exact(r.text) == [exact["text"]]
    assert inner_text(r.text, "mark", 'class="answer-mark has-exact"') == a["text"]
    assert inner_text(r.text, "div", 'class="document"') == text  # the whole document, nothing added or lost


@pytest.mark.parametrize(
    "exact",
    [
        None,
        {"text": "x", "start": 0, "end": 1},  # outside the sentence
        {"text": "On <i>", "start": 219, "end": 225},  # offsets that are not the text
        {"text": EXACT, "start": "219", "end": 240},
        {"text": EXACT, "start": True, "end": 240},
        {"start": 225},
        "a string",
        [219, 225],
    ],
    ids=["none", "outside", "wrong-text", "string-offset", "bool-offset", "partial", "string", "list"],
)
def test_a_missing_or_malformed_exact_span_is_left_out(
    plain: Served, monkeypatch: pytest.MonkeyPatch, exact: Any
) -> None:
    answer_with(monkeypatch, plain, canned_response(exact=exact, note=None))
    r = plain.client.post("/turn", data={"q": "Who priced the cloves?", "n": "1"})
    assert r.status_code == 200
    assert "<strong" not in r.text and "xs=" not in r.text and 'class="note"' not in r.text
    assert re.search(r'<blockquote class="answer">\s*<p>', r.text)
    assert str(escape(EXACT_SENTENCE)) in r.text


def test_exact_span_lies_inside_the_answer_sentence_and_matches_its_text() -> None:
    answer = Answer("Born in 1990 here.", "a.txt", 10, 28, citation=1, exact=Exact("1990", 18, 22))
    assert pages.exact_span(answer) == (18, 22)
    assert pages.exact_span(answer, (10, 28)) == (18, 22)
    assert pages.exact_span(answer, (19, 28)) is None  # not inside that sentence
    assert pages.exact_span(None) is None and pages.exact_span(dataclasses.replace(answer, exact=None)) is None
    for wrong in [Exact("1991", 18, 22), Exact("1990", 8, 12), Exact("1990", 26, 30), Exact("", 18, 18)]:
        assert pages.exact_span(dataclasses.replace(answer, exact=wrong)) is None, wrong


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_the_note_is_shown_escaped_above_the_passages(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    answer_with(monkeypatch, plain, canned_response())
    page = plain.client.post(path, data={"q": "Who priced the cloves?"}).text
    assert f'<p class="note" role="note">{escape(NOTE)}</p>' in page
    assert inner_text(page, "p", 'class="note"') == NOTE
    assert page.index('class="note"') < page.index('class="sources-heading"') < page.index('class="citations"')
    assert_inert(page)


def test_the_note_is_shown_when_the_answer_is_withheld(plain: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    note = "This question seems to be in Ukrainian; the model reads English."
    with_exact(monkeypatch, plain, note=note)
    page = plain.client.post("/turn", data={"q": OFF_TOPIC}).text
    assert "could not find" not in page and '<strong class="exact">' not in page  # the note says what happened
    assert inner_text(page, "p", 'class="note"') == note
    assert page.index('class="note"') < page.index('class="sources-heading"') < page.index('class="citations"')


def exact_page(served: Served, **query: int) -> Any:
    """A document at the sentence that holds the year 1992 (a passage around it marked), with `query` added."""
    source = "001_6cd020ec01843fcd.txt"
    text = served.assistant.document_text(source)
    year = text.index("1992")
    hs, he = text.rindex(".", 0, year) + 1, text.index(".", year) + 1
    start, end = max(hs - 40, 0), min(he + 40, len(text))
    params = {"start": start, "end": end, "hs": hs, "he": he, **query}
    return served.client.get(f"/documents/{source}", params=params), text, (start, end, hs, he, year)


def test_the_document_page_shows_the_exact_span_bold_in_the_marked_sentence(plain: Served) -> None:
    _, _, (start, end, hs, he, year) = exact_page(plain)
    r, text, _ = exact_page(plain, xs=year, xe=year + 4)
    assert r.status_code == 200
    assert strong_exact(r.text) == ["1992"]
    assert inner_text(r.text, "mark", 'class="answer-mark has-exact"') == text[hs:he]
    assert inner_text(r.text, "mark", 'id="passage"') == text[start:end]
    assert inner_text(r.text, "div", 'class="document"') == text


@pytest.mark.parametrize(
    "query",
    ["outside-sentence", "reversed", "empty", "xs-only", "xe-only", "negative", "huge", "no-sentence"],
)
def test_an_exact_span_outside_the_marked_sentence_is_left_out(plain: Served, query: str) -> None:
    _, _, (start, end, hs, he, year) = exact_page(plain)
    params = {
        "outside-sentence": {"xs": hs - 10, "xe": year + 4},
        "reversed": {"xs": year + 4, "xe": year},
        "empty": {"xs": year, "xe": year},
        "xs-only": {"xs": year},
        "xe-only": {"xe": year + 4},
        "negative": {"xs": -5, "xe": year},
        "huge": {"xs": year, "xe": 10**12},
        "no-sentence": {"xs": year, "xe": year + 4, "hs": end, "he": end + 5},
    }[query]
    r, text, _ = exact_page(plain, **params)
    assert r.status_code == 200
    assert "<strong" not in r.text and 'id="passage"' in r.text
    assert inner_text(r.text, "div", 'class="document"') == text


@pytest.mark.parametrize("query", ["xs=abc&xe=5", "xs=1.5&xe=5", "xs=99999999999999999999999999&xe=1"])
def test_a_non_numeric_exact_span_is_a_4xx_not_a_crash(plain: Served, query: str) -> None:
    r = plain.client.get(f"/{DOCUMENT_PAGE.lstrip('/')}&{query}")
    assert 200 <= r.status_code < 500
    if r.status_code == 200:
        assert "<strong" not in r.text


def test_markup_in_an_exact_span_is_escaped_on_the_document_page(hostile: Served) -> None:
    text = XSS_TEXT
    start, script = text.index("The Zanzibar"), text.index("<script>alert(1)</script> Growers")
    hs, he = text.index("October.") + len("October."), text.index("four days.") + len("four days.")
    xs, xe = script, script + len("<script>alert(1)</script>")
    r = hostile.client.get(
        f"/documents/{XSS_SOURCE}", params={"start": start, "end": len(text), "hs": hs, "he": he, "xs": xs, "xe": xe}
    )
    assert r.status_code == 200
    assert '<strong class="exact">&lt;script&gt;alert(1)&lt;/script&gt;</strong>' in r.text
    assert inner_text(r.text, "div", 'class="document"') == text
    assert_inert(r.text)
