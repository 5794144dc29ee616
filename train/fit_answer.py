"""Fit the answer scorer (`rag/answer/weights.json`) on the tune split of the SQuAD set, and report on check.

    .venv/bin/python bench/train_answer.py [--ablate] [--out rag/answer/weights.json]

Two logistic regressions (scikit-learn, fixed seed), both over the features of `rag/answer/features.py`:
1. the sentence scorer: for every candidate sentence of the passages retrieved for a tune question, does its quoted
   text hold an answer string (the rule the eval scores)? Its regularization is chosen by cross-validation over
   the tune articles (grouped, so no article is in both halves);
2. the confidence: for every tune question, does the best candidate by (1) hold an answer? Unanswerable questions
   are all negatives. Its inputs are cross-fitted: the sentence scores come from a scorer that did not see the
   question's article, so they are as good as on unseen questions, not better. A logistic fit of a yes/no outcome
   is Platt scaling over several inputs, so the result is a probability: `min_confidence` 0.5 means "more likely
   right than wrong".
Features are standardized for the fit and the scaling is folded into the saved coefficients. The check split is
only measured (the printed table), never fitted. `--ablate` refits without each feature group and reports what it
was worth.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.grouped import Groups, standardize  # noqa: E402
from rag import indexing  # noqa: E402
from rag.answer import Query, extend_span, gather_pool, question_features, sentence_text  # noqa: E402
from rag.answer.features import GROUPS, NAMES, QUESTION_NAMES, Pool  # noqa: E402
from rag.answer.scorer import WEIGHTS, Linear, Scorer  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Encoder, resolve_model  # noqa: E402
from rag.evaluation import holds, read_questions  # noqa: E402
from rag.indexing import store  # noqa: E402
from rag.pipeline import POOL  # noqa: E402
from rag.retrieval import search  # noqa: E402
from rag.text.chunking import Chunk  # noqa: E402
from rag.text.words import TOKEN  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
SEED = 0
FALSE_ABSTENTIONS = 0.05  # the most answerable questions the default threshold may turn away (issue #8's bound)
NEAR_MISSES = 0.25  # made near misses per answerable tune question (the figures for 0, 0.25, 0.5, 1: README)
PENALTIES = (1e-4, 3e-4, 1e-3, 1e-2)  # L2 strengths tried for the sentence scorer, chosen by grouped cross-validation


@dataclass
class Example:
    """One question with its candidates, as the pipeline sees them."""

    query: Query
    pool: Pool
    labels: np.ndarray  # candidate i's quoted text holds an answer
    passage_labels: np.ndarray  # hit j's passage holds an answer
    answerable: bool
    group: str  # the article, for grouped cross-validation
    made: bool = False  # a near miss made from a question (see `near_misses`)


def collect(index: store.Index, encoder: Encoder, items: list[dict]) -> list[Example]:
    """Examples of every question of `items` (the eval format)."""
    vectors = encoder.encode([it["question"] for it in items], 64)
    out, group = [], ""
    for item, vector in zip(items, vectors, strict=True):
        group = item.get("group") or item.get("source") or group  # unanswerable ones follow their article's
        answers = item.get("answers") or []
        terms = index.vocabulary.query_terms(item["question"])
        hits, passages = search(index.engine, vector, terms, POOL)
        query = Query.read(item["question"], vector, terms, index.vocabulary, "en")
        pool = gather_pool(passages, hits, query)
        chunks = passages.chunks
        quoted = [_quoted(chunks[h], span) for h, span in zip(pool.hit.tolist(), pool.spans, strict=True)]
        labels = np.asarray([holds(t, answers) for t in quoted])
        held = np.asarray([holds(c.text, answers) for c in chunks])
        out.append(Example(query, pool, labels, held, bool(answers), group, bool(item.get("made"))))
    return out


def near_misses(items: list[dict], index: store.Index, words: list[str], seed: int = SEED) -> list[dict]:
    """Unanswerable questions made from answerable ones: the question's rarest word that the documents hold is
    replaced by a word they never use (from the model's own word-piece vocabulary), as in "How many tanks did ...?"
    asked of documents that mention no tanks. They teach the confidence that a key word found nowhere near any
    candidate means the answer is not there, which SQuAD's near misses (the topic's words all present) do not."""
    rng = np.random.default_rng(seed)
    vocabulary, rules = index.vocabulary, index.words
    unused = [w for w in words if rules.stem(w) not in vocabulary and not rules.is_stop(w)]
    out, group = [], ""
    for item in items:
        group = item.get("source") or group
        if not item.get("answers"):
            continue
        spelled = [w for w in TOKEN.findall(item["question"]) if not rules.is_stop(w.lower())]
        ids = vocabulary.lookup([rules.stem(w.lower()) for w in spelled])
        if not len(ids) or (ids < 0).all():
            continue
        rarest = spelled[int(np.argmax(np.where(ids >= 0, vocabulary.idf(ids), -1.0)))]
        new = str(rng.choice(unused))
        new = new.capitalize() if rarest[0].isupper() else new
        question = re.sub(rf"\b{re.escape(rarest)}\b", new, item["question"], count=1)
        out.append(
            {"question": question, "answers": [], "kind": "unanswerable", "source": None, "made": True, "group": group}
        )
    return out


def model_words(model_folder: Path) -> list[str]:
    """Whole lower-case words of five letters or more from the model's word-piece vocabulary."""
    vocabulary = (model_folder / "vocab.txt").read_text(encoding="utf-8").split()
    return sorted(w for w in vocabulary if len(w) >= 5 and w.isascii() and w.isalpha() and w.islower())


