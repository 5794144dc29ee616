"""How deep an HTML page nests: the bound the HTML reader puts on it, checked before and after parsing.

Lexbor's tree builder walks the stack of open elements for many start tags (the HTML standard's "has an element in
scope" checks), so parsing costs about 2.3 ns times the depth for each tag (measured: 100,000 `<p></p>` take 0.15 s
under 500 open elements and 1.2 s under 5,000), and a page that only opens elements costs the square of its length:
100,000 `<div/>` (600 kB; the slash means nothing on a `<div>`) took over 40 s.

`MAX_DEPTH` is 512, the depth at which Chrome's and Safari's parsers stop nesting (Blink's and WebKit's
`kMaximumHTMLParserDOMTreeDepth`), so no page that renders as written in those browsers is refused. Under it a tag
costs at most ~1.2 us more than on a flat page.

`too_deep` checks the tree Lexbor built, exactly (one CSS query, ~3 ms for a 2 MB page). Before parsing, a page with
more tags than `PARSE_FREELY` is first scanned by `estimate_depth`, since its parse alone could take long: a linear
scan of its tags that follows the rules of the HTML standard's tokenizer (comments, raw text, script escapes,
quoted attribute values) and the tree builder's rules that decide depth (void and self-closing elements, end tags
that close nothing, optional end tags, the formatting elements it reopens, foreign content). Where it cannot tell,
it counts high; elements it does not count (an implied `<tbody>`) add at most a small factor.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .open_elements import OpenElements

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

MAX_DEPTH = 512
# A page of fewer tags parses within ~0.12 s however it nests (1.15e-9 s x tags^2, measured), so it is parsed and
# its tree checked; a page of more is scanned first.
PARSE_FREELY = 10_000

_WS = "\t\n\f\r "


# One tag, from "<" to its ">" (or the end of the page): name, attributes with quoted or unquoted values, a final
# "/". Possessive quantifiers keep it linear: the old pattern backtracked, and 20,000 "<a" took 8 s.
TAG = re.compile(
    rf"<(/?)([a-zA-Z][^{_WS}/>]*+)((?:[{_WS}]++|/(?!>)|[^{_WS}/>][^{_WS}/>=]*+"
    rf"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z)|[^{_WS}>]*+))?)*+)(/?)(>|\Z)"
)
MARKUP = re.compile(r"<[!?/a-zA-Z]")  # a tag, comment, doctype or bogus comment; a "<" before anything else is text
COMMENT_END = re.compile(r"--!?>")
SCRIPT_TOKEN = re.compile(rf"<!--|-->|<(/?)script[{_WS}/>]", re.I)
RAW_TEXT = {name: re.compile(rf"</{name}[{_WS}/>]", re.I) for name in ("iframe", "noembed", "noframes", "style")}
RAW_TEXT |= {name: re.compile(rf"</{name}[{_WS}/>]", re.I) for name in ("textarea", "title", "xmp")}


def too_deep(tree: LexborHTMLParser) -> bool:
    """Whether an element of the parsed page lies more than `MAX_DEPTH` elements deep."""
    return tree.css_first(" > ".join(["*"] * (MAX_DEPTH + 1))) is not None


def estimate_depth(html: str, limit: int = MAX_DEPTH) -> int:
    """How deep the elements of `html` will nest once parsed, from its tags alone (a linear scan); the scan stops as
    soon as the depth passes `limit`."""
    stack = OpenElements()
    pos = 0
    while stack.deepest <= limit and (markup := MARKUP.search(html, pos)) is not None:
        if markup.start() > pos:
            stack.text()
        pos = _token(html, markup.start(), stack)
        if pos < 0:  # the rest of the page is a comment, raw text or one unfinished tag
            break
    return stack.deepest


def _token(html: str, lt: int, stack: OpenElements) -> int:
    """Take the markup at `html[lt]`; returns where the next may begin, or -1 when the page ends in it."""
    kind = html[lt + 1]
    if kind == "!":
        if html.startswith("<!--", lt):
            return _comment_end(html, lt)
        cdata = stack.in_foreign() and html.startswith("<![CDATA[", lt)
        return _past(html, "]]>" if cdata else ">", lt)
    tag = TAG.match(html, lt) if kind != "?" else None
    if tag is None:  # "<?...>" and "</" without a name are bogus comments; "</>" is nothing
        return lt + 3 if html.startswith("</>", lt) else _past(html, ">", lt)
    if not tag.group(5):  # the page ends inside the tag, which is then dropped
        return -1
    name = tag.group(2).lower()
    if tag.group(1):
        stack.end(name)
        return tag.end()
    as_html = stack.start(name, tag.group(3), bool(tag.group(4)))
    if not as_html or (name not in RAW_TEXT and name not in ("script", "plaintext")):
        return tag.end()
    if name == "script":
        return _script_end(html, tag.end())
    end = RAW_TEXT[name].search(html, tag.end()) if name in RAW_TEXT else None  # <plaintext>: text to the end
    return end.start() if end else -1


def _past(html: str, end: str, start: int) -> int:
    found = html.find(end, start + 2)
    return -1 if found < 0 else found + len(end)


def _comment_end(html: str, lt: int) -> int:
    """The end of the comment opened at `lt`: "<!-->" and "<!--->" end at once, others at "-->" or "--!>"."""
    for short in (">", "->"):
        if html.startswith(short, lt + 4):
            return lt + 4 + len(short)
    end = COMMENT_END.search(html, lt + 4)
    return end.end() if end else -1


def _script_end(html: str, pos: int) -> int:
    """Where the script from `pos` ends (its end tag), by the tokenizer's script states: after "<!--" a "<script"
    hides the next "</script>", and "-->" ends that."""
    state = "data"
    while (token := SCRIPT_TOKEN.search(html, pos)) is not None:
        text = token.group()
        pos = token.start() + 2 if text == "<!--" else token.end()  # "<!-->" opens and closes at once
        if text == "<!--" and state == "data":
            state = "escaped"
        elif text == "-->":
            state = "data"
        elif token.group(1) and state != "double":
            return token.start()
        elif token.group(1):
            state = "escaped"
        elif state == "escaped":
            state = "double"
    return -1
