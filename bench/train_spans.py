"""Fit the exact-span scorer (`rag/answer/span_weights.json`) on the tune split of the SQuAD set, report on check.

    .venv/bin/python bench/train_spans.py [--out rag/answer/span_weights.json]

For every answerable question, the answer sentence is the sentence of its source (`rag.text.chunking.split_sentences`)
that holds one of its answers (case-insensitive) and shares the most question terms. Every candidate span of that
sentence (`rag.answer.spans`) is labelled with its SQuAD token F1 against the best gold answer. Three fits over the
same features, all with a fixed seed and standardized features (the scaling folded into the saved weights):
- "best": a softmax over each question's candidates (a conditional logit, scipy L-BFGS) that puts the weight on the
  candidates of the question's highest F1;
- "soft": the same softmax, fitted to the candidates' F1 normalized into a distribution;
- "logistic": scikit-learn's LogisticRegression of "F1 >= 0.5" over all candidates pooled.
The fit and its L2 penalty are chosen by the F1 of a grouped cross-validation over the tune articles (no article on
both sides); the check split is only measured. The threshold under which no span is given is set on the
cross-fitted tune spans (see `choose_threshold`). SQuAD 1.1 and Wikipedia, CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.grouped import Groups, standardize  # noqa: E402
from rag.answer import spans  # noqa: E402
from rag.evaluation import best_over, holds, read_questions, squad_em, squad_f1  # noqa: E402
from rag.text.chunking import split_sentences  # noqa: E402
from rag.text.question import FORMS, question_form  # noqa: E402
from rag.text.words import terms  # noqa: E402

SQUAD = ROOT.parent / "shared" / "eval" / "squad11"
SEED = 0
# The fits and L2 strengths (on standardized weights) tried by the grouped cross-validation. A wider grid
# ("expected" fit, penalties 1e-4 to 1e-2) cross-validated within 0.01 F1 of this one (0.533-0.539 against 0.539,
# 2026-12-01) and took a quarter of an hour: `--grid` runs it again.
FITS = ("best",)
PENALTIES = (1e-3,)
WIDE_FITS = ("best", "expected", "soft", "logistic")
WIDE_PENALTIES = (1e-4, 1e-3, 1e-2)
NULL_LOSS = 0.002  # the F1 the threshold may cost on tune, at most: nulls only where spans score about nothing


@dataclass
class Example:
    """One answerable question, its answer sentence and that sentence's candidate spans."""

    question: str
    form: str
    sentence: str
    answers: list[str]
    group: str  # the article, for grouped cross-validation
    candidates: spans.Candidates
    texts: list[str]
    f1: np.ndarray  # each candidate's F1 against the best gold answer
    x: np.ndarray  # design rows over `spans.NAMES`


def answer_sentence(text: str, sentences: list[tuple[int, int]], item: dict) -> str | None:
    """The sentence holding an answer that shares the most question terms (None: the answer crosses sentences)."""
    wanted = set(terms(item["question"]))
    holding = [text[a:b] for a, b in sentences if holds(text[a:b], item["answers"])]
    return max(holding, key=lambda s: len(wanted & set(terms(s))), default=None)


def collect(path: Path, corpus: Path) -> tuple[list[Example], int]:
    """Examples of the answerable questions of `path`, and how many answerable ones had no single sentence."""
    split: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    out, missed = [], 0
    for item in read_questions(path):
        if not item.get("answers"):
            continue
        source = item["source"]
        if source not in split:
            text = (corpus / source).read_text(encoding="utf-8")
            split[source] = (text, split_sentences(text))
        sentence = answer_sentence(*split[source], item)
        if sentence is None:
            missed += 1
            continue
        out.append(example(item, sentence))
    return out, missed


def example(item: dict, sentence: str) -> Example:
    question, answers = item["question"], item["answers"]
    form = question_form(question)
    tokens = spans.tokenize(sentence, question, set(terms(question)))
    candidates = spans.candidate_spans(tokens, question)
    texts = [
        sentence[tokens.starts[a] : tokens.ends[b]] for a, b in zip(candidates.first, candidates.last, strict=True)
    ]
    f1 = np.asarray([best_over(squad_f1, t, answers) for t in texts])
    return Example(question, form, sentence, answers, item["source"], candidates, texts, f1, design(candidates, form))


def design(candidates: spans.Candidates, form: str) -> np.ndarray:
    """The candidates' rows over `spans.NAMES`: the base features, then the crossed ones in the form's block."""
    base = candidates.features
    crossed = np.zeros((len(base), len(FORMS) * len(spans.CROSSED)))
    k = FORMS.index(form) * len(spans.CROSSED)
    crossed[:, k : k + len(spans.CROSSED)] = base[:, : len(spans.CROSSED)]
    return np.hstack((base, crossed))


