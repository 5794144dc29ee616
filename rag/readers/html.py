"""HTML (.html, .htm): the main content as paragraphs, through selectolax (the Lexbor HTML5 parser; MIT).

Chosen over trafilatura (Apache-2.0) by measurement (`bench/readers.py`, 15 pages: Rust book and rustdoc pages,
whose `<main>` is the truth, and a generated page with navigation, header and footer): a median 4.7 ms a page
against 20 ms (4.3 MB/s against 0.64), 98% of the main text's words recovered against 95%, no words from outside
it against 0.2%. It needs one small wheel where trafilatura brings a dozen packages (lxml, dateparser, babel,
justext...), and gives the output the index needs: each heading, paragraph, list item and table its own paragraph,
white space collapsed as a browser does.

The readability rules are few: the content is `<main>` (or the page's only `<article>`), else `<body>` less its
page header and footer; navigation, scripts, styles, forms and hidden elements go; so does a list, table or block
whose text is mostly links (menus, tag clouds, "related" boxes). A page of nothing but links is kept whole.

Headings are written markdown style ("## Setup"), so that they stand out as headings and `make_title` can strip them;
a heading's permalink (a link without a letter or digit: "¶", "#", "🔗", an icon) is dropped.
Table rows are one line each, cells joined by " | ". The encoding comes from the byte-order mark, then a meta charset
or XML declaration, then UTF-8, then detection.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import Extracted, Unreadable
from .charsets import encoding_for
from .encoding import decode
from .nesting import MAX_DEPTH, PARSE_FREELY, estimate_depth, too_deep
from .titles import meaningful

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

# Elements whose content is code, markup for later or an embedded resource: never the page's text, pruned or not.
NOT_TEXT = "script, style, noscript, template, svg, canvas, iframe, object, embed"
DROP = (
    f"{NOT_TEXT}, form, button, select, nav, aside, dialog,"
    " [role=navigation], [role=search], [role=complementary], [hidden], [aria-hidden=true]"
)
PAGE_CHROME = "header, footer, [role=banner], [role=contentinfo]"
LINK_LISTS = frozenset({"ul", "ol", "menu", "dl", "table", "div", "section"})
# Mozilla Readability drops a block whose link density is over 0.5: mostly links means navigation, not prose.
MAX_LINK_DENSITY = 0.5
BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div", "dl", "dt", "fieldset"}
    | {"figcaption", "figure", "footer", "header", "hr", "li", "main", "ol", "p", "section", "summary", "ul"}
)
HEADINGS = {f"h{level}": level for level in range(1, 7)}
CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.I)
PRESCAN_BYTES = 1024  # the HTML standard looks for the meta charset in the first 1024 bytes
SPACES = re.compile(r"\s+")
TOO_DEEP = f"HTML nesting deeper than {MAX_DEPTH} levels, where browsers stop nesting"


def read_html(data: bytes) -> Extracted:
    """The page's main content, one block a paragraph; the title from `<title>`, else the first `<h1>`."""
    from selectolax.lexbor import LexborHTMLParser  # lazily, with the rest of the HTML machinery

    html = decode(data, declared_charset(data))
    if html.count("<") > PARSE_FREELY and estimate_depth(html) > MAX_DEPTH:  # refused before a long parse
        raise Unreadable(TOO_DEEP)
    tree = LexborHTMLParser(html)
    if too_deep(tree):
        raise Unreadable(TOO_DEEP)
    if tree.body is None:
        raise Unreadable("HTML without a body")
    _drop_permalinks(tree.body)
    heading = tree.css_first("title") or tree.css_first("h1")
    title = meaningful(heading.text()) if heading is not None else None
    if title is None and (h1 := tree.css_first("h1")) is not None:
        title = meaningful(h1.text())
    text = _paragraphs(_prune(_content(tree.body)))
    if not _has_words(text):  # nothing but links, say an index page: then keep everything that is text
        text = _paragraphs(_drop_permalinks(_drop(LexborHTMLParser(html).body or tree.body, NOT_TEXT)))
    if not _has_words(text):
        raise Unreadable("no words to index outside scripts, styles and embedded content")
    return Extracted(text, "html", title)


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _drop_permalinks(root: LexborNode) -> LexborNode:
    """`root` without its headings' permalinks: links without a letter or digit (Sphinx's "¶", "#", an icon)."""
    for link in root.css(", ".join(f"{h} a" for h in HEADINGS)):
        if not _has_words(link.text(deep=True)):
            link.decompose()
    return root


