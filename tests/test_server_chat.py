"""The chat's replies kept short (issue #21): the passages that matter shown, the rest folded, no score that says
nothing, the quote not painted as the answer without an exact span, a question in another language told so plainly,
and the operator's part of that on the admin page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rag.answer import Response
from rag.server import cards, views

from .server_support import Served, answer_with, inner_text, strong_exact

UKRAINIAN = "Коли Японія встановила дипломатичні відносини з Україною?"


def reply(body: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A response of five passages of one document each: the answer in the first, the others scored low."""
    cites: list[dict[str, Any]] = []
    for n, score in enumerate([0.62, 0.3, 0.004, 0.001, 0.0], start=1):
        text = f"Passage {n} says the river froze in {1900 + n}. Nothing else happened."
        hl = {"start": 0, "end": text.index(".") + 1}
        cites.append(
            {"n": n, "source": f"d{n}.txt", "title": f"D{n}", "chunk_id": f"d{n}.txt#0", "text": text}
            | {"start": 0, "end": len(text), "score": score, "highlight": hl}
        )
    sentence = cites[0]["text"][: cites[0]["highlight"]["end"]]
    answer = {"text": sentence, "source": "d1.txt", "start": 0, "end": len(sentence), "citation": 1, "exact": None}
    base = {"question": "When did the river freeze?", "abstained": False, "confidence": 0.9, "answer": answer}
    return (body or base | {"citations": cites, "context": None, "note": None}) | changes


def turn_page(plain: Served, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], path: str = "/turn") -> str:
    answer_with(monkeypatch, plain, body)
    r = plain.client.post(path, data={"q": body["question"], "n": "1"})
    assert r.status_code == 200
    return r.text


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_the_passages_that_matter_are_shown_and_the_rest_folded(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    page = turn_page(plain, monkeypatch, reply(), path)
    shown, folded = page.split('<details class="more-passages">')
    assert re.findall(r'<li class="citation" id="c\d-(\d)"', shown) == ["1", "2"]  # the answer's, and 0.30
    assert re.findall(r'<li class="citation" id="c\d-(\d)"', folded) == ["3", "4", "5"]
    assert "<summary>3 more passages</summary>" in folded
    assert "score 0.62" in shown and "score 0.30" in shown
    assert "0.00" not in page  # a score that would read 0.00 is left out


def test_a_card_that_holds_the_answer_is_shown_whatever_its_score() -> None:
    body = reply()
    body["citations"][0]["score"], body["answer"]["citation"] = 0.001, 1
    shown, folded = cards.fold_cards(views.citation_cards(Response.from_dict(body)))
    assert [k["ns"] for k in shown] == [[1], [2]] and [k["ns"] for k in folded] == [[3], [4], [5]]
    body = reply(abstained=True, answer=None)
    for c in body["citations"]:
        c["score"] = 0.01
    shown, folded = cards.fold_cards(views.citation_cards(Response.from_dict(body)))
    assert [k["ns"] for k in shown] == [[1]] and len(folded) == 4  # the first always; nothing folds all away


def test_nothing_is_folded_when_every_passage_matters(plain: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    body = reply()
    for c in body["citations"]:
        c["score"] = 0.2
    page = turn_page(plain, monkeypatch, body)
    assert page.count('<li class="citation"') == 5 and "<details" not in page


def test_a_real_reply_folds_what_scores_nothing(plain: Served) -> None:
    page = plain.client.post("/turn", data={"q": "When did Japan establish diplomatic relations with Ukraine?"}).text
    shown = page.split("<details")[0]
    assert 1 <= shown.count('<li class="citation"') <= 2 and "more passage" in page
    assert "score 0.00" not in page


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_without_an_exact_span_nothing_is_painted_as_the_answer(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    page = turn_page(plain, monkeypatch, reply(), path)
    assert strong_exact(page) == []
    assert re.search(r'<blockquote class="answer">\s*<p>Passage 1 says', page)  # no has-exact, no bold
    css = plain.client.get("/static/style.css").text
    painted = [rule for rule in re.findall(r"([^{}]+)\{([^}]*)\}", css) if "var(--mark)" in rule[1]]
    assert painted and all("strong.exact" in selector for selector, _ in painted), painted
    assert re.search(r"\.answer p \{[^}]*font-weight: 400", css)


def test_a_question_in_another_language_is_told_so_plainly(plain: Served) -> None:
    page = plain.client.post("/turn", data={"q": UKRAINIAN, "n": "1"}).text
    note = inner_text(page, "p", 'class="note"')
    assert note is not None and "Ukrainian" in note and "English" in note
    assert "RAG_MODEL" not in page and "rag index" not in page and "could not find" not in page
    body = plain.ask(UKRAINIAN)
    assert ('class="sources-heading"' in page) == bool(body["citations"])


@pytest.mark.parametrize("abstained_note", [None, "This question seems to be in Ukrainian."])
def test_no_heading_over_no_passages(plain: Served, monkeypatch: pytest.MonkeyPatch, abstained_note: Any) -> None:
    page = turn_page(plain, monkeypatch, reply(abstained=True, answer=None, citations=[], note=abstained_note))
    assert 'class="sources-heading"' not in page and "<ol" not in page and "Closest passages" not in page
    if abstained_note:
        assert inner_text(page, "p", 'class="note"') == abstained_note and "could not find" not in page
    else:
        assert inner_text(page, "p", 'class="abstain"') == "I could not find this in the documents."


def test_the_admin_page_keeps_the_operators_instructions(plain: Served) -> None:
    text = inner_text(plain.client.get("/admin").text, "p", 'id="languages"')
    assert text is not None and "RAG_MODEL" in text and "rag index --full" in text and "English" in text
