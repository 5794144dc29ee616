"""The ONNX graph of a BERT sentence encoder, written from its `model.safetensors` with the `onnx` package alone: no
PyTorch, so the default install (ONNX Runtime, tokenizers) can export the bundled model itself.

It computes what sentence-transformers computes for a BERT model (all-MiniLM-L6-v2 and its kin): the embeddings
(word + position + token type, LayerNorm), each encoder layer (self-attention with the padding masked out, the
residual and LayerNorm, the GELU feed-forward, residual and LayerNorm), then the pooling its `1_Pooling/config.json`
names (mean over the real tokens, or the [CLS] token), then L2 normalization when `modules.json` lists it.
Operations follow transformers' `BertModel` (the exact GELU with `Erf`; masked scores get float32's lowest value),
so ONNX Runtime fuses them as it fuses a `torch.onnx.export` of the same model; tests/test_onnx_graph.py checks the
vectors against sentence-transformers'. Other architectures raise `Unsupported`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
OPSET = 17  # the first with LayerNormalization; what the PyTorch export used


class Unsupported(Exception):
    """The model is not one this module can write (an architecture or pooling other than BERT's with mean or CLS)."""


def read_bert(model_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], str, bool]:
    """The model's config, its weights (names without a `bert.` prefix), its pooling mode and whether it normalizes.

    Raises:
        Unsupported: not a BERT model in safetensors, or a pooling other than mean or CLS.
    """
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("position_embedding_type", "absolute") != "absolute":
        raise Unsupported(f"model type {config.get('model_type')!r}: only BERT is written without PyTorch")
    if config.get("hidden_act", "gelu") != "gelu" or not (model_dir / "model.safetensors").exists():
        raise Unsupported("the activation is not GELU, or there is no model.safetensors")
    modules = json.loads((model_dir / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise Unsupported(f"modules {kinds}: only Transformer, Pooling (and Normalize) are written")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = [k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in pooling.items() if v is True]
    if modes not in (["mean"], ["cls"]):
        raise Unsupported(f"pooling {modes}: only mean or cls is written")
    weights = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    return config, weights, modes[0], kinds[-1] == "Normalize"


class _Graph:
    """Nodes and initializers being collected; each method adds one step and returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        from onnx import helper

        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], name=out, **attributes))
        return out

    def linear(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        """`x @ W.T + b`: a MatMul with a constant weight, which is what int8 quantization converts."""
        w = self.const(f"{prefix}.weight", np.ascontiguousarray(weights[f"{prefix}.weight"].T))
        return self.op("Add", self.op("MatMul", x, w), self.const(f"{prefix}.bias", weights[f"{prefix}.bias"]))

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], prefix: str, eps: float) -> str:
        scale, bias = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"]), f"{prefix}.bias"
        return self.op("LayerNormalization", x, scale, self.const(bias, weights[bias]), axis=-1, epsilon=eps)


def build_bert(model_dir: Path) -> Any:
    """The `onnx.ModelProto` of the sentence encoder in `model_dir`: inputs `INPUTS` (int64, batch x tokens), output
    `embedding` (float32, batch x hidden size)."""
    from onnx import TensorProto, helper

    config, weights, pooling, normalize = read_bert(model_dir)
    g, eps = _Graph(), float(config.get("layer_norm_eps", 1e-12))
    x = _embeddings(g, weights, eps)
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)  # batch x tokens, 1 for a real token
    blocked = g.op("Mul", g.op("Sub", g.const("one", np.array(1, np.float32)), mask), g.const("lowest", _LOWEST))
    blocked = g.op("Unsqueeze", blocked, g.const("axes_1_2", np.array([1, 2], np.int64)))  # batch x 1 x 1 x tokens
    heads = int(config["num_attention_heads"])
    for i in range(int(config["num_hidden_layers"])):
        x = _layer(g, x, blocked, weights, f"encoder.layer.{i}", heads, eps)
    out = _mean(g, x, mask) if pooling == "mean" else g.op("Squeeze", _first_token(g, x), g.const("axis_1", _AXIS1))
    if normalize:
        norm = g.op("ReduceL2", out, axes=[-1], keepdims=1)  # axes an attribute until opset 18
        out = g.op("Div", out, g.op("Max", norm, g.const("tiny", np.array(1e-12, np.float32))))
    g.nodes.append(helper.make_node("Identity", [out], ["embedding"], name="embedding"))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in INPUTS]
    hidden = int(config["hidden_size"])
    output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(g.nodes, "sentence_encoder", inputs, [output], g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rag")


_LOWEST = np.array(np.finfo(np.float32).min, np.float32)  # transformers' additive mask for a padded key
_AXIS1 = np.array([1], np.int64)


def _embeddings(g: _Graph, weights: dict[str, np.ndarray], eps: float) -> str:
    words = g.op("Gather", g.const("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids")
    length = g.op("Gather", g.op("Shape", "input_ids"), g.const("index_1", np.array(1, np.int64)), axis=0)
    zero, step = g.const("zero", np.array(0, np.int64)), g.const("step", np.array(1, np.int64))
    table = g.const("position_embeddings", weights["embeddings.position_embeddings.weight"])
    positions = g.op("Gather", table, g.op("Range", zero, length, step))  # tokens x hidden, broadcast on the batch
    types = g.const("type_embeddings", weights["embeddings.token_type_embeddings.weight"])
    types = g.op("Gather", types, "token_type_ids")
    summed = g.op("Add", g.op("Add", words, positions), types)
    return g.layer_norm(summed, weights, "embeddings.LayerNorm", eps)


def _layer(g: _Graph, x: str, blocked: str, weights: dict[str, np.ndarray], prefix: str, heads: int, eps: float) -> str:
    hidden = weights[f"{prefix}.attention.self.query.weight"].shape[0]
    split = g.const(f"{prefix}.split", np.array([0, 0, heads, hidden // heads], np.int64))
    merged = g.const(f"{prefix}.merge", np.array([0, 0, hidden], np.int64))

    def per_head(name: str, perm: list[int]) -> str:  # batch x heads x tokens x size (keys: size x tokens)
        projected = g.linear(x, weights, f"{prefix}.attention.self.{name}")
        return g.op("Transpose", g.op("Reshape", projected, split), perm=perm)

    q, k, v = per_head("query", [0, 2, 1, 3]), per_head("key", [0, 2, 3, 1]), per_head("value", [0, 2, 1, 3])
    scale = g.const(f"{prefix}.scale", np.array(1 / math.sqrt(hidden // heads), np.float32))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), blocked)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merged)
    attended = g.op("Add", g.linear(context, weights, f"{prefix}.attention.output.dense"), x)
    x = g.layer_norm(attended, weights, f"{prefix}.attention.output.LayerNorm", eps)
    inner = g.linear(x, weights, f"{prefix}.intermediate.dense")
    root2 = g.const(f"{prefix}.root2", np.array(math.sqrt(2), np.float32))
    one, half = g.const(f"{prefix}.one", np.array(1, np.float32)), g.const(f"{prefix}.half", _HALF)
    gelu = g.op("Mul", g.op("Mul", inner, g.op("Add", g.op("Erf", g.op("Div", inner, root2)), one)), half)
    out = g.op("Add", g.linear(gelu, weights, f"{prefix}.output.dense"), x)
    return g.layer_norm(out, weights, f"{prefix}.output.LayerNorm", eps)


_HALF = np.array(0.5, np.float32)


def _mean(g: _Graph, x: str, mask: str) -> str:
    """The mean of the real tokens' vectors (sentence-transformers' mean pooling, its 1e-9 floor on the count)."""
    weight = g.op("Unsqueeze", mask, g.const("axis_last_mask", np.array([-1], np.int64)))
    total = g.op("ReduceSum", g.op("Mul", x, weight), g.const("axis_tokens", _AXIS1), keepdims=0)
    count = g.op("ReduceSum", weight, g.const("axis_tokens_count", _AXIS1), keepdims=0)
    return g.op("Div", total, g.op("Max", count, g.const("floor", np.array(1e-9, np.float32))))


def _first_token(g: _Graph, x: str) -> str:
    starts, ends = g.const("first_start", np.array([0], np.int64)), g.const("first_end", np.array([1], np.int64))
    return g.op("Slice", x, starts, ends, g.const("first_axis", _AXIS1))


def write_model(model_dir: Path, folder: Path) -> dict[str, Any]:
    """Write `model.onnx` of the encoder in `model_dir` into `folder`; returns what `OnnxEncoder` reads from
    `meta.json` (the vector size, the inputs, the tokens kept and the padding token)."""
    import onnx
    from tokenizers import Tokenizer

    model = build_bert(model_dir)
    onnx.save(model, str(folder / "model.onnx"))
    config = json.loads((model_dir / "config.json").read_text())
    limit = json.loads(_read(model_dir / "sentence_bert_config.json") or "{}").get("max_seq_length")
    pad = json.loads(_read(model_dir / "tokenizer_config.json") or "{}").get("pad_token") or "[PAD]"
    pad_id = Tokenizer.from_file(str(model_dir / "tokenizer.json")).token_to_id(pad)
    if pad_id is None:
        raise Unsupported(f"the padding token {pad!r} is not in the tokenizer's vocabulary")
    return {
        "dimension": int(config["hidden_size"]),
        "inputs": INPUTS,
        "max_seq_length": int(limit or config["max_position_embeddings"]),
        "pad_token": pad,
        "pad_id": int(pad_id),
    }


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
