"""Fit the answer scorer (`rag/answer/weights.json`) on the tune split of the SQuAD set, and report on check and dev.

    .venv/bin/python train/fit_answer.py [--ablate] [--out rag/answer/weights.json]

Run after `train/train_reader.py`: the trained reader (`rag/answer/reader/`) is read here as it ships. The fits,
all with fixed seeds, all on tune:
1. the sentence scorer: for every candidate sentence of the passages retrieved for a tune question, does its quoted
   text hold an answer string (the rule the eval scores)? Its regularization is chosen by cross-validation over
   the tune articles (grouped, so no article is in both halves);
2. the reader's mix (`train/mix.py`): how many of (1)'s best candidates the reader reads, the weight of (1)'s score
   next to the reader's, the exact-span threshold and the cap for a sentence without the kind of answer asked for;
3. the confidence: for every tune question, does the candidate chosen by (2) hold an answer? Its inputs are the
   question's features and the reader's (`CONFIDENCE_NAMES`). Unanswerable questions are all negatives, and so are
   near misses made from tune questions (their rarest word replaced, or their answer sentences removed). Its
   inputs are cross-fitted: the sentence scores come from a scorer that did not see the question's article, so
   they are as good as on unseen questions, not better. A logistic fit of a yes/no outcome
   is Platt scaling over several inputs, so the result is a probability: `min_confidence` 0.5 means "more likely
   right than wrong".
Features are standardized for the fit and the scaling is folded into the saved coefficients. The check split is
only measured (the printed table), never fitted. `--ablate` refits without each feature group and reports what it
was worth.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import indexing  # noqa: E402
from rag.answer import Reader, load_reader  # noqa: E402
from rag.answer.features import NAMES  # noqa: E402
from rag.answer.reader import FOLDER as READER  # noqa: E402
from rag.answer.rerank import Choice, Mix  # noqa: E402
from rag.answer.scorer import CONFIDENCE_NAMES, WEIGHTS, Linear, Scorer  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Encoder, resolve_model  # noqa: E402
from rag.evaluation import read_questions  # noqa: E402
from train import mix as mixing  # noqa: E402
from train.examples import SEED, Example, collect, model_words, near_misses, without_answer  # noqa: E402
from train.grouped import Groups, standardize  # noqa: E402
from train.reader_data import casual  # noqa: E402
from train.report import confidences, inputs, measure, report  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
FALSE_ABSTENTIONS = 0.05  # the most answerable questions the default threshold may turn away (issue #8's bound)
NEAR_MISSES = 0.25  # made near misses per answerable tune question (the figures for 0, 0.25, 0.5, 1: README)
PENALTIES = (1e-4, 3e-4, 1e-3, 1e-2)  # L2 strengths tried for the sentence scorer, chosen by grouped cross-validation


def design(examples: list[Example], columns: np.ndarray, products: bool) -> np.ndarray:
    parts = [np.vstack([e.pool.features[:, columns] for e in examples])]
    if products:
        parts.append(np.vstack([e.pool.products() for e in examples]))
    return np.hstack(parts).astype(np.float64)


def fit_sentence(
    examples: list[Example], columns: np.ndarray, products: bool, penalty: float
) -> tuple[Linear, np.ndarray]:
    """The sentence scorer: a linear softmax over each question's candidates (a conditional logit), fitted by
    L-BFGS to put the weight on the candidates that hold an answer, with an L2 `penalty` on standardized weights.
    Only answerable questions with an answer among their candidates teach it anything. Returns the weights over all
    of `NAMES` (zeros for left-out columns) and the vector-product weights."""
    examples = [e for e in examples if e.answerable and e.labels.any()]
    x, mean, scale = standardize(design(examples, columns, products))
    y = np.concatenate([e.labels for e in examples]).astype(bool)
    groups = Groups.of(np.asarray([len(e.labels) for e in examples]))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        e, total = groups.exp(x @ w)
        right = groups.sum(e * y)
        grad_rows = e / total[groups.owner] - e * y / right[groups.owner]
        value = -float(np.log(right / total).sum()) / len(examples) + penalty * float(w @ w)
        return value, x.T @ grad_rows / len(examples) + 2 * penalty * w

    w = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x / scale
    full = np.zeros(len(NAMES), dtype=np.float32)
    full[columns] = w[: len(columns)]
    extra = w[len(columns) :] if products else np.zeros(examples[0].pool.vectors.shape[1])
    # A softmax is blind to a constant: the intercept is fitted by the confidence, which reads the best score.
    return Linear(NAMES, full, -float((w * mean).sum())), np.asarray(extra, dtype=np.float32)


def logits_of(example: Example, sentence: Linear, products: np.ndarray) -> np.ndarray:
    return Scorer(sentence, products, sentence, Mix(1, 0.0, 0.0, 1.0), {}).sentence_logits(example.pool)


def cross_fitted(examples: list[Example], columns: np.ndarray, products: bool, c: float) -> list[np.ndarray]:
    """Each example's candidate scores from a scorer fitted without its article."""
    groups = np.asarray([e.group for e in examples])
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for train, held in GroupKFold(n_splits=3).split(examples, groups=groups):
        sentence, prods = fit_sentence([examples[i] for i in train], columns, products, c)
        for i in held:
            out[i] = logits_of(examples[i], sentence, prods)
    return out


