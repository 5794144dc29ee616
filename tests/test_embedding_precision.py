"""Precision int8: vectors close to fp32's, the manifest's record of it, refusing the other precision, the default
(auto: an existing index's precision, else int8), and the quantized model made once, atomically, beside the
export."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import indexing
from rag.config import DEFAULT_MODEL, Settings
from rag.embedding import Encoder, resolve_model
from rag.errors import BadRequest, IndexMismatch, ModelError
from rag.indexing import store
from rag.onnx_backend import FILES, cache_root, model_key, quantize

from .helpers import SMALL_DOCS, write_corpus

QUESTIONS = [
    "When did Japan and Ukraine establish diplomatic relations?",
    "How many bilateral documents have been signed?",
    "Where is green tea grown?",
    "How long is the central span of the Akashi Kaikyo Bridge?",
]


@pytest.fixture(scope="module")
def int8() -> Encoder:
    enc = Encoder(precision="int8")
    assert enc.dimension == 384 and enc.precision == "int8"  # loads (and quantizes, the first time) here
    return enc


@pytest.fixture(scope="module")
def fp32() -> Encoder:
    enc = Encoder(precision="fp32")
    assert enc.dimension == 384 and enc.precision == "fp32"
    return enc


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    texts = [t.split("\n\n", 1)[1] for t in SMALL_DOCS.values()]
    return QUESTIONS + [s.strip() + "." for t in texts for s in t.split(". ") if s.strip()]


def test_int8_vectors_are_close_to_fp32_ones(int8: Encoder, fp32: Encoder, sentences: list[str]) -> None:
    cosine = np.sum(int8.encode(sentences) * fp32.encode(sentences), axis=1)
    assert cosine.min() >= 0.98 and cosine.mean() >= 0.99, cosine
    assert np.allclose(np.linalg.norm(int8.encode(sentences), axis=1), 1.0, atol=1e-5)


def test_int8_finds_the_same_nearest_sentence(int8: Encoder, fp32: Encoder, sentences: list[str]) -> None:
    body = sentences[len(QUESTIONS) :]  # the questions about SMALL_DOCS against their sentences
    fp32 = (fp32.encode(QUESTIONS[2:]) @ fp32.encode(body).T).argmax(axis=1)
    assert list((int8.encode(QUESTIONS[2:]) @ int8.encode(body).T).argmax(axis=1)) == list(fp32)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_vector_does_not_depend_on_the_batch(
    precision: str, int8: Encoder, fp32: Encoder, sentences: list[str]
) -> None:
    """Encoder.encode batches texts sorted by length and puts the vectors back in the texts' order; a text's vector
    is the one it gets alone (int8 runs one text a call: its activations are quantized with one scale a call)."""
    enc = int8 if precision == "int8" else fp32
    shuffled = list(reversed(sentences))
    alone = np.vstack([enc.encode_one(t) for t in shuffled])
    for batch_size in (4, 32):
        assert np.allclose(enc.encode(shuffled, batch_size=batch_size), alone, atol=1e-5)


def test_the_manifest_records_the_precision(tmp_path: Path, int8: Encoder, fp32: Encoder) -> None:
    write_corpus(tmp_path / "corpus", SMALL_DOCS)
    for precision, enc in (("int8", int8), ("fp32", fp32)):
        settings = Settings(corpus=tmp_path / "corpus", index=tmp_path / f"index-{precision}", precision=precision)
        indexing.build(settings, enc, progress=False)
        model = store.read_manifest(settings.index)["model"]
        assert model == {"name": DEFAULT_MODEL, "dimension": 384, "precision": precision}


def test_an_index_of_one_precision_refuses_the_other(tmp_path: Path, int8: Encoder, fp32: Encoder) -> None:
    write_corpus(tmp_path / "corpus", SMALL_DOCS)
    fp32_settings = Settings(corpus=tmp_path / "corpus", index=tmp_path / "index", precision="fp32")
    indexing.build(fp32_settings, fp32, progress=False)
    int8_settings = Settings(corpus=tmp_path / "corpus", index=tmp_path / "index", precision="int8")
    with pytest.raises(IndexMismatch, match="built with precision fp32, not int8") as refused:
        indexing.load(int8_settings, int8)
    assert "RAG_PRECISION=fp32" in str(refused.value) and "rag index --full" in str(refused.value)
    _, report = indexing.build(int8_settings, int8, progress=False)  # a build with int8 re-embeds everything
    assert report.rebuilt and "precision fp32, not int8" in report.rebuilt
    assert report.chunks_embedded == report.chunks
    with pytest.raises(IndexMismatch, match="RAG_PRECISION=int8"):
        indexing.load(fp32_settings, fp32)


def test_an_index_from_before_the_setting_reads_as_fp32(tmp_path: Path) -> None:
    manifest = {"format": store.FORMAT_VERSION, "model": {"name": "m", "dimension": 8}, "chunker": {}, "engine": {}}
    expected: dict[str, Any] = {"model": {"name": "m", "dimension": 8, "precision": "fp32"}, "chunker": {}}
    store.check_compatible(manifest, {**expected, "engine": {}}, tmp_path)
    with pytest.raises(IndexMismatch, match="precision fp32, not int8"):
        int8 = {**expected, "model": {**expected["model"], "precision": "int8"}, "engine": {}}
        store.check_compatible(manifest, int8, tmp_path)


def test_int8_needs_the_onnx_backend() -> None:
    with pytest.raises(BadRequest, match="precision int8 needs backend onnx"):
        Settings(backend="torch", precision="int8")
    with pytest.raises(BadRequest, match="precision must be auto, fp32 or int8"):
        Settings(precision="fp16")
    with pytest.raises(ModelError, match="int8 with backend onnx"):
        Encoder(backend="torch", precision="int8")
    assert Settings.from_env(precision="int8").precision == "int8"


def test_auto_builds_int8_and_keeps_the_precision_of_an_existing_index(tmp_path: Path, fp32: Encoder) -> None:
    write_corpus(tmp_path / "corpus", SMALL_DOCS)
    auto = Settings(corpus=tmp_path / "corpus", index=tmp_path / "index")
    assert auto.precision == "auto" and indexing.encoder_for(auto).precision == "int8"  # no index yet
    assert Encoder().precision == "int8" and Encoder(backend="torch").precision == "fp32"
    indexing.build(Settings(corpus=auto.corpus, index=auto.index, precision="fp32"), fp32, progress=False)
    kept = indexing.encoder_for(auto)  # an index built before int8 was the default is read as it is
    assert kept.precision == "fp32"
    indexing.load(auto, kept)
    _, report = indexing.build(auto, kept, progress=False)
    assert report.chunks_embedded == 0 and not report.rebuilt
    assert indexing.encoder_for(Settings(corpus=auto.corpus, index=auto.index, precision="int8")).precision == "int8"
    assert Settings(backend="torch").precision_for("int8") == "fp32"  # torch has no int8: the mismatch is reported
    (auto.index / "manifest.json").write_text("{")  # unreadable: what a new index gets (the load reports it)
    assert indexing.encoder_for(auto).precision == "int8"


@pytest.fixture
def export_copy(tmp_path: Path, int8: Encoder) -> Path:
    """A folder holding the bundled model's fp32 export (links to the cached files), without an int8 copy."""
    cached = cache_root() / "onnx" / model_key(Path(resolve_model(DEFAULT_MODEL)))
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("meta.json", "tokenizer.json", FILES["fp32"]):
        (folder / name).symlink_to(cached / name)
    return folder


