"""The ONNX export of a sentence-transformers model through PyTorch (`torch.onnx.export`): the route for a model
that `onnx_graph.py` cannot write (an architecture other than BERT), when the `[torch]` extra is installed."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Loader = Callable[[], Any]  # loads the SentenceTransformer on the CPU


def write_model(model_dir: Path, folder: Path, load_torch: Loader, probes: list[str]) -> tuple[dict, np.ndarray]:
    """Write `model.onnx` of the model that `load_torch` loads into `folder`; returns what `meta.json` holds and
    PyTorch's vectors of `probes` (normalized), to check the export against."""
    import torch

    st = load_torch().eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in st.tokenizer.model_input_names]
    sample = st.tokenizer(probes[:2], padding=True, truncation=True, max_length=st.max_seq_length, return_tensors="pt")

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.st(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes; the caller checks the result
        torch.onnx.export(
            Pipeline(),
            tuple(sample[n] for n in names),
            str(folder / "model.onnx"),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    pad = st.tokenizer.pad_token or "[PAD]"
    reference = st.encode(probes, normalize_embeddings=True, convert_to_numpy=True)
    meta = {
        "dimension": int(reference.shape[1]),
        "inputs": names,
        "max_seq_length": st.max_seq_length,
        "pad_token": pad,
        "pad_id": st.tokenizer.convert_tokens_to_ids(pad),
    }
    return meta, reference