def _quoted(chunk: Chunk, span: tuple[int, int]) -> str:
    return sentence_text(chunk, extend_span(chunk, span))


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
    return Scorer(sentence, products, sentence, {}).sentence_logits(example.pool)


def top1(examples: list[Example], sentence: Linear, products: np.ndarray) -> float:
    """Share of answerable questions whose best candidate holds an answer."""
    rights = [e.labels[int(np.argmax(logits_of(e, sentence, products)))] for e in examples if e.answerable]
    return float(np.mean(rights))


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


def fit_confidence(examples: list[Example], logits: list[np.ndarray]) -> Linear:
    """A logistic fit over all examples (made near misses included), then Platt scaling of its score on the real
    questions only, so that the made ones teach the direction but do not shift the share of unanswerable questions
    the probability assumes."""
    x = np.vstack([question_features(e.query, e.pool, z) for e, z in zip(examples, logits, strict=True)])
    y = np.asarray([bool(e.labels[int(np.argmax(z))]) for e, z in zip(examples, logits, strict=True)])
    real = np.asarray([not e.made for e in examples])
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=SEED).fit(scaler.transform(x), y)
    coef = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - (coef * scaler.mean_).sum())
    score = (x[real] @ coef + intercept).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=2000, random_state=SEED).fit(score, y[real])
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return Linear(QUESTION_NAMES, (a * coef).astype(np.float32), a * intercept + b)


def fit(examples: list[Example], columns: np.ndarray, products: bool, c: float) -> Scorer:
    sentence, prods = fit_sentence(examples, columns, products, c)
    confidence = fit_confidence(examples, cross_fitted(examples, columns, products, c))
    return Scorer(sentence, prods, confidence, {})


def measure(examples: list[Example], scorer: Scorer, threshold: float = 0.5) -> dict[str, float]:
    """The eval's answer figures, from the examples directly (the same choice the pipeline makes)."""
    right, answered, conf, abstain_unans, false_abst = [], [], [], [], []
    for e in examples:
        z = scorer.sentence_logits(e.pool)
        p = scorer.probability(question_features(e.query, e.pool, z))
        ok = bool(e.labels[int(np.argmax(z))])
        if e.answerable:
            right.append(ok and p >= threshold)
            false_abst.append(p < threshold)
        else:
            abstain_unans.append(p < threshold)
        if p >= threshold:
            answered.append(ok and e.answerable)
            conf.append(p)
    return {
        "answer_acc": float(np.mean(right)),
        "unanswerable_abstained": float(np.mean(abstain_unans)) if abstain_unans else float("nan"),
        "false_abstentions": float(np.mean(false_abst)),
        "ece": ece(np.asarray(conf), np.asarray(answered)),
        "R@1": rank_at(examples, scorer, 1),
        "R@5": rank_at(examples, scorer, 5),
    }


def rank_at(examples: list[Example], scorer: Scorer, k: int) -> float:
    """Share of answerable questions with an answer-bearing passage among the first k, passages ordered by their
    best candidate's score (as `rank_passages` orders them; a sentence two passages share counts for the first)."""
    found = []
    for e in examples:
        if e.answerable:
            best = np.full(len(e.passage_labels), -np.inf)
            np.maximum.at(best, e.pool.hit, scorer.sentence_logits(e.pool))
            found.append(bool(e.passage_labels[np.argsort(-best, kind="stable")[:k]].any()))
    return float(np.mean(found))


def fit_threshold(examples: list[Example], scorer: Scorer, most_false: float = FALSE_ABSTENTIONS) -> float:
    """The highest abstention threshold (on a 0.01 grid) at which at most `most_false` of the answerable tune
    questions abstain."""
    confidences = [
        scorer.probability(question_features(e.query, e.pool, scorer.sentence_logits(e.pool)))
        for e in examples
        if e.answerable
    ]
    ok = [t for t in np.arange(0.0, 1.0, 0.01) if np.mean(np.asarray(confidences) < t) <= most_false]
    return round(float(max(ok)), 2)


