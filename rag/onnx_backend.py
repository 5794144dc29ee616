"""The ONNX Runtime encoder: the same sentence-transformers model, exported once on this machine, about 3x faster
per question than PyTorch on a CPU and free of PyTorch at run time (so `rag ask` starts in a fraction of the time).

The export runs the model's whole sentence-transformers pipeline (transformer, pooling) through
`torch.onnx.export`, checks that the exported model gives the same vectors as PyTorch on probe texts (cosine at
least 0.9999), and keeps the result in a cache folder keyed by the model's files. Nothing is downloaded. At run time
only `onnxruntime` and `tokenizers` (the Rust tokenizer sentence-transformers itself uses) are loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROBES = ["When did Japan and Ukraine establish diplomatic relations?", "A short one.", "x " * 300]
MIN_COSINE = 0.9999


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

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text())
        self.dimension = int(meta["dimension"])
        self.input_names: list[str] = meta["inputs"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        vectors = self.session.run(None, {name: feeds[name] for name in self.input_names})[0]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def export(model_dir: Path, target: Path, load_torch: Callable[[], Any]) -> Path:
    """Export the sentence-transformers model in `model_dir`, which `load_torch` loads with PyTorch (the encoder's
    loader, passed in so that this module needs nothing from `embedding.py`), to `target` (atomically); returns
    `target`."""
    import torch

    st = load_torch().eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in st.tokenizer.model_input_names]
    sample = st.tokenizer(PROBES[:2], padding=True, truncation=True, max_length=st.max_seq_length, return_tensors="pt")

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shapes; the result is checked below
            torch.onnx.export(
                Pipeline(),
                tuple(sample[n] for n in names),
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        shutil.copy(model_dir / "tokenizer.json", tmp / "tokenizer.json")
        pad = st.tokenizer.pad_token or "[PAD]"
        reference = st.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True)
        meta = {
            "dimension": int(reference.shape[1]),
            "inputs": names,
            "max_seq_length": st.max_seq_length,
            "pad_token": pad,
            "pad_id": st.tokenizer.convert_tokens_to_ids(pad),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        exported = OnnxEncoder(tmp, threads=1)
        batched = exported.encode(PROBES)  # padded to a common length
        alone = np.vstack([exported.encode([p]) for p in PROBES])  # no padding
        cosines = np.concatenate([np.sum(batched * reference, axis=1), np.sum(alone * reference, axis=1)])
        if float(cosines.min()) < MIN_COSINE:
            raise RuntimeError(f"exported vectors differ from PyTorch's (cosine {cosines.min():.5f})")
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_or_export(model_dir: Path, load_torch: Callable[[], Any]) -> OnnxEncoder:
    """The ONNX encoder for `model_dir`, exporting it first (see `export`) if this machine has not yet."""
    target = cache_root() / "onnx" / model_key(model_dir)
    if not (target / "meta.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        export(model_dir, target, load_torch)
    return OnnxEncoder(target)
