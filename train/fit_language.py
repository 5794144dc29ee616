"""Choose the language detector's minimum probability (`MIN_PROBABILITY` in `rag/text/language.py`) from questions.

    .venv/bin/python train/fit_language.py [--squad ../shared/eval/squad11/tune.jsonl]

Questions in English: the SQuAD tune split, the team's questions on the bundled corpus (`bench/tuning.jsonl`), the
casual English questions of `tests/test_language.py`, and each of the first two typed casually (lower case, no
question mark). Questions in other languages: `train/languages.tsv` (98 written for this, in the 39 languages of
`DETECTOR_LANGUAGES`) and the other-language questions of the tests. Every question goes through
`question_language` as it runs, steps 1 to 3 included, with the detector's minimum probability set to each value
tried. The chosen value is the lowest at which no casual English question of the tests is taken for another
language and at most 1 in 1,000 SQuAD questions is (some of those quote German or French titles): a lower value
tells more foreign questions, and an English question taken for another language is not answered at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.text import language  # noqa: E402
from tests.test_language import ENGLISH, OTHER  # noqa: E402

VALUES = [0.0, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9]
SQUAD_ERRORS = 0.001  # share of SQuAD questions that may be taken for another language


def _questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8") if line.strip()]


def _casual(questions: list[str]) -> list[str]:
    return questions + [q.lower().rstrip("?").strip() for q in questions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/eval/squad11/tune.jsonl")
    args = parser.parse_args()
    squad = _casual(_questions(args.squad))
    team = _casual(_questions(ROOT / "bench/tuning.jsonl"))
    lines = (ROOT / "train/languages.tsv").read_text(encoding="utf-8").splitlines()
    other = [tuple(line.split("\t", 1)) for line in lines if line and not line.startswith("#")] + list(OTHER)

    print(f"English: {len(ENGLISH)} casual (tests), {len(squad)} SQuAD tune, {len(team)} bench/tuning.jsonl")
    print(f"Other languages: {len(other)}\n")
    print("| min probability | casual English: another | SQuAD | bench/tuning | other: right | other: not English |")
    print("|---|---|---|---|---|---|")
    chosen = None
    for value in VALUES:
        language.MIN_PROBABILITY = value

        def wrong(questions: list[str]) -> int:
            return sum(language.question_language(q) not in ("en", None) for q in questions)

        casual, squad_wrong, team_wrong = wrong(ENGLISH), wrong(squad), wrong(team)
        found = [(code, language.question_language(q)) for code, q in other]
        right = sum(code == got for code, got in found)
        foreign = sum(got not in ("en", None) for _, got in found)
        print(f"| {value} | {casual} | {squad_wrong} | {team_wrong} | {right} | {foreign} |")
        if chosen is None and casual == 0 and squad_wrong <= SQUAD_ERRORS * len(squad):
            chosen = value
    print(f"\nchosen: MIN_PROBABILITY = {chosen}")


if __name__ == "__main__":
    main()