def counting_quantizer(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count calls of onnxruntime's quantize_dynamic (still run for real)."""
    import onnxruntime.quantization as quantization

    calls: list[Path] = []
    real = quantization.quantize_dynamic

    def counted(model_input: Any, model_output: Any, **kwargs: Any) -> None:
        calls.append(Path(model_output))
        real(model_input, model_output, **kwargs)

    monkeypatch.setattr(quantization, "quantize_dynamic", counted)
    return calls


def test_the_quantized_model_is_made_once_and_reused(export_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_quantizer(monkeypatch)
    (export_copy / ".int8-killed.onnx").write_bytes(b"left by a process killed midway")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(quantize(export_copy))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = export_copy / FILES["int8"]
    assert results == [target] * 3 and len(calls) == 1  # concurrent first uses: one quantization
    stat = target.stat()
    assert quantize(export_copy) == target and len(calls) == 1
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert sorted(p.name for p in export_copy.iterdir() if p.name.startswith(".int8-")) == []


def test_a_failed_quantization_leaves_no_model(export_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime.quantization as quantization

    def crash(model_input: Any, model_output: Any, **kwargs: Any) -> None:
        Path(model_output).write_bytes(b"half a model")
        raise MemoryError("killed midway")

    monkeypatch.setattr(quantization, "quantize_dynamic", crash)
    with pytest.raises(MemoryError):
        quantize(export_copy)
    assert sorted(p.name for p in export_copy.iterdir() if not p.name.startswith(".quantize")) == sorted(
        ["meta.json", "tokenizer.json", FILES["fp32"]]
    )
    monkeypatch.undo()
    assert quantize(export_copy).stat().st_size > 10_000_000  # the next use makes it whole


def test_quantizing_writes_nothing_elsewhere_and_leaves_logging_alone(
    export_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import logging

    monkeypatch.chdir(tmp_path)
    handlers = list(logging.root.handlers)
    quantize(export_copy)
    assert logging.root.handlers == handlers and logging.root.filters == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert json.loads((export_copy / "meta.json").read_text())["dimension"] == 384
