"""What the pages show, as pure functions of a response or a document: a passage cut around its marked sentence,
the citation cards of a reply (overlapping passages of one document merged), the document view with its marks and
page markers, counts in words, and the links between them. No request or template in here: `pages.py` uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape

from ..answer import Answer, Response


def passage_parts(text: str, offset: int, mark: tuple[int, int] | None) -> list[tuple[bool, str]]:
    """`text` (which starts at document offset `offset`) cut into (marked, piece) around the span `mark`."""
    if mark is None:
        return [(False, text)]
    a = min(max(mark[0] - offset, 0), len(text))
    b = min(max(mark[1] - offset, a), len(text))
    return [(m, t) for m, t in ((False, text[:a]), (True, text[a:b]), (False, text[b:])) if t]


Span = tuple[int, int] | None


def document_html(text: str, pages: tuple[int, ...], passage: Span, mark: Span, exact: Span, offset: int = 0) -> Markup:
    """`text` (the document from offset `offset` on: one part of a long one), escaped, with the passage marked,
    the sentence in it, the exact answer in that (bold), and a marker where each page starts. Spans and pages are
    document offsets. The three spans nest (each lies inside the one around it), so each opens and closes once; a
    page marker is an empty element whose label CSS draws, so the text is exactly `text`."""
    has_exact = " has-exact" if exact else ""
    tags = [
        (passage, '<mark id="passage" class="passage-mark" tabindex="-1">', "</mark>"),
        (mark, f'<mark class="answer-mark{has_exact}">', "</mark>"),
        (exact, '<strong class="exact">', "</strong>"),
    ]
    events: list[tuple[int, int, str]] = []  # (offset in `text`, order at that offset, markup)
    for depth, (span, opening, closing) in enumerate(tags):
        if span is not None:
            events += [(span[0] - offset, 10 + depth, opening), (span[1] - offset, 2 - depth, closing)]
    for n, start in enumerate(pages, 1):
        if offset <= start < offset + max(len(text), 1):
            marker = (
                f'<span class="page-marker" id="page-{n}" data-page="{n}" role="separator" '
                f'aria-label="Page {n}"></span>'
            )
            events.append((start - offset, 5, marker))
    out, at = [], 0
    for position, _, markup in sorted(events):
        out += [str(escape(text[at:position])), markup]
        at = position
    out.append(str(escape(text[at:])))
    return Markup("".join(out))


# 100,000 characters a part of a long document: about 15,000 words and at most ~600 kB of HTML (every character
# escaped), which a browser lays out at once; the 5 MB document of issue #11 is 50 parts, not one 5 MB page.
PART_CHARS = 100_000
PART_SLACK = 1_000  # a part ends at the first space or line end this close after its nominal end, not mid-word


@dataclass(frozen=True)
class Part:
    """The part of a document a page shows: `text[start:end]`, part `number` (from 1) of `count`."""

    start: int
    end: int
    number: int
    count: int


def document_part(text: str, part: int | None, passage: Span) -> Part:
    """The part of `text` to show: the one the passage starts in (stretched to hold all of it), else part `part`
    (1 when not given; clamped to the parts there are)."""
    count = max(1, -(-len(text) // PART_CHARS))

    def bound(k: int) -> int:  # where part k starts (k from 0), equally for the part before it
        if k <= 0:
            return 0
        if k >= count:
            return len(text)
        nominal = k * PART_CHARS
        ends = [i for i in (text.find(c, nominal, nominal + PART_SLACK) for c in " \n") if i >= 0]
        return min(ends) + 1 if ends else nominal

    if passage is not None:
        k = min(passage[0] // PART_CHARS, count - 1)
        k -= 1 if k > 0 and passage[0] < bound(k) else 0
        return Part(bound(k), max(bound(k + 1), passage[1]), k + 1, count)
    k = min(max((part or 1) - 1, 0), count - 1)
    return Part(bound(k), bound(k + 1), k + 1, count)


def exact_span(answer: Answer | None, within: Span = None) -> Span:
    """The answer's short exact span as document offsets, or None when there is none or it is not inside the
    answer sentence (and inside `within`, when given) with the sentence's text at its offsets: the offsets become
    marks and links, and a span that does not match its text would bold the wrong characters."""
    if answer is None or answer.exact is None:
        return None
    x, at = answer.exact, answer.start
    if not at <= x.start < x.end <= answer.end or answer.text[x.start - at : x.end - at] != x.text:
        return None
    if within is not None and not within[0] <= x.start < x.end <= within[1]:
        return None
    return (x.start, x.end)


def plural(count: int, word: str, words: str | None = None) -> str:
    """`count` and `word`, in the plural (`words`, or `word` + "s") unless it is 1: "1 passage", "3 passages"."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def citation_cards(response: Response) -> list[dict[str, Any]]:
    """A response's citations as the cards of its reply, best first. Citations of one document whose passages
    overlap or touch (neighbouring chunks share a sentence) make one card, so no sentence is shown, or marked, twice.

    A card has `ns` (its citation numbers), source, title, start, end, text (the union of its passages), page (of
    a PDF, where the card starts), score (the best), `mark` (the sentence its link marks: the answer's when the
    card holds it, else its best citation's), `exact` (the answer's exact span inside `mark`, or None) and `parts`:
    runs of its text, each (kind, pieces) with kind None or a marked sentence ("answer", "near") and pieces (bold,
    text), the exact answer bold.
    """
    cards: list[dict[str, Any]] = []
    for c in response.citations:
        card = {"source": c.source, "title": c.title, "start": c.start, "end": c.end, "text": c.text}
        card |= {"score": c.score, "page": c.page, "ns": [c.n]}
        card["highlights"] = [c.highlight] if all(type(x) is int for x in c.highlight) else []
        home = next((k for k in cards if _joins(k, card)), None)
        if home is None:
            cards.append(card)
            continue
        _absorb(home, card)
        while (other := next((k for k in cards if k is not home and _joins(home, k)), None)) is not None:
            _absorb(home, other)
            cards.remove(other)
    for card in cards:
        _card_parts(card, response.answer)
    return cards


