"""The trained reader out of PyTorch (`train/train_reader.py`): its fp32 ONNX export, the int8 copy that ships
(MatMul and the embedding Gather quantized per channel), and the check of that copy against PyTorch."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch


def export(model: torch.nn.Module, tokenizer, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    """fp32 ONNX of `model`, then its int8 copy; returns the int8 file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(["how many?"], ["Two of them."], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = Path(tempfile.mkdtemp(prefix="reader-")) / "reader-fp32.onnx"  # 90 MB: not shipped
    model = model.cpu().eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(fp32),
            input_names=names,
            output_names=["answers", "start", "end"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names}
            | {"answers": {0: "batch"}, "start": {0: "batch", 1: "tokens"}, "end": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )
    int8 = folder / "reader.onnx"
    quantize_dynamic(
        str(fp32),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gather"],
    )
    return int8


@torch.no_grad()
def compare(model: torch.nn.Module, batch: dict[str, torch.Tensor], path: Path) -> float:
    """The largest difference between PyTorch's and the ONNX file's answer log-odds on the encoded pairs `batch`."""
    import onnxruntime as ort

    names = ["input_ids", "attention_mask", "token_type_ids"]
    reference = model.cpu()(*(batch[n] for n in names))[0].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["answers"], {n: batch[n].numpy() for n in names})[0]
    return round(float(np.abs(got - reference).max()), 4)
