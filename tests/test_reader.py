"""The trained reader: the shipped file is the one its description records, it reads as trained, a damaged copy is
refused, the answer weights name the models they were fitted with, and the training script still trains."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.answer import load_reader
from rag.answer.reader import FOLDER, Reader, tokenizer_path
from rag.answer.scorer import check_model, load_scorer
from rag.errors import IndexCorrupt, ModelError

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "train" / "squad11-train" / "train.jsonl.gz"


def test_the_shipped_model_is_the_one_its_description_records() -> None:
    meta = json.loads((FOLDER / "reader.json").read_text(encoding="utf-8"))
    data = (FOLDER / meta["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert len(data) <= 30_000_000  # issue #19: at most 30 MB in the repository
    assert "SQuAD 1.1" in meta["trained_on"] and "CC BY-SA 4.0" in meta["trained_on"]
    assert {"seed", "commit", "seconds", "command"} <= set(meta)


def test_the_answer_weights_were_fitted_with_this_reader() -> None:
    meta = json.loads((FOLDER / "reader.json").read_text(encoding="utf-8"))
    assert load_scorer().meta["reader_sha256"] == meta["sha256"]


def test_a_damaged_model_is_refused(tmp_path: Path) -> None:
    copy = Path(shutil.copytree(FOLDER, tmp_path / "reader", ignore=shutil.ignore_patterns("*.py", "__pycache__")))
    meta = json.loads((copy / "reader.json").read_text(encoding="utf-8"))
    with (copy / meta["file"]).open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(IndexCorrupt, match="reinstall"):
        Reader(copy)


def test_the_answer_sentence_outscores_its_neighbours() -> None:
    # Our own sentences (none from an eval set).
    sentences = [
        "The museum reopened in the spring after the roof was repaired.",
        "Its new wing holds 4,200 paintings, most of them donated by local families.",
        "Entry is free on the first Sunday of each month.",
    ]
    reading = load_reader().read("how many paintings does the new wing have", sentences)
    assert int(np.argmax(reading.logits)) == 1
    start, end = reading.spans[1]
    assert "4,200" in sentences[1][start:end]


def test_a_question_whose_fact_is_not_there_scores_lower() -> None:
    sentence = "The company opened its first factory in Leeds in 1921."
    reader = load_reader()
    held = reader.read("when did the company open its first factory", [sentence]).logits[0]
    other = reader.read("when did the company close its last shop in Paris", [sentence]).logits[0]
    assert held > 0 and held - other > 1  # log-odds: 3.2 against 0.6 with the shipped reader


def test_a_very_long_question_is_read() -> None:
    question = "why " * 500 + "how many paintings does the new wing have"  # a follow-up joins two long questions
    reading = load_reader().read(question, ["Its new wing holds 4,200 paintings.", "Entry is free."])
    assert reading.logits.shape == (2,)


def test_weights_fitted_with_another_embedding_model_are_refused() -> None:
    scorer = load_scorer()
    check_model(scorer, scorer.meta["model"])
    check_model(scorer, "sentence-transformers/" + scorer.meta["model"])
    check_model(scorer, str(tokenizer_path().parent))  # the same model, named by its folder
    with pytest.raises(ModelError, match="fit_answer.py"):
        check_model(scorer, "/models/paraphrase-multilingual-MiniLM-L12-v2")


@pytest.mark.slow
def test_the_training_script_trains_a_tiny_reader(tmp_path: Path) -> None:
    """The script that made the shipped reader, on two articles: it must keep working."""
    out = tmp_path / "reader"
    args = ["--articles", "2", "--questions", "24", "--held", "8", "--batch", "8", "--threads", "1"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "train" / "train_reader.py"), *args, "--out", str(out),
         "--checkpoint", str(tmp_path / "reader.pt")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "held-out pairs" in done.stdout
    meta = json.loads((out / "reader.json").read_text(encoding="utf-8"))
    assert meta["seed"] == 1234 and "24 questions" in meta["trained_on"]
    reading = Reader(out).read("when was it built", ["It was built in 1950.", "It is red."])
    assert reading.logits.shape == (2,) and all(0 <= a <= b for a, b in reading.spans)
