"""In-process latency of `ask` on the bundled corpus, by stage, against the floor: one bare `encode([question])`.

The floor is timed for each way of running the model, in the same run:
- PyTorch through sentence-transformers (`SentenceTransformer.encode`),
- ONNX through sentence-transformers (`backend="onnx"`), when this sentence-transformers can do it (version 6
  cannot here: its ONNX backend needs optimum-onnx, which pins an older transformers),
- ONNX Runtime called directly on the model exported by `rag` (what `rag` uses).
The fastest is the floor that `ask` is compared with. The vectors of the two backends are compared too.

    .venv/bin/python bench/latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import ROOT, questions, spread, time_ms, write_result  # noqa: E402
from bench.stages import time_stages  # noqa: E402
from rag import Settings  # noqa: E402
from rag.embedding import Encoder, load_torch, resolve_model  # noqa: E402
from rag.pipeline import Assistant  # noqa: E402


def floors(qs: list[str], repeats: int) -> dict[str, Any]:
    """Bare single-question encodes, per backend, and how close their vectors are."""
    model_dir = resolve_model("all-MiniLM-L6-v2")
    torch_model = load_torch(model_dir, model_dir)
    onnx = Encoder(backend="onnx")  # the default precision, what `rag` runs
    fp32 = Encoder(backend="onnx", precision="fp32")  # the export itself, to compare with PyTorch
    out: dict[str, Any] = {}
    cycle = iter(qs * (repeats // len(qs) + 2))
    out["torch"] = spread(time_ms(lambda: torch_model.encode([next(cycle)]), repeats))
    cycle = iter(qs * (repeats // len(qs) + 2))
    out["onnx_direct"] = spread(time_ms(lambda: onnx.encode_one(next(cycle)), repeats))
    try:
        from sentence_transformers import SentenceTransformer

        with tempfile.TemporaryDirectory() as tmp:  # it writes onnx/ into the model folder: use a copy
            copy = shutil.copytree(model_dir, Path(tmp) / "model")
            st_onnx = SentenceTransformer(str(copy), backend="onnx", device="cpu")
            cycle = iter(qs * (repeats // len(qs) + 2))
            out["onnx_sentence_transformers"] = spread(time_ms(lambda: st_onnx.encode([next(cycle)]), repeats))
    except Exception as exc:  # reported, not hidden
        out["onnx_sentence_transformers"] = {"unavailable": f"{type(exc).__name__}: {str(exc)[:200]}"}
    a = torch_model.encode(qs, normalize_embeddings=True)
    b = fp32.encode(qs)
    cosines = np.sum(a * b, axis=1)
    out["vectors_cosine_torch_vs_onnx"] = {
        "min": round(float(cosines.min()), 6),
        "mean": round(float(cosines.mean()), 6),
    }
    timed = {k: v["median"] for k, v in out.items() if isinstance(v, dict) and "median" in v}
    out["floor_backend"] = min(timed, key=lambda k: timed[k])
    out["floor_ms"] = timed[out["floor_backend"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    qs = questions()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus=ROOT / "corpus", index=Path(tmp) / "index")
        assistant = Assistant.open(settings, progress=False, say=lambda _: None)
        stages = time_stages(assistant, qs, rounds=args.rounds)
    floor = floors(qs, repeats=args.rounds * len(qs))
    stages["ratio_to_floor"] = round(stages["ask"]["median"] / floor["floor_ms"], 3)
    figures = {"corpus": "bundled", "chunks": assistant.index.chunk_count, "stages": stages, "floors": floor}
    write_result("latency", figures)
    print(
        f"ask median {stages['ask']['median']:.2f} ms; floor ({floor['floor_backend']}) "
        f"{floor['floor_ms']:.2f} ms; ratio {stages['ratio_to_floor']:.2f} (target <= 8, issue #19); the reader "
        f"{stages['reader']['median']:.2f} ms, {stages['reader_share']:.0%} of ask"
    )


if __name__ == "__main__":
    main()