def ece(confidence: np.ndarray, right: np.ndarray) -> float:
    if not len(confidence):
        return float("nan")
    bins = np.minimum((confidence * 10).astype(int), 9)
    gaps = [abs(confidence[bins == b].mean() - right[bins == b].mean()) * (bins == b).sum() for b in np.unique(bins)]
    return float(sum(gaps) / len(confidence))


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
    parser.add_argument(
        "--products", action="store_true", help="add the question-sentence vector products (they overfit: --ablate)"
    )
    parser.add_argument("--ablate", action="store_true", help="refit without each feature group")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = Settings.from_env(corpus=args.corpus, index=args.index)  # RAG_MODEL and the rest apply
    # fp32 unless RAG_PRECISION says otherwise: rag/answer/weights.json was fitted on fp32 vectors, and int8's
    # answers with them held within a point (README, Quality).
    encoder = Encoder(settings.model, settings.backend, "fp32" if settings.precision == "auto" else settings.precision)
    index, _ = indexing.build(settings, encoder, progress=False)
    words = model_words(Path(resolve_model(settings.model)))
    tune_items, check_items = read_questions(args.tune), read_questions(args.check)
    made_tune = near_misses(tune_items, index, words)
    keep = np.random.default_rng(SEED).random(len(made_tune)) < args.near_misses
    tune = collect(index, encoder, tune_items + [m for m, k in zip(made_tune, keep, strict=True) if k])
    check = collect(index, encoder, check_items)
    made = collect(index, encoder, near_misses(check_items, index, words))
    dev_settings = Settings(corpus=args.dev_corpus, index=args.index.with_name(args.index.name + "-dev"))
    dev_index, _ = indexing.build(dev_settings, encoder, progress=False)
    readable = [it for it in read_questions(args.dev) if it.get("kind") != "crosslingual"]  # the model reads English
    dev = collect(dev_index, encoder, readable)
    print(f"{len(tune)} tune questions ({sum(e.made for e in tune)} made near misses), {len(check)} check questions")
    all_columns = np.arange(len(NAMES))
    products = args.products
    c = choose_c(tune, all_columns, products)
    scorer = fit(tune, all_columns, products, c)
    scorer = Scorer(
        scorer.sentence,
        scorer.products,
        scorer.confidence,
        {
            "fitted_on": f"{args.tune.name}: {sum(not e.made for e in tune)} questions of SQuAD 1.1 (CC BY-SA 4.0) "
            f"and {sum(e.made for e in tune)} near misses made from them",
            "command": "python bench/train_answer.py",
            "model": settings.model,
            "language": "en",
            "seed": SEED,
            "penalty": c,
            "fitted_by": "bench/train_answer.py",
        },
    )
    scorer.meta["min_confidence"] = fit_threshold(tune, scorer)
    scorer.save(args.out)
    print(f"penalty {c}; min_confidence {scorer.meta['min_confidence']}; wrote {args.out}")
    print("| split | answer acc | unanswerable abstained | false abstentions | ECE | R@1 | R@5 |")
    print("|---|---|---|---|---|---|---|")
    for name, examples in (("tune", [e for e in tune if not e.made]), ("check", check), ("dev", dev)):
        m = measure(examples, scorer, scorer.meta["min_confidence"])
        print(
            f"| {name} | {m['answer_acc']:.3f} | {m['unanswerable_abstained']:.3f} | {m['false_abstentions']:.3f} "
            f"| {m['ece']:.3f} | {m['R@1']:.3f} | {m['R@5']:.3f} |"
        )
    m = measure(made, scorer, scorer.meta["min_confidence"])
    print(
        f"check questions with their rarest word replaced by one the documents never use: {len(made)}, abstained "
        f"{m['unanswerable_abstained']:.3f}"
    )
    top = sorted(zip(NAMES, scorer.sentence.coef.tolist(), strict=True), key=lambda kv: -abs(kv[1]))[:12]
    print("largest sentence weights:", ", ".join(f"{n} {w:+.2f}" for n, w in top))
    weights = zip(QUESTION_NAMES, scorer.confidence.coef, strict=True)
    print("confidence weights:", ", ".join(f"{n} {w:+.2f}" for n, w in weights))
    if args.ablate:
        ablate(tune, check, c, products)
    print(f"done in {time.perf_counter() - started:.0f} s")


def ablate(tune: list[Example], check: list[Example], c: float, products: bool) -> None:
    """Check figures without each feature group (refitted on tune each time)."""
    print("| without | check answer acc | unanswerable abstained | false abstentions | ECE |")
    print("|---|---|---|---|---|")
    variants = {
        name: (np.asarray([i for i, n in enumerate(NAMES) if n not in cols]), products) for name, cols in GROUPS.items()
    }
    variants["products" if products else "+products"] = (np.arange(len(NAMES)), not products)
    for name, (columns, with_products) in variants.items():
        variant = fit(tune, columns, with_products, c)
        m = measure(check, variant, fit_threshold(tune, variant))
        print(
            f"| {name} | {m['answer_acc']:.3f} | {m['unanswerable_abstained']:.3f} | {m['false_abstentions']:.3f} "
            f"| {m['ece']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