def fit_softmax(examples: list[Example], kind: str, penalty: float, start: np.ndarray | None = None) -> np.ndarray:
    """Weights over `spans.NAMES` of a softmax over each question's candidates (see the module docstring)."""
    examples = [e for e in examples if len(e.f1) and e.f1.max() > 0]
    x, mean, scale = standardize(np.vstack([e.x for e in examples]))
    target = np.concatenate([_target(e.f1, kind) for e in examples])
    groups = Groups.of(np.asarray([len(e.f1) for e in examples]))
    owner = groups.owner

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        e, total = groups.exp(x @ w)
        p = e / total[owner]
        if kind == "best":  # log of the probability of the best candidates together
            right = groups.sum(e * target)
            value = -float(np.log(right / total).sum())
            grad_rows = p - e * target / right[owner]
        elif kind == "expected":  # the expected F1 of a draw from the softmax (not convex: started from "best")
            mean_f1 = groups.sum(p * target)
            value = -float(mean_f1.sum())
            grad_rows = -p * (target - mean_f1[owner])
        else:  # cross-entropy against the F1 distribution
            value = -float((target * np.log(np.maximum(p, 1e-300))).sum())
            grad_rows = p - target
        n = len(examples)
        return value / n + penalty * float(w @ w), x.T @ grad_rows / n + 2 * penalty * w

    w0 = np.zeros(x.shape[1]) if start is None else start * scale
    w = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x
    return w / scale  # a constant shift of every candidate changes no softmax: the intercept is dropped


def _target(f1: np.ndarray, kind: str) -> np.ndarray:
    if kind == "best":
        return (f1 >= f1.max() - 1e-9).astype(np.float64)
    return f1 if kind == "expected" else f1 / f1.sum()


def fit_logistic(examples: list[Example], penalty: float) -> np.ndarray:
    x = np.vstack([e.x for e in examples])
    y = np.concatenate([e.f1 >= 0.5 for e in examples])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    c = 1.0 / (2 * penalty * len(y))  # the same L2 strength per row as the softmax's
    model = LogisticRegression(C=c, max_iter=3000, random_state=SEED).fit((x - mean) / scale, y)
    return model.coef_[0] / scale


def fit(examples: list[Example], kind: str, penalty: float) -> np.ndarray:
    if kind == "logistic":
        return fit_logistic(examples, penalty)
    if kind == "expected":
        return fit_softmax(examples, kind, penalty, fit_softmax(examples, "best", penalty))
    return fit_softmax(examples, kind, penalty)


def model_of(w: np.ndarray, threshold: float = -1.0) -> spans.SpanModel:
    base = w[: len(spans.BASE)]
    return spans.SpanModel(base, w[len(spans.BASE) :].reshape(len(FORMS), len(spans.CROSSED)), threshold)


def predict(e: Example, model: spans.SpanModel) -> tuple[str | None, float]:
    """The chosen span's text and its expected F1, exactly as `spans.exact_span` chooses."""
    if not len(e.f1):
        return None, 0.0
    best, expected = spans.choose(e.candidates, spans.score(model, e.candidates.features, FORMS.index(e.form)))
    return (e.texts[best] if expected >= model.threshold else None), expected


def measure(examples: list[Example], model: spans.SpanModel) -> dict[str, float]:
    predictions = [predict(e, model)[0] for e in examples]
    return {
        "em": float(np.mean([best_over(squad_em, p, e.answers) for p, e in zip(predictions, examples, strict=True)])),
        "f1": float(np.mean([best_over(squad_f1, p, e.answers) for p, e in zip(predictions, examples, strict=True)])),
        "span": float(np.mean([p is not None for p in predictions])),
    }


def report_forms(examples: list[Example], model: spans.SpanModel) -> None:
    """Check F1 by question form."""
    cells = []
    for form in FORMS:
        chosen = [e for e in examples if e.form == form]
        if chosen:
            cells.append(f"{form} {measure(chosen, model)['f1']:.2f} ({len(chosen)})")
    print("check F1 by form:", ", ".join(cells))


def cross_fitted(examples: list[Example], kind: str, penalty: float) -> list[tuple[Example, np.ndarray]]:
    """Each tune example with weights fitted without its article."""
    groups = np.asarray([e.group for e in examples])
    out = []
    for train, held in GroupKFold(n_splits=3).split(examples, groups=groups):
        w = fit([examples[i] for i in train], kind, penalty)
        out += [(examples[i], w) for i in held]
    return out