def choose_c(examples: list[Example], columns: np.ndarray, products: bool) -> float:
    """The regularization with the best cross-validated top-1 accuracy on the tune articles."""
    scores = {}
    for c in PENALTIES:
        logits = cross_fitted(examples, columns, products, c)
        scores[c] = np.mean(
            [e.labels[int(np.argmax(z))] for e, z in zip(examples, logits, strict=True) if e.answerable]
        )
        print(f"  penalty {c}: cross-validated top-1 {scores[c]:.4f}", flush=True)
    return max(scores, key=lambda c: scores[c])


def fit_confidence(examples: list[Example], picked: list[Choice]) -> Linear:
    """A logistic fit over all examples (made near misses included), then Platt scaling of its score on the real
    questions only, so that the made ones teach the direction but do not shift the share of unanswerable questions
    the probability assumes."""
    x = inputs(examples, picked)
    y = np.asarray([bool(e.labels[c.best]) for e, c in zip(examples, picked, strict=True)])
    real = np.asarray([not e.made for e in examples])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=SEED).fit(scaler.transform(x), y)
    coef = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - (coef * scaler.mean_).sum())
    score = (x[real] @ coef + intercept).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=2000, random_state=SEED).fit(score, y[real])
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return Linear(CONFIDENCE_NAMES, (a * coef).astype(np.float32), a * intercept + b)


def fit_threshold(examples: list[Example], confidence: np.ndarray, most_false: float = FALSE_ABSTENTIONS) -> float:
    """The highest abstention threshold (on a 0.01 grid) at which at most `most_false` of the answerable tune
    questions abstain."""
    answerable = confidence[np.asarray([e.answerable and not e.made for e in examples])]
    ok = [t for t in np.arange(0.0, 1.0, 0.01) if np.mean(answerable < t) <= most_false]
    return round(float(max(ok)), 2)


