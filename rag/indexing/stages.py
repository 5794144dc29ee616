"""The two stages of a build that take its time: splitting the new documents into sentences and chunks, and
embedding their sentences; both report progress and stop when the build is cancelled (`builder.build`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ..config import Settings
from ..embedding import Encoder
from ..errors import Cancelled
from ..readers.documents import Document
from ..text.chunking import Chunk, pack_chunks, split_sentences
from .progress import Progress, bar

Split = tuple[list[tuple[int, int]], list[Chunk]]  # a document's sentence spans and chunks


def stopper(cancel: threading.Event | None) -> Callable[[], None]:
    """A check the long loops of a build call as they go: raises `Cancelled` once `cancel` is set."""

    def stop() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("the rebuild was cancelled; the index was left as it was")

    return stop


def split_documents(
    docs: list[Document], settings: Settings, progress: Progress, stop: Callable[[], None]
) -> dict[str, Split]:
    """Sentences and chunks of each document in `docs`, with a progress bar over their characters (shown within
    a second even for one long document: the splitter reports window by window, and `stop` is asked each time)."""
    fresh: dict[str, Split] = {}
    total = sum(len(d.text) for d in docs)
    with bar(progress, "splitting", total, unit="char", unit_scale=True) as shown:

        def advance(chars: int) -> None:
            stop()
            shown.update(chars)

        for doc in docs:
            sentences = split_sentences(doc.text, settings.chunk_words, progress=advance)
            chunks = pack_chunks(doc.source, doc.text, sentences, settings.chunk_words, settings.chunk_overlap)
            fresh[doc.source] = (sentences, chunks)
    return fresh


def embed_documents(
    encoder: Encoder,
    docs: list[Document],
    fresh: dict[str, Split],
    batch_size: int,
    progress: Progress,
    stop: Callable[[], None],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Chunk and sentence vectors of each document in `docs`, with one progress bar over the sentences.

    Only sentences are encoded, each distinct text once (a file of one phrase repeated, issue #11, is a few
    texts, not thousands); a chunk's vector is the normalized mean of its sentences' vectors. That costs fewer
    tokens than encoding chunks too (sentences are short, and attention grows with length), and retrieved as well
    or better on our question sets (README, "How it works"). `stop` is asked after every batch.
    """
    rows: dict[str, int] = {}
    texts = [doc.text[a:b] for doc in docs for a, b in fresh[doc.source][0]]
    where = np.fromiter((rows.setdefault(t, len(rows)) for t in texts), dtype=np.int64, count=len(texts))
    distinct = list(rows)
    with bar(progress, "embedding", len(distinct), unit="sentence") as shown:

        def advance(done: int) -> None:
            shown.update(done)
            stop()

        vectors = encoder.encode(distinct, batch_size, progress=advance)[where]
    out, row = {}, 0
    for doc in docs:
        sentences, chunks = fresh[doc.source]
        own = vectors[row : row + len(sentences)]
        out[doc.source] = (mean_vectors(own, chunks), own)
        row += len(sentences)
    return out


def mean_vectors(sentence_vectors: np.ndarray, chunks: list[Chunk]) -> np.ndarray:
    """Each chunk's vector: the mean of its sentences' vectors (rows of `sentence_vectors`), L2-normalized."""
    out = np.zeros((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    for i, chunk in enumerate(chunks):
        out[i] = sentence_vectors[chunk.first_sentence : chunk.first_sentence + len(chunk.sentences)].mean(axis=0)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
