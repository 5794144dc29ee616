"""How cost grows with the corpus: synthetic indexes of 10k, 100k and 1M chunks, searched by the real pipeline.

Embedding a million real chunks takes many hours on two cores, so the large corpora are generated:
- Text: sentences of 12-28 words drawn from a Zipf law (exponent 1.07) over a 200,000-word vocabulary whose most
  frequent words are the bundled corpus's own words, in their order of frequency, and whose tail is made-up words,
  so that term statistics look like a real corpus's (a few very common terms, a long tail of rare ones). Three or
  four sentences a chunk, ten chunks a document.
- Vectors: the real embeddings of the bundled corpus's sentences; each synthetic sentence's vector is a random
  convex mixture (Dirichlet weights) of three of them plus Gaussian noise (sigma 0.02 a dimension), re-normalized,
  so vectors fill the region real sentence vectors span rather than sit in a few tight clusters; a chunk's vector
  is the normalized mean of its sentences' (as `rag index` does).
- Questions: the team's own questions (bench/tuning.jsonl), encoded for real; the question encoder is timed too.
The index is assembled by `rag.indexing.assemble`, exactly as a full `rag index` assembles one (one segment: BM25
postings, sentence table, FAISS structure chosen by size: exact below 5,000 chunks, HNSW from there), then saved and
loaded back from disk.

For each size: build time by part, peak memory, size on disk per chunk, latency by stage, the ratio of `ask` to the
floor, and the approximate search's recall@10 against exact search on the same vectors.

    .venv/bin/python bench/scale.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import RESULTS, ROOT, peak_rss_mb, questions, write_result  # noqa: E402
from bench.stages import time_stages  # noqa: E402
from rag import (
    Settings,  # noqa: E402
    indexing,  # noqa: E402
)
from rag.embedding import Encoder  # noqa: E402
from rag.engines.local import LocalEngine, Segment  # noqa: E402
from rag.indexing import store  # noqa: E402
from rag.indexing.store import DocumentEntry  # noqa: E402
from rag.indexing.texts import Texts  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402
from rag.text.chunking import Chunk, make_chunks  # noqa: E402

VOCABULARY = 200_000
ZIPF = 1.07
NOISE = 0.02
MIXED = 3
CHUNKS_PER_DOC = 10


def vocabulary(texts: list[str]) -> list[str]:
    """The bundled corpus's words by frequency, then made-up words up to `VOCABULARY`."""
    counts = Counter(w for t in texts for w in re.findall(r"[a-z]+", t.lower()) if len(w) > 1)
    words = [w for w, _ in counts.most_common()]
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made_up = set()
    while len(words) + len(made_up) < VOCABULARY:
        made_up.add("".join(rng.choice(letters, size=rng.integers(5, 11))))
    return words + sorted(made_up - set(words))[: VOCABULARY - len(words)]


def generate(n_chunks: int, words: list[str], base: np.ndarray, seed: int = 1) -> tuple[list, list, np.ndarray]:
    """Documents, chunks and sentence vectors of a synthetic corpus of `n_chunks` chunks."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    cdf = np.cumsum(ranks**-ZIPF)
    cdf /= cdf[-1]
    vocab = np.array(words, dtype=object)
    per_chunk = rng.integers(3, 5, size=n_chunks)
    n_sentences = int(per_chunk.sum())
    lengths = rng.integers(12, 29, size=n_sentences)
    tokens = vocab[np.searchsorted(cdf, rng.random(int(lengths.sum())))]
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    sentences = [" ".join(tokens[bounds[i] : bounds[i + 1]]).capitalize() + "." for i in range(n_sentences)]
    documents, chunks, s = [], [], 0
    for d in range(0, n_chunks, CHUNKS_PER_DOC):
        source, offset, first = f"synthetic/{d // CHUNKS_PER_DOC:06d}.txt", 0, 0
        doc_chunks = []
        for c in range(d, min(d + CHUNKS_PER_DOC, n_chunks)):
            spans, parts = [], []
            for text in sentences[s : s + per_chunk[c]]:
                spans.append((offset, offset + len(text)))
                parts.append(text)
                offset += len(text) + 1
            chunk_text = " ".join(parts)
            doc_chunks.append(
                Chunk(f"{source}#{len(doc_chunks)}", source, spans[0][0], spans[-1][1], chunk_text, tuple(spans), first)
            )
            first += len(spans)
            s += per_chunk[c]
        documents.append(DocumentEntry(source, source, "0" * 64, offset, 0, len(doc_chunks), first))
        chunks += doc_chunks
    del tokens, sentences
    vectors = np.zeros((n_sentences, base.shape[1]), dtype=np.float16)  # as the index keeps them
    for start in range(0, n_sentences, 100_000):  # in slices: float32 temporaries stay small
        rows = min(100_000, n_sentences - start)
        mix = rng.dirichlet(np.ones(MIXED), size=rows).astype(np.float32)
        picks = np.einsum("ij,ijk->ik", mix, base[rng.integers(0, len(base), size=(rows, MIXED))])
        picks += rng.normal(0, NOISE, size=picks.shape).astype(np.float32)
        vectors[start : start + rows] = picks / np.linalg.norm(picks, axis=1, keepdims=True)
    return documents, chunks, vectors


def mean_vectors_all(sentence_vectors: np.ndarray, documents: list[DocumentEntry], chunks: list[Chunk]) -> np.ndarray:
    """Chunk vectors of a whole index from its sentence vectors (rows in document order)."""
    out, chunk_row, sentence_row = [], 0, 0
    for doc in documents:
        own = sentence_vectors[sentence_row : sentence_row + doc.sentences]
        out.append(indexing.mean_vectors(own, chunks[chunk_row : chunk_row + doc.chunks]))
        chunk_row, sentence_row = chunk_row + doc.chunks, sentence_row + doc.sentences
    return np.vstack(out) if out else np.zeros((0, sentence_vectors.shape[1]), dtype=np.float32)


def document_texts(chunks: list[Chunk]) -> Texts:
    """Each synthetic document's text: its chunks, which `generate` lays out one space apart."""
    parts: dict[str, list[str]] = {}
    for chunk in chunks:
        parts.setdefault(chunk.source, []).append(chunk.text)
    return Texts({source: " ".join(texts) for source, texts in parts.items()})


