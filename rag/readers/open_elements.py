"""The stack of open elements of the HTML standard's tree builder, kept by the rules that change its depth, for the
scan of `nesting.estimate_depth`: which start tags close open elements (a new paragraph ends the last one), which
end tags close nothing, the formatting elements the builder reopens after a block closed them (at most three alike,
the "Noah's Ark" clause) and the ones its "adoption agency" moves out of the stack, and foreign content (SVG,
MathML), where "/>" closes an element. Where a rule is not modelled the stack keeps the element: it counts high.
"""

from __future__ import annotations

import re

WALK = 64  # open elements looked through for an element to close; past that the scan assumes none (counts high)
_WS = "\t\n\f\r "


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


VOID = _names("area base basefont bgsound br col embed frame hr image img input keygen link meta param source")
VOID |= {"track", "wbr"}
IGNORED = frozenset({"html", "head", "body", "frameset"})  # merged into the open ones, or dropped, once in the body
FORMATTING = _names("a b big code em font i nobr s small strike strong tt u")
MARKERS = _names("applet caption marquee object td template th")
SCOPE = _names("applet caption html marquee object select table td template th")  # select: as Lexbor parses it
SPECIAL = SCOPE | _names(
    "address area article aside base basefont bgsound blockquote body br button center col colgroup dd details dir"
    " div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr"
    " iframe img input keygen li link listing main menu meta nav noembed noframes noscript ol p param plaintext pre"
    " script search section select source style summary tbody textarea tfoot thead title tr track ul wbr xmp"
)
HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
CLOSE_P = HEADINGS | _names(
    "address article aside blockquote center details dialog dir div dl dd dt fieldset figcaption figure footer form"
    " header hgroup hr li listing main menu nav ol p plaintext pre search section summary table ul xmp"
)
TABLE_SCOPE = frozenset({"html", "table", "template"})
TABLE_PARTS = _names("caption colgroup table tbody td tfoot th thead tr")
LIST_ITEM_STOPS = SPECIAL - {"address", "div", "p"}
# Start tags and the open elements they close: (closed, where the search stops).
CLOSES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), LIST_ITEM_STOPS),
    "dd": (frozenset({"dd", "dt"}), LIST_ITEM_STOPS),
    "dt": (frozenset({"dd", "dt"}), LIST_ITEM_STOPS),
    "td": (frozenset({"td", "th"}), TABLE_SCOPE),
    "th": (frozenset({"td", "th"}), TABLE_SCOPE),
    "tr": (frozenset({"tr"}), TABLE_SCOPE),
    "tbody": (frozenset({"tbody", "thead", "tfoot"}), TABLE_SCOPE),
    "thead": (frozenset({"tbody", "thead", "tfoot"}), TABLE_SCOPE),
    "tfoot": (frozenset({"tbody", "thead", "tfoot"}), TABLE_SCOPE),
    "table": (frozenset({"table"}), frozenset({"caption", "html", "td", "template", "th"})),
    "button": (frozenset({"button"}), SCOPE),
}
# HTML start tags that end foreign content (SVG, MathML), and the foreign elements whose content is HTML again.
BREAKOUT = HEADINGS | _names(
    "b big blockquote body br center code dd div dl dt em embed head hr i img li listing menu meta nobr ol p pre"
    " ruby s small span strong strike sub sup table tt u ul var"
)
INTEGRATION = _names("annotation-xml desc foreignobject mi mn mo ms mtext title")
FONT_BREAKOUT = re.compile(rf"(?:^|[{_WS}/])(?:color|face|size)(?:[{_WS}/=]|$)", re.I)


TABLE_CONTEXT = TABLE_PARTS | {"template"}
# Start tags before which the builder does not reopen formatting elements (a block, a table part, a head element).
KEEP_CLOSED = (
    (CLOSE_P - {"xmp"})
    | IGNORED
    | TABLE_PARTS
    | _names(
        "base basefont bgsound col frame hr iframe link meta noembed noframes param rb rp rt rtc script source style"
        " template textarea title track"
    )
)


class _Open:
    """An element on the stack: its name, whether it is SVG or MathML, for a formatting element what tells it apart
    (its name and attributes) and whether the builder still lists it to reopen."""

    __slots__ = ("foreign", "key", "listed", "markers", "name")

    def __init__(self, name: str, foreign: bool = False, key: str = "") -> None:
        self.name, self.foreign, self.key = name, foreign, key
        self.listed = bool(key)
        self.markers = 0  # for one closed and listed to reopen: the markers (table cells...) open around it