def _joins(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do the passages of cards `a` and `b` lie in one document and overlap or touch? Only passages whose text
    spans their offsets join: merging cuts each text by the other's offsets."""
    ok = all(len(k["text"]) == k["end"] - k["start"] for k in (a, b))
    return ok and a["source"] == b["source"] and a["start"] <= b["end"] and b["start"] <= a["end"]


def _absorb(card: dict[str, Any], other: dict[str, Any]) -> None:
    """Merge `other` into `card` (they join): the text of both once, every citation number and marked sentence."""
    left = other["text"][: max(0, card["start"] - other["start"])]
    right = other["text"][card["end"] - other["start"] :] if other["end"] > card["end"] else ""
    card["text"] = left + card["text"] + right
    if other["start"] < card["start"]:  # the card starts where `other` does, on its page
        card["page"] = other["page"]
    card["start"], card["end"] = min(card["start"], other["start"]), max(card["end"], other["end"])
    card["ns"] = sorted(card["ns"] + other["ns"])
    card["score"] = max(card["score"], other["score"])
    card["highlights"] += [h for h in other["highlights"] if h not in card["highlights"]]


def _card_parts(card: dict[str, Any], answer: Answer | None) -> None:
    """Set the card's `parts`, `mark` and `exact` from its marked sentences (overlapping ones are marked once)."""
    answer_start = answer.start if answer is not None and answer.source == card["source"] else None
    marks: list[list[Any]] = []  # [start, end, kind], in document order, none overlapping
    for s, e in sorted(card["highlights"]):
        kind = "answer" if s == answer_start else "near"
        if marks and s < marks[-1][1]:
            marks[-1][1] = max(marks[-1][1], e)
            marks[-1][2] = "answer" if "answer" in (kind, marks[-1][2]) else "near"
        else:
            marks.append([s, e, kind])
    text, start = card["text"], card["start"]
    answer_mark = next(({"start": m[0], "end": m[1]} for m in marks if m[2] == "answer"), None)
    best = card["highlights"][0] if card["highlights"] else None
    card["mark"] = answer_mark or (None if best is None else {"start": best[0], "end": best[1]})
    card["exact"] = exact_span(answer, (answer_mark["start"], answer_mark["end"])) if answer_mark else None
    parts: list[tuple[str | None, list[tuple[bool, str]]]] = []
    pos, end = start, start + len(text)
    for s, e, kind in marks:
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        if s > pos:
            parts.append((None, [(False, text[pos - start : s - start])]))
        exact = exact_span(answer, (s, e)) if kind == "answer" else None
        parts.append((kind, passage_parts(text[s - start : e - start], s, exact)))
        pos = e
    if pos < end:
        parts.append((None, [(False, text[pos - start :])]))
    card["parts"] = parts


def document_link(
    source: str,
    start: int | None = None,
    end: int | None = None,
    mark: dict[str, int] | None = None,
    exact: tuple[int, int] | None = None,
    part: int | None = None,
) -> str:
    """The URL of a document page, at a passage (and a sentence in it, and the exact answer in that) when given,
    else at part `part` of a long document."""
    url = f"/documents/{quote(source)}"
    if start is None or end is None:
        return f"{url}?part={part}" if part else url
    query = {"start": start, "end": end}
    if mark:
        query |= {"hs": mark["start"], "he": mark["end"]}
        if exact:
            query |= {"xs": exact[0], "xe": exact[1]}
    return f"{url}?{urlencode(query)}#passage"


def original_link(source: str) -> str:
    """The URL that downloads a document's original file."""
    return f"/files/{quote(source)}"
