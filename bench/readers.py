"""Speed and text quality of the file readers: the PDF libraries compared, the chosen PDF and HTML readers timed.

    .venv/bin/python bench/readers.py [--repeats 3] [--pdf FILE ...] [--html FILE ...]

What is measured, and how:

* PDF: pages/s of pypdfium2, pypdf and pdfminer.six (each only if installed), and of `rag.readers.read_pdf`, on PDFs
  generated here with reportlab (one column over several pages; two columns written column by column; two columns
  written line by line across the page, as some converters do) and on real PDFs: those given with --pdf, plus the
  manuals found under /usr/share/doc. Each figure is the median of `--repeats` timed runs after one untimed run.
* PDF quality, for the generated files, whose text is known: the word-order similarity of the extracted words to
  the true ones (difflib's ratio over the word sequences: 1.0 is every word, in order). For every file: the words
  still broken by a hyphen at a line end ("Ex-" / "isting"), which no search will match.
* HTML: pages/s and the words of the main content recovered (recall) and the words outside it let in (noise) for
  `rag.readers.read_html` (selectolax) and trafilatura (if installed), on a generated page with navigation, header,
  footer and scripts, and on the pages given with --html or found in the Rust documentation of this machine, whose
  `<main>` element is the truth (each extractor gets the whole page).
* Encodings: how many of a set of paragraphs in legacy encodings chardetng and charset-normalizer decode correctly.

Results go to bench/results/readers.json; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import glob
import importlib.util
import io
import logging
import os
import random
import re
import statistics
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import time_ms, write_result  # noqa: E402
from rag.readers import read_html, read_pdf  # noqa: E402

WORD = re.compile(r"\w+")
BROKEN_WORD = re.compile(r"\w-\r?\n\w")
REAL_PDFS = ["/usr/share/doc/*/*.pdf"]
RUST_DOCS = "~/.rustup/toolchains/*/share/doc/rust/html"
REAL_HTML = [f"{RUST_DOCS}/book/ch0*.html", f"{RUST_DOCS}/rustdoc/*.html", f"{RUST_DOCS}/std/vec/struct.Vec.html"]
MAX_FOUND = 6  # found files per pattern: enough variety, and the bench stays within a few minutes
MIN_BYTES = 20_000  # real documents, not stubs or redirect pages
VOCABULARY = ("alpha", "beta", "gamma", "delta", "river", "mountain", "coffee", "paper", "engine", "signal", "harbor")
ENCODING_SAMPLES = [
    ("French", "latin-1", "Le café est très bon. Déjà vu, naïve façade à côté de l'hôtel, près de la forêt."),
    ("German", "cp1252", "Die Würde des Menschen ist unantastbar. „Größe“ – Straße für 5 €, schützen."),
    ("English", "cp1252", "He said “hello” – it’s only 5 € for the coffee… The résumé was naïve, but final."),
    ("Czech", "cp1250", "Příliš žluťoučký kůň úpěl ďábelské ódy. Všichni lidé rodí se svobodní a rovní."),
    ("Polish", "cp1250", "Wszyscy ludzie rodzą się wolni i równi pod względem swej godności i swych praw."),
    ("Russian", "cp1251", "Все люди рождаются свободными и равными в своем достоинстве и правах."),
    ("Russian", "koi8-r", "Все люди рождаются свободными и равными в своем достоинстве и правах."),
    ("Greek", "cp1253", "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα."),
    ("Japanese", "shift_jis", "これは日本語のテキストです。東京は大きい都市です。"),
    ("Chinese", "gbk", "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心。"),
]


def pdf_libraries() -> dict[str, Callable[[bytes], list[str]]]:
    """Each installed PDF library as a function from bytes to the text of each page."""

    def pdfium(data: bytes) -> list[str]:
        import pypdfium2

        doc = pypdfium2.PdfDocument(data)
        try:
            return [doc[i].get_textpage().get_text_bounded() for i in range(len(doc))]
        finally:
            doc.close()

    def pypdf(data: bytes) -> list[str]:
        import pypdf

        return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]

    def pdfminer(data: bytes) -> list[str]:
        from pdfminer.high_level import extract_pages
        from pdfminer.layout import LTTextContainer

        return [
            "".join(e.get_text() for e in p if isinstance(e, LTTextContainer)) for p in extract_pages(io.BytesIO(data))
        ]

    every: dict[str, Callable[[bytes], list[str]]] = {"pypdfium2": pdfium, "pypdf": pypdf, "pdfminer.six": pdfminer}
    found = {name: fn for name, fn in every.items() if importlib.util.find_spec(name.removesuffix(".six"))}
    found["rag read_pdf (pypdfium2)"] = rag_pages
    return found


def rag_pages(data: bytes) -> list[str]:
    got = read_pdf(data)
    return [got.text[a:b] for a, b in zip(got.pages, (*got.pages[1:], len(got.text)), strict=True)]


def generated_pdfs() -> list[tuple[str, bytes, str]]:
    """(name, bytes, true text) of the PDFs made here."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfgen import canvas
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    rng = random.Random(1)
    paragraphs = [" ".join(rng.choice(VOCABULARY) for _ in range(60)).capitalize() + "." for _ in range(40)]
    made = []
    for columns in (1, 2):
        out = io.BytesIO()
        doc = BaseDocTemplate(out, pagesize=A4, invariant=True)
        width = (A4[0] - 100 - 20 * (columns - 1)) / columns
        frames = [Frame(50 + i * (width + 20), 50, width, A4[1] - 100) for i in range(columns)]
        doc.addPageTemplates([PageTemplate(frames=frames)])
        doc.build([Paragraph(p, getSampleStyleSheet()["Normal"]) for p in paragraphs])
        made.append((f"generated, {columns} column{'s' * (columns > 1)}", out.getvalue(), "\n".join(paragraphs)))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=True)
    lines = [
        [f"{side} line {i} " + " ".join(rng.choice(VOCABULARY) for _ in range(4)) for i in range(40)]
        for side in ("left", "right")
    ]
    for i in range(40):  # each row across the page in turn: the stream interleaves the columns
        pdf.drawString(50, 800 - 18 * i, lines[0][i])
        pdf.drawString(330, 800 - 18 * i, lines[1][i])
    pdf.save()
    made.append(("generated, 2 columns written across", out.getvalue(), "\n".join(lines[0] + lines[1])))
    return made