class OpenElements:
    """The open elements, innermost last, and the formatting elements closed but listed to reopen."""

    def __init__(self) -> None:
        self.open: list[_Open] = []
        self.closed: list[_Open] = []  # listed to reopen at the next text or inline start tag
        self.markers = 0  # marker elements in `open`
        self.deepest = 2  # <html> and <body>, there whether the page has them or not

    def in_foreign(self) -> bool:
        return bool(self.open) and self.open[-1].foreign and self.open[-1].name not in INTEGRATION

    def text(self) -> None:
        """Text reopens the listed formatting elements (in HTML content)."""
        if not self.in_foreign():
            self._reopen()

    def start(self, name: str, attributes: str, self_closing: bool) -> bool:
        """Take a start tag; returns whether it opened an HTML element (not SVG or MathML)."""
        if self.in_foreign():
            if name not in BREAKOUT and not (name == "font" and FONT_BREAKOUT.search(attributes)):
                if not self_closing:  # in SVG and MathML "/>" closes an element, in HTML it means nothing
                    self._push(_Open(name, foreign=True))
                return False
            while self.in_foreign():
                self.open.pop()
        if name in TABLE_PARTS and name != "table" and not self._in_table():
            return True  # a cell or row outside any table is dropped
        self._close_optional(name)
        if name not in KEEP_CLOSED:
            self._reopen()
        if name in IGNORED or name in VOID or (self_closing and name in ("svg", "math")):
            return name not in ("svg", "math")
        key = " ".join([name, *attributes.split()]) if name in FORMATTING else ""
        if key:
            self._list_at_most_three(key)
        self._push(_Open(name, foreign=name in ("svg", "math"), key=key))
        return name not in ("svg", "math")

    def end(self, name: str) -> None:
        """Take an end tag: it closes what the builder would close, at least, and nothing else."""
        if self.in_foreign():
            for i in range(len(self.open) - 1, max(-1, len(self.open) - 1 - WALK), -1):
                if not self.open[i].foreign:
                    break
                if self.open[i].name == name:
                    self._pop_to(i)
                    return
        if name in ("html", "body", "br") or name in VOID:
            return
        if name == "form":  # only the form leaves the stack: what it holds stays open
            found = self._find({"form"}, SCOPE)
            if found is not None:
                del self.open[found]
        elif name in ("p", "li"):
            self._close({name}, SCOPE | ({"button"} if name == "p" else {"ol", "ul"}))
        elif name in TABLE_PARTS:
            self._close({name}, TABLE_SCOPE)
        elif name in SPECIAL or name in CLOSE_P:
            self._close(HEADINGS if name in HEADINGS else {name}, SCOPE)  # </h2> closes an open <h3> too
        elif name in FORMATTING:
            self._adopt(name)
        else:
            self._close({name}, SPECIAL)  # any other element: not across a special one

    def _close_optional(self, name: str) -> None:
        """Close the open elements that a start tag `name` ends (a new paragraph ends the last one, and so on)."""
        if name in CLOSE_P:
            self._close({"p"}, SCOPE | {"button"})
        top = self.open[-1].name if self.open else ""
        if (name in HEADINGS and top in HEADINGS) or (name in ("option", "optgroup") and top == "option"):
            self._pop_to(len(self.open) - 1)
        if name in CLOSES:
            self._close(*CLOSES[name])
        elif name in ("a", "nobr"):  # a link inside a link ends the first one
            self._adopt(name)

    def _adopt(self, name: str) -> None:
        """End the formatting element `name`: one listed but closed is forgotten; with only phrasing elements above
        it they close with it; under a block (`<b><p>x</b>`) the builder's "adoption agency" takes it out of the
        stack and leaves the rest open (it may drop elements between the two too, which the scan keeps)."""
        for i in range(len(self.closed) - 1, -1, -1):
            if self.closed[i].name == name and self.closed[i].markers == self.markers:
                del self.closed[i]
                return
        found = self._find({name}, MARKERS)  # one opened outside a table cell is not the cell's to end
        if found is None:
            return
        if any(e.name in SPECIAL and not e.foreign for e in self.open[found + 1 :]):
            del self.open[found]
        else:
            self._pop_to(found)

    def _in_table(self) -> bool:
        """Whether the innermost table part open (`<table>`, a row, a cell...) is within `WALK` elements."""
        return any(element.name in TABLE_CONTEXT and not element.foreign for element in self.open[-WALK:])

    def _find(self, names: set[str] | frozenset[str], stops: set[str] | frozenset[str]) -> int | None:
        """The index of the innermost open element in `names` within `WALK` elements, unless one in `stops` or an
        SVG or MathML element comes first."""
        for i in range(len(self.open) - 1, max(-1, len(self.open) - 1 - WALK), -1):
            element = self.open[i]
            if element.name in names and not element.foreign:
                return i
            if element.name in stops or element.foreign:
                return None
        return None

    def _close(self, names: set[str] | frozenset[str], stops: set[str] | frozenset[str]) -> None:
        found = self._find(names, stops)
        if found is not None:
            self._pop_to(found)

    def _pop_to(self, index: int) -> None:
        """Close the element at `index` and all above it. The formatting elements among them stay listed to reopen,
        unless a marker (a table cell, an object...) closes below them; closing a marker forgets those inside it."""
        popped = self.open[index:]
        del self.open[index:]
        markers = [i for i, e in enumerate(popped) if e.name in MARKERS and not e.foreign]
        self.markers -= len(markers)
        self.closed = [e for e in self.closed if e.markers <= self.markers]
        for element in popped[1 : markers[0] if markers else None]:  # those inside a closing marker are forgotten
            if element.listed:
                element.markers = self.markers
                self.closed.append(element)

    def _reopen(self) -> None:
        """Reopen the listed formatting elements, those after the last marker (none closed outside a table cell is
        reopened inside it)."""
        for element in [e for e in self.closed if e.markers == self.markers]:
            self.closed.remove(element)
            self._push(element)

    def _list_at_most_three(self, key: str) -> None:
        """The builder lists at most three formatting elements alike (the "Noah's Ark" clause): the earliest of
        them is no longer reopened."""
        alike = [e for e in self.closed if e.key == key and e.markers == self.markers]
        for i in range(len(self.open) - 1, max(-1, len(self.open) - 1 - WALK), -1):
            element = self.open[i]
            if element.name in MARKERS and not element.foreign:
                break
            if element.listed and element.key == key:
                alike.insert(0, element)
        if len(alike) >= 3:
            alike[0].listed = False
            if alike[0] in self.closed:
                self.closed.remove(alike[0])

    def _push(self, element: _Open) -> None:
        self.open.append(element)
        self.markers += element.name in MARKERS and not element.foreign
        self.deepest = max(self.deepest, len(self.open) + 2)
