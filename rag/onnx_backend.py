"""The ONNX Runtime encoder: the same sentence-transformers model, exported once on this machine, about 3x faster
per question than PyTorch on a CPU and free of PyTorch at run time (so `rag ask` starts in a fraction of the time).

The export writes the model's whole sentence-transformers pipeline (transformer, pooling, normalization) as one
ONNX graph: for a BERT model (the bundled one) straight from its safetensors weights with the `onnx` package, no
PyTorch (`onnx_graph.py`; its vectors equal sentence-transformers', tests/test_onnx_graph.py), for another model
through `torch.onnx.export` when the `[torch]` extra is installed (`onnx_torch.py`, checked against PyTorch's
vectors on probe texts, cosine at least 0.9999). The result is kept in a cache folder keyed by the model's files.
Nothing is downloaded. At run time only `onnxruntime` and `tokenizers` (the Rust tokenizer sentence-transformers
itself uses) are loaded.

Precision `int8` runs a copy quantized from that export, also once, locally (`quantize`): per-channel dynamic int8
weights for the MatMul layers with constant weights only (attention products, layer norms, GELU and the embedding
table stay float32), one text a call (`OnnxEncoder`). Indexing runs batches side by side on one-thread lanes
(`encode_batches`), which suits int8's small calls. On two AMD EPYC cores (AVX2, no VNNI; bench/encoder.py) int8
encoded a question 1.4x and built an index 1.4-1.5x faster than fp32, cosine 0.992 mean / 0.975 min to the fp32
sentence vectors; one int8 MatMul layer alone is only 1.5-1.75x as fast as fp32's there, the ceiling.
../shared/FACTS.md measured ~1.9x a question on an Intel Xeon. Quantizing every op, per tensor (onnxruntime's
default), gave cosine 0.84-0.97 and changed rankings (FACTS), so it is not offered; what else was tried is in the
README (Quality, int8).
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

PROBES = ["When did Japan and Ukraine establish diplomatic relations?", "A short one.", "x " * 300]
MIN_COSINE = 0.9999
PRECISIONS = ("fp32", "int8")
FILES = {"fp32": "model.onnx", "int8": "model-int8.onnx"}  # both in the export's cache folder
# What the model's one-time preparation says: the CLI prints it (at INFO, this logger only); a program using rag
# configures logging.
log = logging.getLogger("rag.model")
# 0.98: the quantized bundled model gave 0.992-0.994 on the probes, and 0.992 mean / 0.975 min (a three-word
# sentence, "And so on.") over 4,368 sentences of the two corpora (bench/encoder.py); below 0.98 on a probe, a
# quantized model is not kept.
MIN_COSINE_INT8 = 0.98


def cache_root() -> Path:
    return Path(os.environ.get("RAG_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "rag").expanduser()


def model_key(model_dir: Path) -> str:
    """A name for an export: changes whenever a file of the model changes."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and "onnx" not in p.parts):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class OnnxEncoder:
    """Runs an exported model; `encode` returns L2-normalized float32 vectors."""

    def __init__(
        self,
        folder: Path,
        threads: int | None = None,
        file: str = FILES["fp32"],
        level: int = 99,
        spinning: bool = True,
        one_at_a_time: bool = False,
    ) -> None:
        """Args:
        file: the model file in `folder`.
        level: onnxruntime's graph optimization level (99, all, its default).
        spinning: whether the idle threads of onnxruntime's pool spin waiting for work (its default, kept: with
            the cores busy with other processes, off was up to 2x faster; with them mostly free, on was 1.1-1.2x
            faster; bench/encoder.py).
        one_at_a_time: run each text in a call of its own. The int8 model quantizes a call's activations with
            one scale, so a sentence batched with 31 others got a vector down to cosine 0.96 of its own, and an
            index updated in part would differ from one built whole; alone, a vector depends on its text only
            (`encode_batches` runs such calls side by side, which gains back what batching would)."""
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text())
        self.dimension = int(meta["dimension"])
        self.input_names: list[str] = meta["inputs"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        self.path, self.level, self.spinning = folder / file, level, spinning
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.one_at_a_time = one_at_a_time
        self._sessions: dict[int, Any] = {}  # by onnxruntime thread count, each made on first use
        self._sessions_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # the lanes of `encode_batches`, started on first use
        self._session(self.threads)  # a file that does not load fails here, not at the first question

    @property
    def session(self) -> Any:
        return self._session(self.threads)

    def _session(self, threads: int) -> Any:
        if threads not in self._sessions:
            with self._sessions_lock:
                if threads not in self._sessions:
                    import onnxruntime

                    options = onnxruntime.SessionOptions()
                    options.intra_op_num_threads = threads
                    options.inter_op_num_threads = 1
                    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel(self.level)
                    spin = "1" if self.spinning else "0"
                    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
                    providers = ["CPUExecutionProvider"]
                    self._sessions[threads] = onnxruntime.InferenceSession(str(self.path), options, providers=providers)
        return self._sessions[threads]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of `texts`, in one call of the model on all its threads; one a text if `one_at_a_time`, side
        by side (`encode_batches`: eight questions asked together took 0.6x the time they took one after another
        on both threads, int8, 2026-12-01)."""
        if self.one_at_a_time and len(texts) > 1:
            return np.vstack(list(self.encode_batches([[text] for text in texts])))
        return self._run(self.session, texts)

    def encode_batches(self, batches: Sequence[Sequence[str]]) -> Generator[np.ndarray]:
        """The vectors of each batch, in order, run side by side on `threads` lanes (threads of this process sharing
        one one-thread session): fp32 sentences 1.1x as fast as batches in turn on both cores (bench/encoder.py),
        int8 one text a call 1.4x (an A/B, 183 against 128 sentences/s; the bench's "batch 1 ... in turn" row).
        At most two batches a lane are queued; when the consumer stops (a cancelled build), the rest are dropped."""
        if self.threads == 1 or len(batches) < 2:
            yield from (self.encode(batch) for batch in batches)
            return
        session, pool = self._session(1), self._lanes()
        todo = iter(batches)
        queued = deque(pool.submit(self._encode, session, b) for b in itertools.islice(todo, 2 * self.threads))
        try:
            while queued:
                vectors = queued.popleft().result()
                for batch in itertools.islice(todo, 1):
                    queued.append(pool.submit(self._encode, session, batch))
                yield vectors
        finally:
            for future in queued:
                future.cancel()

    def _lanes(self) -> ThreadPoolExecutor:
        with self._sessions_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rag-encode")
            return self._pool

    def _encode(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        if self.one_at_a_time and len(texts) > 1:
            return np.vstack([self._run(session, [text]) for text in texts])
        return self._run(session, texts)

    def _run(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        vectors = session.run(None, {name: feeds[name] for name in self.input_names})[0]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def export(model_dir: Path, target: Path, load_torch: Callable[[], Any]) -> Path:
    """Export the sentence-transformers model in `model_dir` to `target` (atomically); returns `target`.

    A BERT model is written from its weights without PyTorch (`onnx_graph`); another goes through
    `torch.onnx.export` (`onnx_torch`) with the model `load_torch` loads (the encoder's loader, passed in so that this
    module needs nothing from `embedding.py`), and its vectors are checked against PyTorch's on the probes. Either
    way an export that gives a text other vectors padded in a batch than alone is not kept."""
    from .onnx_graph import Unsupported, write_model

    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        try:
            meta, reference = write_model(model_dir, tmp), None
        except Unsupported:
            from .onnx_torch import write_model as write_through_torch

            meta, reference = write_through_torch(model_dir, tmp, load_torch, PROBES)
        shutil.copy(model_dir / "tokenizer.json", tmp / "tokenizer.json")
        (tmp / "meta.json").write_text(json.dumps(meta))
        exported = OnnxEncoder(tmp, threads=1)
        batched = exported.encode(PROBES)  # padded to a common length
        alone = np.vstack([exported.encode([p]) for p in PROBES])  # no padding
        reference = alone if reference is None else reference
        cosines = np.concatenate([np.sum(batched * reference, axis=1), np.sum(alone * reference, axis=1)])
        if not float(cosines.min()) >= MIN_COSINE:  # NaN fails too
            raise RuntimeError(f"exported vectors differ (cosine {cosines.min():.5f})")
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def quantize(folder: Path) -> Path:
    """The int8 copy of the export in `folder` (`FILES["int8"]`, beside it), made first if it is not there yet:
    written to a temporary file, checked against the float32 vectors on the probes, then renamed into place, so a
    crash never leaves half a model; a file lock makes concurrent first uses quantize once."""
    target = folder / FILES["int8"]
    if target.exists():
        return target
    with (folder / ".quantize.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if target.exists():  # made by another process while this one waited
            return target
        for stale in folder.glob(".int8-*.onnx"):  # left by a process killed while it held the lock
            stale.unlink(missing_ok=True)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        handle, name = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=folder)
        os.close(handle)
        tmp = Path(name)
        try:
            with _quiet_root_logger():  # it warns, on the root logger, that no optional pre-processing was run
                quantize_dynamic(
                    folder / FILES["fp32"],
                    tmp,
                    per_channel=True,
                    op_types_to_quantize=["MatMul"],
                    weight_type=QuantType.QInt8,
                )
            reference = OnnxEncoder(folder, threads=1).encode(PROBES)
            cosines = np.sum(OnnxEncoder(folder, threads=1, file=tmp.name).encode(PROBES) * reference, axis=1)
            if float(cosines.min()) < MIN_COSINE_INT8:
                raise RuntimeError(f"int8 vectors differ from float32 ones (cosine {cosines.min():.4f})")
            with tmp.open("rb") as written:
                os.fsync(written.fileno())  # on disk before it is renamed into place
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop what is logged on the root logger meanwhile (given a `NullHandler` if it has none, so that
    `logging.warning` does not set up logging for the whole process)."""
    handler = logging.NullHandler() if not logging.root.handlers else None
    if handler is not None:
        logging.root.addHandler(handler)
    logging.root.addFilter(_drop)
    try:
        yield
    finally:
        logging.root.removeFilter(_drop)
        if handler is not None:
            logging.root.removeHandler(handler)


def _drop(record: logging.LogRecord) -> bool:
    return False


def load_or_export(model_dir: Path, load_torch: Callable[[], Any], precision: str = "fp32") -> OnnxEncoder:
    """The ONNX encoder for `model_dir` at `precision`, exporting (see `export`) and quantizing (`quantize`) it
    first if this machine has not yet."""
    target = cache_root() / "onnx" / model_key(model_dir)
    if not (target / "meta.json").exists():
        # Issue #21: the first build was silent for as long as this took (18 s through torch, 4 s now).
        log.info(
            "Preparing the embedding model for this machine, once: writing it as ONNX and quantizing it "
            f"(a few seconds; later runs load it from {target.parent})."
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        export(model_dir, target, load_torch)
    if precision == "int8":
        return OnnxEncoder(target, file=quantize(target).name, one_at_a_time=True)
    return OnnxEncoder(target)
