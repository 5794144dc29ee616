"""Indexing throughput against the bare encoder, and the cost of an incremental rebuild.

Corpora are made of real text: documents of 3 to 6 sentences drawn at random from the bundled corpus's sentences,
each with one word swapped for another of the corpus's words so that it is new (a build embeds each distinct
sentence once); sentence lengths and vocabulary are real, what a document says is not.

1. Full build (`rag.indexing.build`, ONNX backend) of a 2,000-document corpus, repeated; beside it, in the same
   run, the bare encoder (`Encoder.encode`, same batch size) on exactly the texts the build embeds (every
   sentence once), and on the chunk texts (what a design that embeds chunks would have to encode). The limit is
   the bare encoder's throughput on the build's own texts.
2. A 10,000-document corpus built once; then one document added and `build` run again, repeated: the incremental
   rebuild as a fraction of the full build.
3. Text without sentence ends: files of one line of real words with the punctuation taken out (each size in
   `--one-line-mb`), built in full: chunks/s against the prose corpus of step 1 (the goal: at least half),
   splitting time per MB (flat when it grows linearly), and how long until the first progress update.

    .venv/bin/python bench/indexing.py [--docs 2000] [--big 10000] [--repeats 3] [--one-line-mb 1 4] [--precision P]

The encoder runs at `--precision` (default: the setting's default); bench/encoder.py compares fp32 with int8.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import ROOT, peak_rss_mb, spread, write_result  # noqa: E402
from rag import (
    Settings,  # noqa: E402
    indexing,  # noqa: E402
)
from rag.embedding import Encoder  # noqa: E402
from rag.text.chunking import make_chunks, split_sentences  # noqa: E402


def real_sentences() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))]
    return [c.text[a - c.start : b - c.start] for t in texts for c in make_chunks("x", t) for a, b in c.sentences]


def write_corpus(folder: Path, n_docs: int, sentences: list[str], seed: int) -> None:
    """`n_docs` documents of 3 to 6 sentences drawn from `sentences`, each with one word swapped for a word of
    another sentence, so that nearly every sentence is new: a build embeds each distinct text once, and repeats
    would measure that, not the encoder."""
    rng = np.random.default_rng(seed)
    words = [w for s in sentences for w in s.split()]
    for i in range(n_docs):
        picks = rng.choice(len(sentences), size=int(rng.integers(3, 7)), replace=False)
        body = " ".join(swap_one_word(sentences[j], words, rng) for j in picks)
        path = folder / f"d{i // 1000:02d}" / f"doc{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Document {i}\n\n{body}\n", encoding="utf-8")


def swap_one_word(sentence: str, words: list[str], rng: np.random.Generator) -> str:
    """`sentence` with one of its words, not the last (which ends it), replaced by a word drawn from `words`."""
    tokens = sentence.split()
    if len(tokens) > 1:
        tokens[int(rng.integers(0, len(tokens) - 1))] = words[int(rng.integers(0, len(words)))]
    return " ".join(tokens)


def timed_build(settings: Settings, encoder: Encoder, full: bool) -> tuple[float, indexing.BuildReport]:
    start = time.perf_counter()
    _, report = indexing.build(settings, encoder, full=full, progress=False)
    return time.perf_counter() - start, report


def throughput(root: Path, encoder: Encoder, n_docs: int, sentences: list[str], repeats: int) -> dict[str, Any]:
    settings = Settings(corpus=root / "small", index=root / "small-index", precision=encoder.precision)
    write_corpus(settings.corpus, n_docs, sentences, seed=1)
    builds, bare, bare_chunks = [], [], []
    report = None
    for _ in range(repeats):
        seconds, report = timed_build(settings, encoder, full=True)
        builds.append(seconds)
        index = indexing.load(settings, encoder)
        own = indexing.store.sentence_texts(index.documents, index.chunks)  # each sentence once
        start = time.perf_counter()
        encoder.encode(own, settings.batch_size)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        encoder.encode([c.text for c in index.chunks], settings.batch_size)
        bare_chunks.append(time.perf_counter() - start)
    assert report is not None
    chunks = report.chunks
    words = sum(len(text.split()) for text in own)
    return {
        "documents": n_docs,
        "chunks": chunks,
        "words_per_chunk": round(words / chunks, 1),
        "sentences": report.sentences_embedded,
        "build_s": spread(builds),
        "bare_encoder_on_build_texts_s": spread(bare),
        "bare_encoder_on_chunk_texts_s": spread(bare_chunks),
        "build_chunks_per_s": round(chunks / float(np.median(builds)), 1),
        "bare_chunks_per_s_same_texts": round(chunks / float(np.median(bare)), 1),
        "bare_chunks_per_s_chunk_texts": round(chunks / float(np.median(bare_chunks)), 1),
        "build_vs_bare_same_texts": round(float(np.median(bare)) / float(np.median(builds)), 3),
        "build_vs_bare_chunk_texts": round(float(np.median(bare_chunks)) / float(np.median(builds)), 3),
    }


def incremental(root: Path, encoder: Encoder, n_docs: int, sentences: list[str], repeats: int) -> dict[str, Any]:
    settings = Settings(corpus=root / "big", index=root / "big-index", precision=encoder.precision)
    write_corpus(settings.corpus, n_docs, sentences, seed=2)
    full_s, report = timed_build(settings, encoder, full=True)
    added = []
    for i in range(repeats):
        extra = settings.corpus / f"added-{i}.txt"
        extra.write_text(f"Added {i}\n\n" + " ".join(sentences[i * 5 : i * 5 + 5]) + "\n", encoding="utf-8")
        seconds, step = timed_build(settings, encoder, full=False)
        assert step.added == [extra.name] and step.chunks_embedded >= 1
        added.append(seconds)
    return {
        "documents": n_docs,
        "chunks": report.chunks,
        "full_build_s": round(full_s, 2),
        "add_one_document_s": spread(added),
        "fraction_of_full": round(float(np.median(added)) / full_s, 4),
        "peak_rss_mb": peak_rss_mb(),
    }


def one_line_text(sentences: list[str], n_bytes: int, seed: int) -> str:
    """About `n_bytes` of real words on one line, without sentence ends."""
    words = [w.strip(".,;:!?\"'()") for s in sentences for w in s.split()]
    words = [w for w in words if w]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(words), size=n_bytes // 6)  # about 6 bytes a word with its space
    return " ".join(words[i] for i in picks)[:n_bytes]


def timed_split(text: str, chunk_words: int) -> tuple[float, float]:
    """Seconds to split `text` into sentences, and until the splitter's first progress report."""
    reports: list[float] = []
    started = time.perf_counter()
    split_sentences(text, chunk_words, progress=lambda _: reports.append(time.perf_counter()))
    return time.perf_counter() - started, reports[0] - started