def order_similarity(extracted: str, truth: str) -> float:
    """1.0 when the extracted words are the true words in the true order."""
    got, want = WORD.findall(extracted.lower()), WORD.findall(truth.lower())
    return round(difflib.SequenceMatcher(None, got, want, autojunk=False).ratio(), 3)


def median_seconds(calls: Mapping[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """The median seconds of each call, the calls taking turns (one untimed round first), so that a busy spell of
    the shared machine slows all of them alike rather than whichever ran then."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            samples[name] += time_ms(call, 1, warmup=0 if samples[name] else 1)
    return {name: statistics.median(times) / 1000 for name, times in samples.items()}


def bench_pdfs(files: list[tuple[str, bytes, str | None]], repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, data, truth in files:
        readable: dict[str, Callable[[], Any]] = {}
        texts: dict[str, list[str]] = {}
        for library, extract in pdf_libraries().items():
            try:
                texts[library] = extract(data)
                readable[library] = functools.partial(extract, data)
            except Exception as exc:  # a library that cannot read a file is a finding, not a crash
                rows.append({"file": name, "library": library, "error": f"{type(exc).__name__}: {exc}"[:120]})
        for library, seconds in median_seconds(readable, repeats).items():
            pages, text = len(texts[library]), "\n".join(texts[library])
            row: dict[str, Any] = {
                "file": name,
                "library": library,
                "pages": pages,
                "pages_per_s": round(pages / seconds, 1),
            }
            row["broken_words"] = len(BROKEN_WORD.findall(text))
            if truth is not None:
                row["order_similarity"] = order_similarity(text, truth)
            rows.append(row)
    return rows


def html_pages(given: list[Path]) -> list[tuple[str, bytes, str]]:
    """(name, bytes, true main text) of the generated page and of real pages that have a `<main>`."""
    from selectolax.lexbor import LexborHTMLParser

    body = " ".join(f"<p>{' '.join(random.Random(n).choices(VOCABULARY, k=50))}.</p>" for n in range(20))
    chrome = "<nav>" + " ".join(f"<a href=/{w}>{w} menu</a>" for w in VOCABULARY) + "</nav>"
    page = f"<html><head><title>T</title><script>var s='{' '.join(VOCABULARY)}';</script></head><body><header>Site"
    page += f" slogan words</header>{chrome}<div><h1>Headline</h1>{body}</div><footer>Copyright notice</footer></body>"
    truth = LexborHTMLParser(f"<h1>Headline</h1>{body}").body
    pages = [("generated, with nav/header/footer", page.encode(), truth.text(separator=" ") if truth else "")]
    for path in given or found_files(REAL_HTML):
        data = path.read_bytes()
        main = LexborHTMLParser(data).css_first("main")
        if main is not None:
            pages.append((path.name, data, main.text(separator=" ")))
    return pages


def bench_html(pages: list[tuple[str, bytes, str]], repeats: int) -> dict[str, Any]:
    extractors: dict[str, Callable[[bytes], str]] = {"rag read_html (selectolax)": lambda d: read_html(d).text}
    if importlib.util.find_spec("trafilatura"):
        import trafilatura

        extractors["trafilatura"] = lambda d: trafilatura.extract(d, output_format="markdown") or ""
    seconds: dict[str, list[float]] = {name: [] for name in extractors}
    for _, data, _ in pages:
        calls = {name: functools.partial(extract, data) for name, extract in extractors.items()}
        for name, value in median_seconds(calls, repeats).items():
            seconds[name].append(value)
    megabytes = sum(len(data) for _, data, _ in pages) / 1e6
    figures = {}
    for name, extract in extractors.items():
        recall, noise = zip(*(recall_noise(extract(data), truth) for _, data, truth in pages), strict=True)
        figures[name] = {
            "pages": len(pages),
            "pages_per_s": round(len(pages) / sum(seconds[name]), 1),
            "median_page_ms": round(statistics.median(seconds[name]) * 1000, 2),
            "mb_per_s": round(megabytes / sum(seconds[name]), 2),
            "mean_recall": round(statistics.mean(recall), 3),
            "mean_noise": round(statistics.mean(noise), 3),
        }
    return figures


def recall_noise(extracted: str, truth: str) -> tuple[float, float]:
    """Share of the true words found, and share of the extracted words that are not true ones (as multisets)."""
    from collections import Counter

    got, want = Counter(WORD.findall(extracted.lower())), Counter(WORD.findall(truth.lower()))
    common = sum((got & want).values())
    return common / max(1, want.total()), 1 - common / max(1, got.total())


def bench_encodings() -> dict[str, Any]:
    """Paragraphs in legacy encodings decoded correctly, out of all, by each detector."""
    detectors: dict[str, Callable[[bytes], str | None]] = {}
    if importlib.util.find_spec("chardetng_py"):
        import chardetng_py

        detectors["chardetng"] = lambda d: chardetng_py.detect(d, allow_utf8=False)
    if importlib.util.find_spec("charset_normalizer"):
        import charset_normalizer

        detectors["charset-normalizer"] = lambda d: getattr(charset_normalizer.from_bytes(d).best(), "encoding", None)
    figures = {}
    for name, detect in detectors.items():
        wrong = [f"{lang} {enc}" for lang, enc, text in ENCODING_SAMPLES if not decodes(text.encode(enc), detect, text)]
        figures[name] = {"correct": len(ENCODING_SAMPLES) - len(wrong), "of": len(ENCODING_SAMPLES), "wrong": wrong}
    return figures


def decodes(data: bytes, detect: Callable[[bytes], str | None], text: str) -> bool:
    try:
        return data.decode(detect(data) or "ascii") == text
    except (UnicodeDecodeError, LookupError):
        return False


def found_files(patterns: list[str]) -> list[Path]:
    """Up to `MAX_FOUND` files of at least `MIN_BYTES` for each glob pattern, in path order."""
    found: list[Path] = []
    for pattern in patterns:
        paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern)))
        found += [p for p in paths if p.stat().st_size >= MIN_BYTES][:MAX_FOUND]
    return found


def main() -> None:
    logging.getLogger("pdfminer").setLevel(logging.ERROR)  # its notes on permission flags are not findings
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pdf", type=Path, nargs="*", default=[])
    parser.add_argument("--html", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    pdfs: list[tuple[str, bytes, str | None]] = list(generated_pdfs())
    pdfs += [(p.name, p.read_bytes(), None) for p in args.pdf + found_files(REAL_PDFS)]
    figures = {
        "pdf": bench_pdfs(pdfs, args.repeats),
        "html": bench_html(html_pages(args.html), args.repeats),
        "encodings": bench_encodings(),
    }
    write_result("readers", figures)
    print_tables(figures)


def print_tables(figures: dict[str, Any]) -> None:
    print("| PDF | library | pages | pages/s | word order | broken words |\n|---|---|---:|---:|---:|---:|")
    for r in figures["pdf"]:
        cells = [r.get(k, "") for k in ("pages", "pages_per_s", "order_similarity", "broken_words")]
        print(
            f"| {r['file']} | {r['library']} | "
            + " | ".join(str(c) for c in cells)
            + (f" {r['error']} |" if "error" in r else " |")
        )
    print("\n| HTML extractor | pages | pages/s | median ms/page | MB/s | recall of main text | noise |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f in figures["html"].items():
        cells = [f[k] for k in ("pages", "pages_per_s", "median_page_ms", "mb_per_s", "mean_recall", "mean_noise")]
        print(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    print("\n| detector | correct | wrong |\n|---|---:|---|")
    for name, f in figures["encodings"].items():
        print(f"| {name} | {f['correct']}/{f['of']} | {', '.join(f['wrong'])} |")


if __name__ == "__main__":
    main()
