"""The reader re-ranks the fitted scorer's best few candidates.

The scorer's `Mix.top` best candidate sentences are read by the trained reader (`reader/`) together with the
question; each gets `reader logit + scorer_weight * scorer logit`, and the best of those is the answer. Every
value of `Mix` is fitted on the SQuAD tune split by `train/fit_answer.py` and stored in `weights.json`: `top` is the
smallest number of candidates that keeps an answer-bearing sentence 95% of the time it is among them all,
`scorer_weight` the mix with the best tune top-1, `span_threshold` and `type_cap` as their fields say.

The candidates' scores are then permuted among the top ones so that the chosen candidate has the highest (the
passages are cited by their best candidate, so the answer's passage comes first) while the scale, which the
confidence and the passages' shares read, stays the scorer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .reader import Reading

READER_NAMES = ["reader_top", "reader_margin", "reader_span", "mixed_margin"]
NO_RIVAL = 10.0  # the margin of a sole candidate: a log-odds gap as large as the reader gives (about 10 at most)


@dataclass(frozen=True)
class Mix:
    top: int  # candidates the reader reads
    scorer_weight: float  # the scorer's logit's weight next to the reader's
    span_threshold: float  # span probability under which no exact span is marked
    type_cap: float  # the most confidence for a sentence that holds no answer of the kind asked (a date for when)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mix:
        return cls(
            int(data["top"]), float(data["scorer_weight"]), float(data["span_threshold"]), float(data["type_cap"])
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "scorer_weight": self.scorer_weight,
            "span_threshold": self.span_threshold,
            "type_cap": self.type_cap,
        }


@dataclass(frozen=True)
class Choice:
    """The answer candidate the reader and the scorer agree on."""

    logits: np.ndarray  # every candidate's score, the chosen one highest
    best: int  # the chosen candidate's position in the pool
    at: int  # its position among the read ones (`reading`'s rows)
    reading: Reading  # of the `top` candidates read
    features: np.ndarray  # `READER_NAMES` of the chosen one, for the confidence


def top_candidates(logits: np.ndarray, mix: Mix) -> np.ndarray:
    """Positions of the candidates the reader reads: the scorer's best `mix.top`, best first."""
    return np.argsort(-logits, kind="stable")[: mix.top]


def choose(logits: np.ndarray, top: np.ndarray, reading: Reading, mix: Mix) -> Choice:
    """The best of the read candidates `top` by the mixed score, and the scores permuted to put it first."""
    mixed = reading.logits + mix.scorer_weight * logits[top]
    order = np.argsort(-mixed, kind="stable")
    at = int(order[0])
    new = logits.astype(np.float64, copy=True)
    new[top[order]] = np.sort(logits[top])[::-1]
    features = np.asarray(
        [
            reading.logits[at],
            _margin(reading.logits, at),
            np.log(max(float(reading.span_probability[at]), 1e-6)),
            _margin(mixed, at),
        ],
        dtype=np.float32,
    )
    return Choice(new, int(top[at]), at, reading, features)


def _margin(values: np.ndarray, at: int) -> float:
    others = np.delete(values, at)
    return float(values[at] - others.max()) if len(others) else NO_RIVAL


__all__ = ["READER_NAMES", "Choice", "Mix", "choose", "top_candidates"]
