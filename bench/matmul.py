"""The ceiling of int8 on this machine: one MatMul layer of the encoder alone, int8 against fp32, in onnxruntime.

bench/encoder.py runs it (`gemm_ceiling`) beside the whole encoder: a whole model cannot gain more than its MatMul
layers do, since attention, layer norms and activations stay fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import seconds
from rag.config import Settings
from rag.onnx_backend import FILES, OnnxEncoder

BATCH = Settings().batch_size


def gemm_ceiling(folder: Path, sentences: list[str], questions: list[str], rounds: int) -> dict[str, float]:
    """What int8 can give at most: one MatMul layer of the model alone, fp32 (onnxruntime's MatMul) against int8
    (its MatMulIntegerToFloat, the kernel the quantized model runs: uint8 activations, int8 weights per channel),
    at every weight shape of the model, for the rows of one question and of one batch of sentences (their median
    token counts), on one thread (a lane) and on all. `model` is the time-weighted ratio over the model's MatMul
    layers: a whole encoder, which also runs attention, layer norms and activations in fp32, gains less."""
    import onnx

    graph = onnx.load(str(folder / FILES["fp32"])).graph
    weights = {i.name: (int(i.dims[0]), int(i.dims[1])) for i in graph.initializer if len(i.dims) == 2}
    shapes: dict[tuple[int, int], int] = {}  # (K, N) of a weight: how many layers have it
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            shapes[weights[node.input[1]]] = shapes.get(weights[node.input[1]], 0) + 1
    tokenizer = OnnxEncoder(folder, threads=1).tokenizer

    def median_tokens(texts: list[str]) -> int:
        return int(np.median([len(tokenizer.encode(t).ids) for t in texts]))

    rows = {"question": median_tokens(questions), f"batch of {BATCH}": BATCH * median_tokens(sentences)}
    out: dict[str, float] = {}
    for threads in sorted({1, OnnxEncoder(folder).threads}):
        for what, m in rows.items():
            fp32_s = int8_s = 0.0
            for (k, n), count in shapes.items():
                a, b = (matmul_seconds(m, k, n, precision, threads, rounds) for precision in ("fp32", "int8"))
                out[f"{what}, {m}x{k} by {k}x{n}, threads {threads}"] = round(a / b, 2)
                fp32_s, int8_s = fp32_s + a * count, int8_s + b * count
            out[f"{what}, model, threads {threads}"] = round(fp32_s / int8_s, 2)
    return out


def matmul_seconds(m: int, k: int, n: int, precision: str, threads: int, rounds: int) -> float:
    """The median time of one (m x k) by (k x n) product in onnxruntime, random values, at `precision`."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    if precision == "fp32":
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])
        consts = [numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")]
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        feed = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    else:
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])
        consts = [
            numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"),
            numpy_helper.from_array(np.array(0.01, np.float32), "a_scale"),
            numpy_helper.from_array(np.full(n, 0.01, np.float32), "w_scale"),  # per channel
            numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
        ]
        node = helper.make_node(
            "MatMulIntegerToFloat", ["a", "w", "a_scale", "w_scale", "a_zero"], ["y"], domain="com.microsoft"
        )
        feed = {"a": rng.integers(0, 256, (m, k)).astype(np.uint8)}
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(helper.make_graph([node], precision, [a], [y], consts), opset_imports=opsets)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    session.run(None, feed)
    calls = 50
    times = [seconds(lambda: [session.run(None, feed) for _ in range(calls)]) / calls for _ in range(rounds)]
    return float(np.median(times))