def fit_mix(tune: list[Example], logits: list[np.ndarray], reader: Reader) -> tuple[Mix, list[Choice]]:
    """The reader's mix (`train/mix.py`) on tune, and each tune example's choice under it."""
    top = mixing.choose_top(tune, logits)
    reads = mixing.read_all(reader, tune, logits, top)
    weight = mixing.choose_weight(tune, logits, reads, top)
    picked = mixing.choices(tune, logits, reads, Mix(top, weight, 0.0, 1.0))
    real = [(e, c) for e, c in zip(tune, picked, strict=True) if not e.made]
    threshold = mixing.fit_span_threshold([e for e, _ in real], [c for _, c in real])
    cap = mixing.fit_type_cap([e for e, _ in real], [c for _, c in real])
    return Mix(top, weight, threshold, cap), picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tune", type=Path, default=SHARED / "squad11" / "tune.jsonl")
    parser.add_argument("--check", type=Path, default=SHARED / "squad11" / "check.jsonl")
    parser.add_argument("--corpus", type=Path, default=SHARED / "squad11" / "corpus")
    parser.add_argument("--index", type=Path, default=Path("/tmp/rag-train-index"))
    parser.add_argument("--dev", type=Path, default=SHARED / "dev.jsonl")
    parser.add_argument("--dev-corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument(
        "--near-misses", type=float, default=NEAR_MISSES, help="made near misses per answerable tune question"
    )
    parser.add_argument("--products", action="store_true", help="add the question-sentence vector products")
    parser.add_argument("--reader", type=Path, default=READER, help="the trained reader's folder")
    parser.add_argument("--every", type=int, default=1, help="only every Nth question of tune and check (a trial)")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = Settings.from_env(corpus=args.corpus, index=args.index)  # RAG_MODEL and the rest apply
    # fp32 unless RAG_PRECISION says otherwise: the weights are fitted on fp32 vectors, and int8's answers with them
    # hold within a point (README, Quality).
    encoder = Encoder(settings.model, settings.backend, "fp32" if settings.precision == "auto" else settings.precision)
    index, _ = indexing.build(settings, encoder, progress=False)
    words = model_words(Path(resolve_model(settings.model)))
    tune_items, check_items = read_questions(args.tune)[:: args.every], read_questions(args.check)[:: args.every]
    made_tune = near_misses(tune_items, index, words)
    keep = np.random.default_rng(SEED).random(len(made_tune)) < args.near_misses
    tune = collect(index, encoder, tune_items + [m for m, k in zip(made_tune, keep, strict=True) if k])
    tune += without_answer(tune, args.near_misses)
    check = collect(index, encoder, check_items)
    made = collect(index, encoder, near_misses(check_items, index, words))
    rng = np.random.default_rng(SEED)  # check's questions as people type them (train/reader_data.py's rewrites)
    typed = collect(index, encoder, [dict(it, question=casual(it["question"], rng, 1.0)) for it in check_items])
    dev_settings = Settings(corpus=args.dev_corpus, index=args.index.with_name(args.index.name + "-dev"))
    dev_index, _ = indexing.build(dev_settings, encoder, progress=False)
    readable = [it for it in read_questions(args.dev) if it.get("kind") != "crosslingual"]  # the model reads English
    dev = collect(dev_index, encoder, readable)
    print(f"{len(tune)} tune questions ({sum(e.made for e in tune)} made near misses), {len(check)} check questions")
    all_columns = np.arange(len(NAMES))
    products = args.products
    c = choose_c(tune, all_columns, products)
    sentence, prods = fit_sentence(tune, all_columns, products, c)
    reader = load_reader(args.reader)
    # Tune's candidates are scored by scorers fitted without their article, so the reader's mix and the confidence
    # see scores as good as on unseen questions, not better.
    tune_logits = cross_fitted(tune, all_columns, products, c)
    mix, picked = fit_mix(tune, tune_logits, reader)
    confidence = fit_confidence(tune, picked)
    meta = {
        "fitted_on": f"{args.tune.name}: {sum(not e.made for e in tune)} questions of SQuAD 1.1 (CC BY-SA 4.0) "
        f"and {sum(e.made for e in tune)} near misses made from them",
        "command": "python train/fit_answer.py",
        "model": settings.model,
        "reader_sha256": reader.meta["sha256"],
        "language": "en",
        "seed": SEED,
        "penalty": c,
        "fitted_by": "train/fit_answer.py",
    }
    scorer = Scorer(sentence, prods, confidence, mix, meta)
    scorer.meta["min_confidence"] = fit_threshold(tune, confidences(tune, picked, scorer))
    scorer.save(args.out)
    print(f"penalty {c}; {mix}; min_confidence {scorer.meta['min_confidence']}; wrote {args.out}")
    threshold = scorer.meta["min_confidence"]
    print("| split | answer acc | unanswerable abstained | false abstentions | span F1 | ECE | R@1 | R@5 |")
    print("|---|---|---|---|---|---|---|---|")
    real = [i for i, e in enumerate(tune) if not e.made]
    report("tune (cross-fitted)", measure([tune[i] for i in real], [picked[i] for i in real], scorer, threshold))
    sets = (("check", check), ("check typed casually", typed), ("dev", dev), ("check made near misses", made))
    for name, examples in sets:
        logits = [scorer.sentence_logits(e.pool) for e in examples]
        reads = mixing.read_all(reader, examples, logits, mix.top)
        report(name, measure(examples, mixing.choices(examples, logits, reads, mix), scorer, threshold))
        if name == "check":
            alone = Mix(mix.top, 0.0, mix.span_threshold, mix.type_cap)
            top1 = [
                e.labels[ch.best]
                for e, ch in zip(examples, mixing.choices(examples, logits, reads, alone), strict=True)
                if e.answerable
            ]
            scorer_top1 = [e.labels[int(np.argmax(z))] for e, z in zip(examples, logits, strict=True) if e.answerable]
            alone_top1 = f"reader alone over its top {mix.top} {np.mean(top1):.3f}"
            print(f"check top-1: scorer alone {np.mean(scorer_top1):.3f}, {alone_top1}")
    top = sorted(zip(NAMES, scorer.sentence.coef.tolist(), strict=True), key=lambda kv: -abs(kv[1]))[:12]
    print("largest sentence weights:", ", ".join(f"{n} {w:+.2f}" for n, w in top))
    weights = zip(CONFIDENCE_NAMES, scorer.confidence.coef, strict=True)
    print("confidence weights:", ", ".join(f"{n} {w:+.2f}" for n, w in weights))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
