"""The fitted answer scorer: a linear model over each candidate sentence's features, how the trained reader's
score is mixed in (`rerank.Mix`), and a logistic regression over the question's and the reader's features that
turns the chosen candidate into a calibrated probability (the confidence).

All are fitted on the tune split of the SQuAD set by `train/fit_answer.py` (fixed seed), which writes
`weights.json` beside this file with what it was fitted on, the embedding model included; nothing here is set by
hand. Scoring is a matrix-vector product: microseconds a question.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..embedding import resolve_model
from ..errors import IndexCorrupt, ModelError
from .features import NAMES, QUESTION_NAMES, Pool
from .rerank import READER_NAMES, Mix

WEIGHTS = Path(__file__).with_name("weights.json")
CONFIDENCE_NAMES = QUESTION_NAMES + READER_NAMES


@dataclass(frozen=True)
class Linear:
    """A fitted linear model: `names` in the order of its coefficients."""

    names: list[str]
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Linear:
        return cls(list(data["names"]), np.asarray(data["coef"], dtype=np.float32), float(data["intercept"]))

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "coef": [round(float(c), 6) for c in self.coef], "intercept": self.intercept}


@dataclass(frozen=True)
class Scorer:
    sentence: Linear  # over `features.NAMES`
    products: np.ndarray  # weights of the question-sentence vector products (zeros: not used)
    confidence: Linear  # over `CONFIDENCE_NAMES`
    mix: Mix
    meta: dict[str, Any]

    def sentence_logits(self, pool: Pool) -> np.ndarray:
        """Each candidate's score (log-odds that it holds the answer)."""
        logits = pool.features @ self.sentence.coef + self.sentence.intercept
        if self.products.any():  # sum over j of vector[i, j] * query[j] * weight[j]
            logits = logits + pool.vectors @ (self.products * pool.query_vector)
        return logits

    def probability(self, question_features: np.ndarray) -> float:
        """The calibrated probability that the best candidate answers the question."""
        z = float(question_features @ self.confidence.coef + self.confidence.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.meta,
            "sentence": self.sentence.to_dict(),
            "products": [round(float(c), 6) for c in self.products],
            "confidence": self.confidence.to_dict(),
            "reader": self.mix.to_dict(),
        }

    def save(self, path: Path = WEIGHTS) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")


@lru_cache(maxsize=4)
def load_scorer(path: Path = WEIGHTS) -> Scorer:
    """The scorer in `path`; refuses weights fitted on other features than this version computes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        scorer = Scorer(
            Linear.from_dict(data["sentence"]),
            np.asarray(data["products"], dtype=np.float32),
            Linear.from_dict(data["confidence"]),
            Mix.from_dict(data["reader"]),
            {k: v for k, v in data.items() if k not in ("sentence", "products", "confidence", "reader")},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"the answer weights {path} are missing or damaged ({exc}); reinstall rag") from None
    if scorer.sentence.names != NAMES or scorer.confidence.names != CONFIDENCE_NAMES:
        raise IndexCorrupt(f"the answer weights {path} were fitted on other features; run train/fit_answer.py")
    return scorer


def check_model(scorer: Scorer, model: str) -> None:
    """Refuse answer weights fitted with another embedding model: their dense features (cosines) mean something
    else with other vectors."""
    fitted = str(scorer.meta.get("model"))
    if resolve_model(fitted) != resolve_model(model):  # a name, or the folder it names
        raise ModelError(
            f"the answer weights were fitted with the embedding model {fitted!r}, and this index uses {model!r}; "
            f"set RAG_MODEL={fitted} or fit weights for {model!r} with: python train/fit_answer.py"
        )
