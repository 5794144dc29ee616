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

from rag import indexing  # noqa: E402
from rag.answer import Query, Reader, gather_pool, load_reader, question_features, quoted_text  # noqa: E402
from rag.answer.features import NAMES, Pool  # noqa: E402
from rag.answer.reader import FOLDER as READER  # noqa: E402
from rag.answer.rerank import Choice, Mix  # noqa: E402
from rag.answer.scorer import CONFIDENCE_NAMES, WEIGHTS, Linear, Scorer  # noqa: E402
from rag.answer.select import holds_kind  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.embedding import Encoder, resolve_model  # noqa: E402
from rag.evaluation import holds, read_questions  # noqa: E402
from rag.indexing import store  # noqa: E402
from rag.pipeline import POOL  # noqa: E402
from rag.retrieval import search  # noqa: E402
from rag.text.words import TOKEN  # noqa: E402
from train import mix as mixing  # noqa: E402
from train.grouped import Groups, standardize  # noqa: E402
from train.reader_data import casual  # noqa: E402

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
    quoted: list[str]  # what each candidate would quote
    answers: list[str]
    made: bool = False  # a near miss made from a question (see `near_misses`, `without_answer`)


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
        quoted = [quoted_text(chunks[h], span) for h, span in zip(pool.hit.tolist(), pool.spans, strict=True)]
        labels = np.asarray([holds(t, answers) for t in quoted])
        held = np.asarray([holds(c.text, answers) for c in chunks])
        made = bool(item.get("made"))
        out.append(Example(query, pool, labels, held, bool(answers), group, quoted, answers, made))
    return out


def without_answer(examples: list[Example], share: float, seed: int = SEED) -> list[Example]:
    """Near misses as users meet them: a `share` of the answerable questions asked with every candidate sentence
    that holds the answer taken away, so the topic is there and the fact is not."""
    rng = np.random.default_rng(seed)
    out = []
    for e in examples:
        if e.answerable and e.labels.any() and (~e.labels).any() and rng.random() < share:
            keep = np.flatnonzero(~e.labels)
            p = e.pool
            pool = Pool(
                p.rows[keep],
                p.hit[keep],
                [p.spans[i] for i in keep],
                p.cos[keep],
                p.features[keep],
                p.vectors[keep],
                p.query_vector,
                p.window_match[keep],
            )
            quoted = [e.quoted[i] for i in keep]
            out.append(Example(e.query, pool, e.labels[keep], e.passage_labels, False, e.group, quoted, [], True))
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


def inputs(examples: list[Example], picked: list[Choice]) -> np.ndarray:
    """The confidence's inputs (`CONFIDENCE_NAMES`) of each example."""
    rows = [
        np.concatenate([question_features(e.query, e.pool, c.logits), c.features])
        for e, c in zip(examples, picked, strict=True)
    ]
    return np.vstack(rows)


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


def confidences(examples: list[Example], picked: list[Choice], scorer: Scorer) -> np.ndarray:
    """The confidence of each example's chosen candidate, as `respond` computes it (the type cap included)."""
    p = [scorer.probability(x) for x in inputs(examples, picked)]
    capped = [not holds_kind(e.query, e.pool, c.best) for e, c in zip(examples, picked, strict=True)]
    return np.asarray([min(q, scorer.mix.type_cap) if cap else q for q, cap in zip(p, capped, strict=True)])


def measure(examples: list[Example], picked: list[Choice], scorer: Scorer, threshold: float) -> dict[str, float]:
    """The eval's answer figures, from the examples directly (the same choice the pipeline makes)."""
    p = confidences(examples, picked, scorer)
    ok = np.asarray([bool(e.labels[c.best]) for e, c in zip(examples, picked, strict=True)])
    able = np.asarray([e.answerable for e in examples])
    answered = p >= threshold
    f1 = [
        mixing.span_f1(e, c, scorer.mix) if a else 0.0
        for e, c, a in zip(examples, picked, answered, strict=True)
        if e.answerable
    ]
    return {
        "answer_acc": float(np.mean(ok[able] & answered[able])),
        "unanswerable_abstained": float(np.mean(~answered[~able])) if (~able).any() else float("nan"),
        "false_abstentions": float(np.mean(~answered[able])),
        "ece": ece(p[answered], ok[answered] & able[answered]),
        "span_f1": float(np.mean(f1)),
        "R@1": rank_at(examples, picked, 1),
        "R@5": rank_at(examples, picked, 5),
    }


def rank_at(examples: list[Example], picked: list[Choice], k: int) -> float:
    """Share of answerable questions with an answer-bearing passage among the first k, passages ordered by their
    best candidate's score (as `rank_passages` orders them; a sentence two passages share counts for the first)."""
    found = []
    for e, c in zip(examples, picked, strict=True):
        if e.answerable:
            best = np.full(len(e.passage_labels), -np.inf)
            np.maximum.at(best, e.pool.hit, c.logits)
            found.append(bool(e.passage_labels[np.argsort(-best, kind="stable")[:k]].any()))
    return float(np.mean(found))


def fit_threshold(examples: list[Example], confidence: np.ndarray, most_false: float = FALSE_ABSTENTIONS) -> float:
    """The highest abstention threshold (on a 0.01 grid) at which at most `most_false` of the answerable tune
    questions abstain."""
    answerable = confidence[np.asarray([e.answerable and not e.made for e in examples])]
    ok = [t for t in np.arange(0.0, 1.0, 0.01) if np.mean(answerable < t) <= most_false]
    return round(float(max(ok)), 2)


def ece(confidence: np.ndarray, right: np.ndarray) -> float:
    if not len(confidence):
        return float("nan")
    bins = np.minimum((confidence * 10).astype(int), 9)
    gaps = [abs(confidence[bins == b].mean() - right[bins == b].mean()) * (bins == b).sum() for b in np.unique(bins)]
    return float(sum(gaps) / len(confidence))


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


def report(name: str, m: dict[str, float]) -> None:
    print(
        f"| {name} | {m['answer_acc']:.3f} | {m['unanswerable_abstained']:.3f} | {m['false_abstentions']:.3f} "
        f"| {m['span_f1']:.3f} | {m['ece']:.3f} | {m['R@1']:.3f} | {m['R@5']:.3f} |",
        flush=True,
    )


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
