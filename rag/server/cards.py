"""What a reply shows of its citation cards (`views.citation_cards`), so that an answer stays short (issue #21):
which cards are shown and which folded, the excerpt of a card around its marked sentences, and its score as text.
Pure functions of the cards; `_turn.html` and `_card.html` call them."""

from __future__ import annotations

from typing import Any

# A card is shown in full when it holds the quoted sentence or its score reaches this; the others are folded. A
# score is the passage's share of the scorer's belief that it holds the answer (a softmax over every passage
# searched, so all of them sum to 1). On the bundled corpus an answered question gives 0.5-1.0 to the passages that
# hold the answer and under 0.002 to each of the rest; an unanswered one spreads it (0.52, 0.15, 0.10, 0.07, 0.03
# for a question about bread). One tenth keeps the few worth reading and folds the tail (issue #21: five full cards
# an answer made three answers 10,404 px tall on a phone).
SHOWN_SCORE = 0.1


def fold_cards(cards: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`cards` (from `citation_cards`) as (shown, folded): shown are those that hold the answer sentence or score
    at least `SHOWN_SCORE`, and the first card always; the rest are folded, in their order."""
    keep = [
        i == 0 or any(kind == "answer" for kind, _ in k["parts"]) or _number(k["score"]) >= SHOWN_SCORE
        for i, k in enumerate(cards)
    ]
    return [k for k, x in zip(cards, keep, strict=True) if x], [k for k, x in zip(cards, keep, strict=True) if not x]


def score_text(score: Any) -> str:
    """A card's score as shown ("score 0.52"), or "" when it would read 0.00 (it says nothing then)."""
    value = _number(score)
    return f"score {value:.2f}" if value >= 0.005 else ""


# A card shows its marked sentences and this many characters of text on either side of them (about one line of a
# desktop card, three of a phone's): enough to read the sentence in its place, while "Open in the document" shows the
# whole passage. A merged card of three neighbouring chunks was 300 words, 1,000 px tall on a phone (issue #21).
EXCERPT_CHARS = 120


def card_excerpt(parts: list[tuple[str | None, list[tuple[bool, str]]]], around: int = EXCERPT_CHARS) -> list[Any]:
    """A card's `parts` with its unmarked text cut to `around` characters next to each mark (at a space, "…"
    where text is left out); the marks are kept whole. A card without a mark keeps its first `2 * around`."""
    marked = [i for i, (kind, _) in enumerate(parts) if kind]
    out: list[Any] = []
    for i, (kind, pieces) in enumerate(parts):
        if kind:
            out.append((kind, pieces))
            continue
        text = "".join(t for _, t in pieces)
        before, after = bool(marked) and marked[0] < i, bool(marked) and marked[-1] > i
        if before and after:
            cut = text if len(text) <= 2 * around else _head(text, around) + " " + _tail(text, around)
        elif before or not marked:
            cut = _head(text, around if marked else 2 * around)
        else:
            cut = _tail(text, around)
        out.append((None, [(False, cut)]))
    return out


def _head(text: str, n: int) -> str:
    """The first `n` characters of `text` or fewer, ending at a space, and "…" when text was left out."""
    if len(text) <= n:
        return text
    space = text.rfind(" ", 0, n)
    return text[: space if space > 0 else n].rstrip() + " …"


def _tail(text: str, n: int) -> str:
    """The last `n` characters of `text` or fewer, starting after a space, and "…" when text was left out."""
    if len(text) <= n:
        return text
    space = text.find(" ", len(text) - n)
    return "… " + text[space + 1 if space >= 0 else len(text) - n :].lstrip()


def _number(value: Any) -> float:
    """`value` as a float, 0.0 unless it is a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
