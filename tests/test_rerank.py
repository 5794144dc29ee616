"""The reader's mix with the scorer: the chosen candidate, the permuted scores, the features the confidence reads."""

from __future__ import annotations

import numpy as np

from rag.answer.reader import Reading
from rag.answer.rerank import NO_RIVAL, READER_NAMES, Mix, choose, top_candidates

MIX = Mix(top=3, scorer_weight=0.5, span_threshold=0.1, type_cap=0.6)


def reading(logits: list[float]) -> Reading:
    return Reading(np.asarray(logits, dtype=np.float32), [(0, 1)] * len(logits), np.full(len(logits), 0.5))


def test_the_reader_reads_the_scorers_best_few_best_first() -> None:
    logits = np.asarray([0.1, 2.0, -1.0, 1.5, 0.7])
    assert top_candidates(logits, MIX).tolist() == [1, 3, 4]


def test_the_mix_can_overturn_the_scorer_and_the_scores_are_permuted_not_changed() -> None:
    logits = np.asarray([0.1, 2.0, -1.0, 1.5, 0.7])
    top = top_candidates(logits, MIX)
    choice = choose(logits, top, reading([-2.0, 3.0, 0.0]), MIX)  # candidate 3: 3.0 + 0.75 against 1 - 2.0 + 1.0
    assert choice.best == 3 and choice.at == 1
    assert int(np.argmax(choice.logits)) == 3
    assert sorted(choice.logits.tolist()) == sorted(logits.tolist())
    assert choice.logits[[0, 2]].tolist() == logits[[0, 2]].tolist()  # candidates not read keep their scores
    assert len(choice.features) == len(READER_NAMES)
    assert choice.features[0] == 3.0 and choice.features[1] == 3.0  # its log-odds, and its margin over 0.0


def test_a_lone_candidate_has_the_largest_margin() -> None:
    logits = np.asarray([1.0])
    choice = choose(logits, top_candidates(logits, MIX), reading([0.5]), MIX)
    assert choice.best == 0 and choice.features[1] == NO_RIVAL