def declared_charset(data: bytes) -> str | None:
    """The encoding the page declares in its first bytes, if it is a WHATWG label (`charsets`; any other is ignored,
    as browsers do); a UTF-16 label means UTF-8 (the HTML standard's prescan: the page's ASCII bytes declared it)."""
    found = CHARSET.search(data[:PRESCAN_BYTES])
    encoding = encoding_for((found.group(1) or found.group(2)).decode("ascii")) if found else None
    return "utf-8" if encoding in ("utf-16be", "utf-16le") else encoding


def _content(body: LexborNode) -> LexborNode:
    """`<main>`, else the only `<article>`, else the body less the page header and footer."""
    main = body.css_first("main, [role=main]")
    articles = body.css("article")
    if main is None and len(articles) == 1:
        main = articles[0]
    if main is not None:
        return main
    in_articles = {node.mem_id for node in body.css(", ".join(f"article {s}" for s in PAGE_CHROME.split(", ")))}
    for node in body.css(PAGE_CHROME):
        if node.mem_id not in in_articles:  # an article's own header (its headline) is content
            node.decompose()
    return body


def _prune(root: LexborNode) -> LexborNode:
    """`root` without boilerplate; blocks of links are judged innermost first, so a wrapper is not lost with them."""
    for node in _link_blocks(_drop(root, DROP)):
        node.decompose()
    return root


def _drop(root: LexborNode, selector: str) -> LexborNode:
    """`root` without the elements `selector` matches."""
    for node in root.css(selector):
        node.decompose()
    return root


def _link_blocks(root: LexborNode) -> list[LexborNode]:
    """The blocks whose text is mostly links, innermost first; a block's text excludes the link blocks inside it.

    One pass after the children (post-order), with an explicit stack: linear in the size of the page at any depth.
    """
    found: list[LexborNode] = []
    totals: list[list[int]] = [[0, 0]]  # [text, link text] characters of the element being summed, per open level
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if node.is_text_node:
            totals[-1][0] += len(SPACES.sub("", node.text_content or ""))
        elif leaving:
            text, links = totals.pop()
            links = text if node.tag == "a" else links
            if node.tag in LINK_LISTS and text and links > MAX_LINK_DENSITY * text:
                found.append(node)
            else:
                totals[-1][0] += text
                totals[-1][1] += links
        elif node.is_element_node:
            totals.append([0, 0])
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
    return found


def _paragraphs(root: LexborNode) -> str:
    """The text of `root`, one paragraph a block, paragraphs separated by blank lines."""
    paragraphs: list[str] = []
    inline: list[str] = []
    stack: list[tuple[LexborNode, bool]] = [(root, False)]  # (node, leaving): an explicit stack, for any depth
    while stack:
        node, leaving = stack.pop()
        tag = node.tag or ""
        if leaving:
            _flush(inline, paragraphs, "#" * HEADINGS.get(tag, 0))
        elif node.is_text_node:
            inline.append(SPACES.sub(" ", node.text_content or ""))
        elif tag == "br":
            inline.append("\n")
        elif tag in ("pre", "table"):
            _flush(inline, paragraphs)
            paragraphs.append(_preformatted(node) if tag == "pre" else _table(node))
        elif node.is_element_node:
            block = tag in BLOCKS or tag in HEADINGS
            if block:
                _flush(inline, paragraphs)
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
    _flush(inline, paragraphs)
    return "\n\n".join(p for p in paragraphs if p)


def _flush(inline: list[str], paragraphs: list[str], marks: str = "") -> None:
    lines = (" ".join(line.split()) for line in "".join(inline).split("\n"))
    text = "\n".join(line for line in lines if line)
    inline.clear()
    if text:
        paragraphs.append(f"{marks} {text}" if marks else text)


def _preformatted(node: LexborNode) -> str:
    lines = [line.rstrip() for line in node.text(deep=True).split("\n")]
    return "\n".join(lines).strip("\n")


def _table(table: LexborNode) -> str:
    """The caption and rows, one row a line, cells joined by " | "; a nested table is flattened into its cell."""
    lines = []
    for part in table.iter():
        if part.tag == "caption" and part.text().strip():
            lines.append(" ".join(part.text().split()))
        for row in [part] if part.tag == "tr" else part.iter() if part.tag in ("thead", "tbody", "tfoot") else []:
            cells = [" ".join(cell.text(separator=" ").split()) for cell in row.iter() if cell.tag in ("td", "th")]
            if row.tag == "tr" and any(cells):
                lines.append(" | ".join(cells))
    return "\n".join(lines)
