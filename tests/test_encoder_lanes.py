"""Encoder lanes (`OnnxEncoder.encode_batches`): batches run side by side on one-thread sessions give the vectors
of the batches run one after another, in order, and a consumer that stops early stops the lanes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rag.embedding import Encoder
from rag.onnx_backend import OnnxEncoder

from .helpers import SMALL_DOCS

TEXTS = [s.strip() + "." for t in SMALL_DOCS.values() for s in t.split("\n\n", 1)[1].split(". ") if s.strip()]


def onnx_of(encoder: Encoder) -> OnnxEncoder:
    run = encoder._ensure_loaded()
    model = getattr(run, "__self__", None)
    assert isinstance(model, OnnxEncoder), "the session encoder runs on ONNX Runtime"
    return model


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_lanes_give_the_vectors_of_batches_in_turn(precision: str) -> None:
    model = onnx_of(Encoder(precision=precision))
    batches = [TEXTS[i : i + 3] for i in range(0, len(TEXTS), 3)]
    in_turn = [model._encode(model.session, batch) for batch in batches]
    side_by_side = list(model.encode_batches(batches))
    assert len(side_by_side) == len(batches)
    for a, b in zip(in_turn, side_by_side, strict=True):
        assert a.shape == b.shape
        assert np.sum(a * b, axis=1).min() > 0.99999  # the same texts, in the same order (threads sum in other orders)


def test_int8_questions_asked_together_get_the_vectors_they_get_alone() -> None:
    model = onnx_of(Encoder(precision="int8"))
    assert model.one_at_a_time
    together = model.encode(TEXTS[:8])
    alone = np.vstack([model.encode([t]) for t in TEXTS[:8]])
    assert np.sum(together * alone, axis=1).min() > 0.99999


def test_a_consumer_that_stops_early_stops_the_lanes() -> None:
    model = onnx_of(Encoder(precision="fp32"))
    calls = 0
    lock = threading.Lock()
    real = model._encode

    def counted(session: object, texts: list[str]) -> np.ndarray:
        nonlocal calls
        with lock:
            calls += 1
        return real(session, texts)

    model._encode = counted  # type: ignore[method-assign]
    try:
        vectors = model.encode_batches([[t] for t in TEXTS] * 20)
        next(vectors)
        vectors.close()  # what `Encoder.encode` does when its progress callback raises (a cancelled build)
        time.sleep(0.5)  # the batches running when it stopped end
        after = calls
        time.sleep(0.2)
        assert calls == after <= 2 * model.threads + 1  # the first batch and those queued, not the other 100+
    finally:
        del model._encode
