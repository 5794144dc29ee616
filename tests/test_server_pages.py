"""The chat page without JavaScript, /turn, merged citation cards, plurals and HEAD on the pages."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from markupsafe import escape

from rag.answer import Response
from rag.server import pages

from .server_support import (
    ACCORD,
    DOCUMENT_PAGE,
    OFF_TOPIC,
    QUESTION,
    Served,
    answer_with,
    assert_error,
    assert_inert,
    hidden_history,
    inner_text,
    links,
    marks_of,
    strong_exact,
)

# ---------------------------------------------------------------------------------------------------------------
# The chat without JavaScript


def test_the_empty_chat_page(plain: Served) -> None:
    r = plain.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<form id="ask"' in r.text and 'method="post"' in r.text and 'name="q"' in r.text
    assert hidden_history(r.text) == []
    assert len(links(r.text, "/documents/")) == 5


def test_a_form_post_answers_and_carries_the_question_as_history(plain: Served) -> None:
    answer = plain.assistant.ask(QUESTION).answer
    assert answer is not None
    r = plain.client.post("/", data={"q": QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.count('<article class="turn"') == 1
    assert inner_text(r.text, "blockquote", 'class="answer"').strip().startswith(answer.text)
    assert str(escape(answer.text[: answer.exact.start - answer.start] if answer.exact else answer.text)) in r.text
    assert hidden_history(r.text) == [QUESTION]


def test_a_second_form_post_renders_both_turns(plain: Served) -> None:
    r = plain.client.post("/", data={"q": "When was it signed?", "history": [ACCORD]})
    assert r.status_code == 200
    assert r.text.count('<article class="turn"') == 2
    asked = [html.unescape(q) for q in re.findall(r'<article class="turn" data-question="([^"]*)"', r.text)]
    assert asked == [ACCORD, "When was it signed?"]
    assert r.text.count('<blockquote class="answer">') == 2
    assert inner_text(r.text, "p", 'class="context"') == f"Read together with your earlier question: “{ACCORD}”"
    assert hidden_history(r.text) == [ACCORD, "When was it signed?"]


def test_a_bad_form_post_shows_the_error_on_the_page(plain: Served) -> None:
    r = plain.client.post("/", data={"q": "   ", "history": [QUESTION]})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in r.text and "empty" in r.text
    assert hidden_history(r.text) == [QUESTION]  # the answered turn is kept


def test_the_turn_fragment_is_one_article(plain: Served) -> None:
    r = plain.client.post("/turn", data={"q": ACCORD, "n": "4"})
    assert r.status_code == 200
    assert "<html" not in r.text and r.text.count('<article class="turn"') == 1
    assert 'id="c4-1"' in r.text and 'data-answered="true"' in r.text
    follow = plain.client.post("/turn", data={"q": "When was it signed?", "n": "5", "history": [ACCORD]})
    assert ACCORD in follow.text and 'class="context"' in follow.text
    bad = plain.client.post("/turn", data={"q": "", "n": "6"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text


@pytest.mark.parametrize("path", ["/", "/turn"])
@pytest.mark.parametrize(
    "content",
    [
        b"q=%ED%A0%80+When+did+it+open%3F",
        b"q=%FF%FE",
        b"q=" + b"x" * 2001,
        b"q=a%00b",
        b"q=%07",
        b"",
        b"q=hi&n=abc",
        b"q=hi&history=",
        b"q=hi&history=%00",
        b"q=When+was+it+signed%3F&" + b"&".join([b"history=Japan"] * 40),
        b"\xff\xfe=\xfd",
    ],
    ids=[
        "surrogate-bytes",
        "not-utf8",
        "2001-chars",
        "nul",
        "bell",
        "empty",
        "bad-n",
        "empty-history",
        "nul-history",
        "long-history",
        "garbage",
    ],
)
def test_odd_form_posts_are_answered_or_refused_never_crash(plain: Served, path: str, content: bytes) -> None:
    r = plain.client.post(path, content=content, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code in (200, 400, 422), (r.status_code, r.text[:300])
    if r.headers["content-type"].startswith("text/html"):
        assert_inert(r.text)
    else:
        assert_error(r)


def test_an_off_topic_question_says_it_could_not_find_it(plain: Served) -> None:
    page = plain.client.post("/", data={"q": OFF_TOPIC}).text
    assert "could not find" in page and "Closest passages" in page
    assert '<blockquote class="answer">' not in page


# ---------------------------------------------------------------------------------------------------------------
# Chat polish: merged citation cards, plurals, HEAD on the pages (rebuild times: test_server_admin)


def overlapping_response() -> dict[str, Any]:
    """Two neighbouring chunks of one document that share their boundary sentence and both mark it, plus a third
    citation of another document: as `rag.answer` cites chunks that overlap by one sentence."""
    doc = "Intro line. The river froze in 1903. Boats stayed in port. Spring came late that year."
    shared = "The river froze in 1903."
    s = doc.index(shared)
    first, second = (0, s + len(shared)), (s, len(doc))
    other = "Clove buds dry for four days."

    def cite(n: int, source: str, span: tuple[int, int], text: str, hl: tuple[int, int], score: float) -> Any:
        return {
            "n": n,
            "source": source,
            "title": source.title(),
            "chunk_id": f"{source}#{n}",
            "text": text[span[0] : span[1]],
            "start": span[0],
            "end": span[1],
            "score": score,
            "highlight": {"start": hl[0], "end": hl[1]},
        }

    answer = {"text": shared, "source": "river.txt", "start": s, "end": s + len(shared), "citation": 3}
    answer["exact"] = {"text": "1903", "start": s + shared.index("1903"), "end": s + shared.index("1903") + 4}
    return {
        "question": "When did the river freeze?",
        "abstained": False,
        "confidence": 0.9,
        "answer": answer,
        "citations": [
            cite(1, "river.txt", first, doc, (s, s + len(shared)), 0.7),
            cite(2, "cloves.txt", (0, len(other)), other, (0, len(other)), 0.6),
            cite(3, "river.txt", second, doc, (s, s + len(shared)), 0.5),
        ],
        "context": None,
        "note": None,
        "_doc": doc,
    }


def test_citation_cards_merge_overlapping_passages_of_one_document() -> None:
    body = overlapping_response()
    doc = body.pop("_doc")
    cards = pages.citation_cards(Response.from_dict(body))
    assert [k["ns"] for k in cards] == [[1, 3], [2]]  # the merged card where its best citation was
    river = cards[0]
    assert (river["start"], river["end"], river["text"]) == (0, len(doc), doc)  # both passages, the shared one once
    assert river["score"] == 0.7
    marked = [(kind, "".join(t for _, t in pieces)) for kind, pieces in river["parts"] if kind]
    assert marked == [("answer", "The river froze in 1903.")]  # the sentence both citations mark, marked once
    assert "".join(t for _, pieces in river["parts"] for _, t in pieces) == doc  # nothing added or lost
    assert river["exact"] == (body["answer"]["exact"]["start"], body["answer"]["exact"]["end"])
    assert cards[1]["text"] == body["citations"][1]["text"] and cards[1]["exact"] is None


def test_citation_cards_keep_apart_what_does_not_overlap() -> None:
    body = overlapping_response()
    body.pop("_doc")
    body["citations"][2] |= {"start": 500, "end": 500 + len(body["citations"][2]["text"])}  # far away, same file
    body["citations"][2]["highlight"] = {"start": 500, "end": 510}
    assert [k["ns"] for k in pages.citation_cards(Response.from_dict(body))] == [[1], [2], [3]]
    # a citation that bridges two cards joins them into one
    a, b = "Alpha one. Beta two. ", "Gamma three. Delta four."
    doc = a + b

    def c(n: int, s: int, e: int) -> dict[str, Any]:
        h = {"start": s, "end": e}
        return {
            "n": n,
            "source": "d.txt",
            "title": "D",
            "chunk_id": f"d.txt#{n}",
            "text": doc[s:e],
            "start": s,
            "end": e,
            "score": 0.1 * n,
            "highlight": h,
        }

    bridged = {"question": "Q?", "abstained": True, "confidence": 0.1, "answer": None}
    bridged["citations"] = [c(1, 0, 10), c(2, 16, 30), c(3, 5, 20)]
    cards = pages.citation_cards(Response.from_dict(bridged))
    assert [k["ns"] for k in cards] == [[1, 2, 3]] and cards[0]["text"] == doc[0:30]


@pytest.mark.parametrize("path", ["/", "/turn"])
def test_overlapping_citations_show_their_shared_sentence_marked_once(
    plain: Served, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    body = overlapping_response()
    body.pop("_doc")
    answer_with(monkeypatch, plain, body)
    r = plain.client.post(path, data={"q": body["question"], "n": "2"})
    assert r.status_code == 200
    turn = 2 if path == "/turn" else 1
    fragment = r.text[r.text.index('<ol class="citations">') :]
    assert fragment.count('<li class="citation"') == 2
    assert marks_of(fragment).marks.count("The river froze in 1903.") == 1
    assert 'class="n">[1, 3]</span>' in fragment
    assert f'id="c{turn}-1"' in fragment and f'id="c{turn}-3"' in fragment  # every number keeps its anchor
    assert f'href="#c{turn}-3"' in r.text  # the answer's [3] link leads into the merged card [1, 3]
    assert strong_exact(fragment) == ["1903"]
    a, x = body["answer"], body["answer"]["exact"]
    end = body["citations"][2]["end"]
    hrefs = links(fragment, "/documents/river.txt")
    assert hrefs == [
        f"/documents/river.txt?start=0&end={end}&hs={a['start']}&he={a['end']}&xs={x['start']}&xe={x['end']}"
    ]


@pytest.mark.parametrize("question", [QUESTION, ACCORD, OFF_TOPIC])
def test_no_sentence_is_marked_twice_in_a_real_reply(plain: Served, question: str) -> None:
    body = plain.ask(question)
    fragment = plain.client.post("/turn", data={"q": question, "n": "1"}).text
    cards = pages.citation_cards(Response.from_dict(body))
    assert fragment.count('<li class="citation"') == len(cards)
    assert sorted(n for k in cards for n in k["ns"]) == [c["n"] for c in body["citations"]]
    spans = [(k["source"], h) for k in cards for h in k["highlights"]]
    assert len(spans) == len(set(spans))
    for i, a in enumerate(cards):  # no two cards of one document overlap
        for b in cards[i + 1 :]:
            assert a["source"] != b["source"] or a["end"] < b["start"] or b["end"] < a["start"], (a["ns"], b["ns"])
    sentences = {}
    for c in body["citations"]:
        sentences.setdefault((c["source"], c["highlight"]["start"]), c)
    assert len(marks_of(fragment[fragment.index('<ol class="citations">') :]).marks) == len(sentences)


def test_plural() -> None:
    assert [pages.plural(n, "passage") for n in (0, 1, 2)] == ["0 passages", "1 passage", "2 passages"]
    assert pages.plural(1, "index", "indexes") == "1 index" and pages.plural(3, "index", "indexes") == "3 indexes"


def test_the_document_list_says_1_passage_not_1_passages(hostile: Served) -> None:
    page = hostile.client.get("/").text
    counts = re.findall(r"(\d+) (passages?)\b", page)
    assert counts and not re.search(r"\b1 passages\b", page)
    assert all((n == "1") == (word == "passage") for n, word in counts), counts
    assert {int(n) for n, _ in counts} == {d.chunks for d in hostile.assistant.index.documents}


@pytest.mark.parametrize("path", ["/", "doc", "/documents/003_7f8c229d719f695d.txt", "/admin", "/documents/nope.txt"])
def test_head_on_a_page_answers_like_get_without_a_body(plain: Served, path: str) -> None:
    path = DOCUMENT_PAGE if path == "doc" else path
    got, head = plain.client.get(path), plain.client.head(path)
    assert head.status_code == got.status_code and got.status_code in (200, 404)
    assert head.content == b""
    same = {k: v for k, v in got.headers.items() if k != "date"}
    assert {k: v for k, v in head.headers.items() if k != "date"} == same  # Content-Length of the GET among them
    assert int(head.headers["content-length"]) == len(got.content)


def test_head_stays_out_of_the_api_schema(plain: Served) -> None:
    paths = plain.client.get("/openapi.json").json()["paths"]
    assert not [(p, m) for p, ops in paths.items() for m in ops if m == "head"]
    assert "/" not in paths and "/admin" not in paths