def one_line(root: Path, encoder: Encoder, sizes_mb: list[float], sentences: list[str], prose: float) -> list[dict]:
    """Build a corpus of one one-line file per size: chunks/s against prose, splitting s/MB, first progress."""
    rows = []
    for i, mb in enumerate(sizes_mb):
        settings = Settings(corpus=root / f"line-{i}", index=root / f"line-{i}-index", precision=encoder.precision)
        settings.corpus.mkdir()
        text = one_line_text(sentences, int(mb * 1e6), seed=10 + i)
        (settings.corpus / "one-line.txt").write_text(text, encoding="utf-8")
        split_s, first_s = timed_split(text, settings.chunk_words)
        seconds, report = timed_build(settings, encoder, full=True)
        rows.append(
            {
                "megabytes": mb,
                "chunks": report.chunks,
                "build_s": round(seconds, 2),
                "build_chunks_per_s": round(report.chunks / seconds, 1),
                "vs_prose_chunks_per_s": round(report.chunks / seconds / prose, 3),
                "words_per_chunk": round(len(text.split()) / report.chunks, 1),
                "split_s_per_mb": round(split_s / mb, 3),
                "first_progress_s": round(first_s, 3),
            }
        )
        print(f"one line of {mb:g} MB: {rows[-1]}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--big", type=int, default=10_000, help="documents of the incremental run (0: skip it)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-line-mb", type=float, nargs="*", default=[1.0, 4.0])
    parser.add_argument("--out", default="indexing", help="result name (bench/results/NAME.json)")
    parser.add_argument("--precision", choices=["fp32", "int8"], default=Settings().precision_for(None))
    args = parser.parse_args()
    encoder = Encoder(precision=args.precision)
    sentences = real_sentences()
    root = Path(tempfile.mkdtemp(prefix="rag-indexing-"))
    try:
        figures: dict[str, Any] = {"precision": encoder.precision}
        figures["throughput"] = throughput(root, encoder, args.docs, sentences, args.repeats)
        t = figures["throughput"]
        print(
            f"build {t['build_chunks_per_s']} chunks/s; bare encoder on the same texts "
            f"{t['bare_chunks_per_s_same_texts']} ({t['build_vs_bare_same_texts']:.0%}); "
            f"on chunk texts {t['bare_chunks_per_s_chunk_texts']}",
            file=sys.stderr,
        )
        # Right after the prose builds, so that both meet the same machine (the incremental run takes minutes).
        figures["one_line"] = one_line(root, encoder, args.one_line_mb, sentences, t["build_chunks_per_s"])
        if args.big:
            figures["incremental"] = incremental(root, encoder, args.big, sentences, args.repeats)
            i = figures["incremental"]
            print(
                f"add one document to {i['documents']}: {i['add_one_document_s']['median']:.2f} s = "
                f"{i['fraction_of_full']:.2%} of a full build ({i['full_build_s']:.0f} s)",
                file=sys.stderr,
            )
        write_result(args.out, figures)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