def only_segment(index: store.Index) -> Segment:
    """The one segment of an index a full build made (every chunk, every vector)."""
    engine = index.engine
    assert isinstance(engine, LocalEngine) and len(engine.segments) == 1, "a full build makes one segment"
    return engine.segments[0]


def dense_params(index: store.Index) -> dict[str, Any]:
    """The dense structure's type and parameters, as the manifest records them for the one segment."""
    (segment,) = index.manifest["segments"]
    return dict(segment["dense"])


def recall_at_10(index: store.Index, queries: np.ndarray) -> float | None:
    """Recall@10 of the index's dense structure against exact search on the same vectors."""
    if dense_params(index)["type"] == "flat":
        return None
    segment = only_segment(index)
    exact = faiss.IndexFlatIP(index.dimension)
    exact.add(np.ascontiguousarray(segment.vectors))
    faiss.omp_set_num_threads(2)
    _, truth = exact.search(queries, 10)
    faiss.omp_set_num_threads(1)
    _, found = segment.structure.index.search(queries, 10)
    return round(float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])), 4)


def by_document(
    documents: list[store.DocumentEntry], chunk_vectors: np.ndarray, sentence_vectors: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each document's chunk and sentence vectors (views of the arrays of all documents)."""
    out, chunk, sentence = {}, 0, 0
    for d in documents:
        out[d.source] = (chunk_vectors[chunk : chunk + d.chunks], sentence_vectors[sentence : sentence + d.sentences])
        chunk, sentence = chunk + d.chunks, sentence + d.sentences
    return out


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_size(n: int, words: list[str], base: np.ndarray, encoder: Encoder, qs: list[str]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    documents, chunks, sentence_vectors = generate(n, words, base)
    timings["generate_s"] = time.perf_counter() - start
    chunk_vectors = mean_vectors_all(sentence_vectors, documents, chunks)
    settings = Settings(corpus=ROOT / "corpus", index=Path(tempfile.mkdtemp(prefix="rag-scale-")) / "index")
    manifest = store.build_manifest(indexing.index_settings(settings, encoder), documents, len(chunks), {})
    start = time.perf_counter()
    vectors = by_document(documents, chunk_vectors, sentence_vectors)
    index = indexing.assemble(settings, manifest, documents, chunks, document_texts(chunks), vectors)
    timings["assemble_s"] = time.perf_counter() - start
    del chunk_vectors, sentence_vectors, vectors
    start = time.perf_counter()
    store.save(index, settings.index)
    timings["save_s"] = time.perf_counter() - start
    disk = folder_bytes(settings.index)
    build_peak_rss_mb = peak_rss_mb()
    del index, chunks, documents
    gc.collect()
    start = time.perf_counter()
    loaded = indexing.load(settings, encoder)
    timings["load_s"] = time.perf_counter() - start
    assistant = Assistant(settings, loaded, encoder)
    queries = np.vstack([encoder.encode_one(q) for q in qs])
    rng = np.random.default_rng(3)  # more queries for recall: noisy copies of stored chunk vectors
    extra = only_segment(loaded).vectors[rng.integers(0, n, size=200)] + rng.normal(0, NOISE, (200, loaded.dimension))
    extra = (extra / np.linalg.norm(extra, axis=1, keepdims=True)).astype(np.float32)
    figures = {
        "chunks": n,
        "dense": dense_params(loaded),
        "build": {k: round(v, 2) for k, v in timings.items()},
        "disk_bytes_per_chunk": round(disk / n, 1),
        "peak_rss_mb": build_peak_rss_mb,  # generating and building (the peak of the process so far)
        "recall_at_10": recall_at_10(loaded, np.vstack([queries, extra])),
        "stages": time_stages(assistant, qs, rounds=5),
    }
    shutil.rmtree(settings.index.parent, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    encoder = Encoder()
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))]
    real = [c.text[a - c.start : b - c.start] for t in texts for c in make_chunks("x", t) for a, b in c.sentences]
    base = encoder.encode(sorted(set(real)))
    words, qs = vocabulary(texts), questions()
    previous = RESULTS / "scale.json"  # sizes not measured in this run are kept from the last one
    results = json.loads(previous.read_text())["figures"] if previous.exists() else {}
    for n in args.sizes:
        print(f"{n} chunks ...", file=sys.stderr, flush=True)
        results[str(n)] = run_size(n, words, base, encoder, qs)
        s = results[str(n)]["stages"]
        print(
            f"  ask {s['ask']['median']:.2f} ms, floor {s['floor']['median']:.2f} ms, ratio {s['ratio_to_floor']}, "
            f"recall@10 {results[str(n)]['recall_at_10']}, build {results[str(n)]['build']}",
            file=sys.stderr,
        )
        write_result("scale", dict(sorted(results.items(), key=lambda kv: int(kv[0]))))


if __name__ == "__main__":
    main()