def choose_fit(examples: list[Example]) -> tuple[str, float, list[tuple[Example, np.ndarray]]]:
    """The fit and penalty of the best cross-validated F1 on the tune articles."""
    results = {}
    for kind in FITS:
        for penalty in PENALTIES:
            folds = cross_fitted(examples, kind, penalty)
            f1 = np.mean([best_over(squad_f1, predict(e, model_of(w))[0], e.answers) for e, w in folds])
            results[(kind, penalty)] = (float(f1), folds)
            print(f"  {kind:8s} penalty {penalty:g}: cross-validated tune F1 {f1:.4f}", flush=True)
    kind, penalty = max(results, key=lambda k: results[k][0])
    return kind, penalty, results[(kind, penalty)][1]


def choose_threshold(folds: list[tuple[Example, np.ndarray]]) -> float:
    """The highest expected F1 under which no span is given that costs the cross-fitted tune spans at most
    `NULL_LOSS` of F1: spans are withheld only where they score about nothing."""
    scored = sorted(
        (predict(e, model_of(w))[1], best_over(squad_f1, predict(e, model_of(w))[0], e.answers)) for e, w in folds
    )
    lost, threshold = 0.0, 0.0
    for expected, f1 in scored:
        lost += f1 / len(scored)
        if lost > NULL_LOSS:
            break
        threshold = expected
    return threshold


def recall(examples: list[Example]) -> tuple[float, float]:
    """Share of questions with a candidate of F1 1, and the mean of the best candidate F1 (the ceiling)."""
    best = [e.f1.max() if len(e.f1) else 0.0 for e in examples]
    return float(np.mean([b >= 1.0 for b in best])), float(np.mean(best))


def time_calls(examples: list[Example], calls: int = 400) -> float:
    """Median ms of one `spans.exact_span` call on sentences of 26-34 words."""
    chosen = [e for e in examples if 26 <= len(e.sentence.split()) <= 34][:calls]
    spans.exact_span(chosen[0].question, chosen[0].form, chosen[0].sentence, set(terms(chosen[0].question)))
    times = []
    for e in chosen:
        wanted = set(terms(e.question))
        started = time.perf_counter()
        spans.exact_span(e.question, e.form, e.sentence, wanted)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def save(path: Path, w: np.ndarray, threshold: float, kind: str, penalty: float, tune: list[Example]) -> None:
    data = {
        "fitted_on": f"SQuAD 1.1 questions: tune.jsonl, {len(tune)} answerable questions on 9 Wikipedia articles "
        "(SQuAD and Wikipedia, CC BY-SA 4.0)",
        "fitted_by": ".venv/bin/python bench/train_spans.py",
        "fit": kind,
        "penalty": penalty,
        "seed": SEED,
        "threshold": round(threshold, 6),
        "threshold_means": "no span when the chosen span's expected F1 is below this",
        "names": list(spans.NAMES),
        "coef": [round(float(c), 6) for c in w],
        "intercept": 0.0,
        "intercept_means": "a softmax over each question's candidates is blind to a constant",
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=spans.WEIGHTS)
    parser.add_argument("--grid", action="store_true", help="cross-validate the wide grid of fits and penalties")
    args = parser.parse_args()
    if args.grid:
        global FITS, PENALTIES
        FITS, PENALTIES = WIDE_FITS, WIDE_PENALTIES
    started = time.perf_counter()
    tune, tune_missed = collect(SQUAD / "tune.jsonl", SQUAD / "corpus")
    check, check_missed = collect(SQUAD / "check.jsonl", SQUAD / "corpus")
    print(
        f"{len(tune)} tune / {len(check)} check questions with an answer sentence "
        f"({tune_missed} / {check_missed} answers cross sentences); {sum(len(e.f1) for e in tune)} tune candidates"
    )
    for name, examples in (("tune", tune), ("check", check)):
        exact, ceiling = recall(examples)
        print(f"{name}: a candidate with F1 1 for {exact:.3f}; best candidate F1 {ceiling:.3f} on average")
    kind, penalty, folds = choose_fit(tune)
    threshold = choose_threshold(folds)
    w = fit(tune, kind, penalty)
    save(args.out, w, threshold, kind, penalty, tune)
    spans.load_model.cache_clear()
    print(f"fit {kind}, penalty {penalty:g}, threshold {threshold:.3f}; wrote {args.out}")
    print("| split | EM | F1 | given a span |")
    print("|---|---|---|---|")
    for name, examples in (("tune (fitted on)", tune), ("check", check)):
        m = measure(examples, model_of(w, threshold))
        print(f"| {name} | {m['em']:.3f} | {m['f1']:.3f} | {m['span']:.3f} |")
    report_forms(check, model_of(w, threshold))
    for other in (k for k in WIDE_FITS if k != kind):  # for the record only: the choice above was made on tune
        m = measure(check, model_of(fit(tune, other, penalty), threshold))
        print(f"check with the {other} fit instead: EM {m['em']:.3f}, F1 {m['f1']:.3f}")
    print(f"median {time_calls(check):.3f} ms a call (26-34-word check sentences)")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
