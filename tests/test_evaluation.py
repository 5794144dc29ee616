"""Scoring responses: string matching rules, SQuAD exact-span scores, per-question results, calibration, the summary
table, reading question files, and agreement with the eval's independent scorer (`../shared/eval/score.py`)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.errors import BadRequest
from rag.evaluation import (
    Bin,
    Scored,
    best_over,
    calibration,
    expected_calibration_error,
    format_table,
    holds,
    normalize,
    read_questions,
    reliability,
    score_one,
    squad_em,
    squad_f1,
    squad_normalize,
    summarize,
)
from rag.readers.documents import read_document

SCORER = Path(__file__).resolve().parents[1].parent / "shared/eval/score.py"

SOURCES = {
    "a.txt": "Japan established diplomatic relations with Ukraine on January 26, 1992. Japan’s aid followed in 2014.\n"
    "The New Europe Center organised four forums in Kyiv.",
    "b.txt": "The embassy opened in 1993. Over 1,500 generators were handed over last year.",
}


def read_source(source: str) -> str:
    return SOURCES[source]


def span(source: str, phrase: str, *, shift: int = 0) -> dict[str, Any]:
    start = SOURCES[source].index(phrase) + shift
    return {"source": source, "start": start, "end": start + len(phrase), "text": phrase}


def citation(n: int, source: str, phrase: str, *, shift: int = 0, mark: tuple[int, int] | None = None) -> dict:
    """A citation; its highlight is the whole passage unless `mark` gives offsets relative to the passage."""
    c = {"n": n, "title": source, "score": 0.5, **span(source, phrase, shift=shift)}
    h0, h1 = mark or (0, len(phrase))
    return {**c, "highlight": {"start": c["start"] + h0, "end": c["start"] + h1}}


def answer(n: int, source: str, sentence: str, exact: str | None = None, **extra: Any) -> dict[str, Any]:
    """An answer sentence; `exact` is its exact span, with its source (score.py fails on a span without one)."""
    shift = extra.pop("exact_shift", 0)
    out = {**span(source, sentence), "citation": n, **extra}
    if exact is not None:
        out["exact"] = span(source, exact, shift=shift)
    return out


def response(ans: dict[str, Any] | None, citations: list[dict], confidence: float = 0.9) -> dict:
    return {"question": "q", "abstained": ans is None, "confidence": confidence, "answer": ans, "citations": citations}


JAPAN = "Japan established diplomatic relations with Ukraine on January 26, 1992."
AID = "Japan’s aid followed in 2014."
FORUMS = "The New Europe Center organised four forums in Kyiv."
EMBASSY = "The embassy opened in 1993."
GENERATORS = "Over 1,500 generators were handed over last year."


def test_normalize_folds_case_space_and_apostrophes() -> None:
    assert normalize("  Japan’s\n\tAID \u00a0 followed ") == "japan's aid followed"


@pytest.mark.parametrize(
    ("text", "answers", "expected"),
    [
        ("In 1992 Japan established relations.", ["1992"], True),
        ("JAPAN’S aid", ["japan's AID"], True),
        ("four\n   forums", ["Four Forums"], True),
        ("four forums", ["five forums", "four  forums"], True),
        ("four forums", ["five forums"], False),
        ("four forums", [], False),
        (None, ["anything"], False),
        ("  ", [""], False),  # an empty text holds nothing, as in score.py
    ],
)
def test_holds(text: str | None, answers: list[str], expected: bool) -> None:
    assert holds(text, answers) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Cat, a dog!", "cat dog"),
        ("An apple-pie\tin THE oven.", "applepie in oven"),
        ("another theme", "another theme"),  # articles only as whole words
        ("January 26, 1992", "january 26 1992"),
        ("Japan’s aid", "japan’s aid"),  # string.punctuation is ASCII: the typographic apostrophe stays
        ("the a an", ""),
    ],
)
def test_squad_normalize(text: str, expected: str) -> None:
    assert squad_normalize(text) == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("January 26, 1992", "january 26 1992", 1.0),
        ("26 January", "January 26, 1992", 0.8),  # precision 1, recall 2/3
        ("on January 26, 1992 in Tokyo", "January 26, 1992", 2 / 3),  # precision 1/2, recall 1
        ("Kyiv", "four forums", 0.0),
        ("the", "a", 1.0),  # both empty after normalization (SQuAD v2.0's rule, as score.py)
        ("Kyiv", "the", 0.0),
    ],
)
def test_squad_f1(prediction: str, gold: str, expected: float) -> None:
    assert squad_f1(prediction, gold) == pytest.approx(expected)


def test_squad_em_and_the_best_over_the_answers() -> None:
    assert squad_em("The four forums.", "four forums") == 1.0
    assert squad_em("four forums in Kyiv", "four forums") == 0.0
    assert best_over(squad_f1, "four forums, Kyiv", ["Kyiv", "four forums"]) == pytest.approx(0.8)
    assert best_over(squad_em, None, ["four forums"]) == 0.0
    assert best_over(squad_em, "", ["four forums"]) == 0.0
    assert best_over(squad_f1, "four forums", []) == 0.0


def test_score_one_finds_the_rank_the_right_answer_and_the_exact_span() -> None:
    item = {"id": "q1", "kind": "date", "question": "When?", "answers": ["January 26, 1992"]}
    cites = [citation(1, "b.txt", EMBASSY), citation(2, "a.txt", JAPAN)]
    result = score_one(item, response(answer(2, "a.txt", JAPAN, "January 26, 1992"), cites), read_source)
    assert result == Scored(
        id="q1",
        kind="date",
        answerable=True,
        rank=2,
        answer_right=True,
        abstained=False,
        confidence=0.9,
        has_exact=True,
        exact_em=1.0,
        exact_f1=1.0,
        quotes_checked=4,  # two citations, the answer, its exact span
        quotes_bad=0,
    )


def test_score_one_of_a_partly_right_exact_span() -> None:
    item = {"question": "How many?", "answers": ["1,500 generators", "over 1,500"]}
    resp = response(answer(1, "b.txt", GENERATORS, "1,500"), [citation(1, "b.txt", GENERATORS)])
    result = score_one(item, resp, read_source)
    assert (result.exact_em, result.exact_f1) == (0.0, pytest.approx(2 / 3))
    assert result.kind == "unknown" and result.id is None


@pytest.mark.parametrize("exact", ["missing", None, {"text": "", "start": 0, "end": 0}])
def test_score_one_without_an_exact_span_scores_zero(exact: Any) -> None:
    item = {"question": "When?", "answers": ["January 26, 1992"]}
    ans = answer(1, "a.txt", JAPAN) | ({} if exact == "missing" else {"exact": exact})
    result = score_one(item, response(ans, [citation(1, "a.txt", JAPAN)]), read_source)
    assert (result.has_exact, result.exact_em, result.exact_f1, result.answer_right) == (False, 0.0, 0.0, True)
    assert result.quotes_bad == 0


def test_score_one_reads_an_exact_span_without_a_source_from_the_answers_source() -> None:
    item = {"question": "When?", "answers": ["1992"]}
    ans = answer(1, "a.txt", JAPAN, "January 26, 1992")
    del ans["exact"]["source"]  # the response contract: {"text", "start", "end"}
    assert score_one(item, response(ans, []), read_source).quotes_bad == 0
    ans["exact"]["start"] += 1
    assert score_one(item, response(ans, []), read_source).quotes_bad == 1


def test_score_one_flags_quotes_that_are_not_in_the_source() -> None:
    item = {"question": "How many forums?", "answers": ["four forums"]}
    cites = [
        citation(1, "a.txt", FORUMS, shift=1),  # text not at its offsets
        citation(2, "a.txt", FORUMS, mark=(0, len(FORUMS) + 5)),  # highlight runs past the passage
        citation(3, "a.txt", FORUMS) | {"source": "gone.txt"},  # source unreadable
    ]
    result = score_one(item, response(None, cites, confidence=0.1), read_source)
    assert (result.quotes_checked, result.quotes_bad) == (3, 3)
    assert result.abstained is True
    assert result.answer_right is False
    assert result.rank == 1  # the text is still the passage's text


def test_score_one_of_an_unanswerable_question() -> None:
    item = {"question": "Who won the cup?", "kind": "unanswerable", "answers": []}
    resp = response(answer(1, "a.txt", JAPAN, "1992"), [citation(1, "a.txt", JAPAN)])
    result = score_one(item, resp, read_source)
    assert result.answerable is False
    assert result.rank is None
    assert result.answer_right is False
    assert result.exact_f1 == 0.0


def test_score_one_only_looks_at_the_first_ten_citations() -> None:
    item = {"question": "q", "answers": ["four forums"]}
    cites = [citation(i, "b.txt", EMBASSY) for i in range(1, 11)] + [citation(11, "a.txt", FORUMS)]
    assert score_one(item, response(None, cites), read_source).rank is None


def scored(kind: str, rank: int | None, right: bool, **changes: Any) -> Scored:
    base = Scored(None, kind, True, rank, right, False, 0.9, True, float(right), float(right), 1, 0)
    return replace(base, **changes)


def test_reliability_and_the_expected_calibration_error() -> None:
    results = [
        scored("x", 1, True, confidence=0.95),
        scored("x", 1, False, confidence=1.0),  # 1.0 falls in the last bin
        scored("x", 1, False, confidence=0.15),
        scored("x", 1, True, confidence=0.19),
        scored("x", None, False, confidence=0.5, abstained=True),  # abstained: not counted
        scored("none", None, False, confidence=0.3, answerable=False),  # an answered unanswerable one is wrong
    ]
    bins = reliability(results)
    assert [(b.bin, b.n) for b in bins] == [(1, 2), (3, 1), (9, 2)]
    assert bins[2].mean_confidence == pytest.approx(0.975) and bins[2].share_right == 0.5
    ece = (2 * abs(0.17 - 0.5) + 1 * abs(0.3 - 0) + 2 * abs(0.975 - 0.5)) / 5
    assert expected_calibration_error(bins) == pytest.approx(ece)
    assert calibration(results) == {
        "answered": 5,
        "ece": round(ece, 3),
        "accuracy_when_answered": 0.4,
        "mean_confidence": round((0.95 + 1.0 + 0.15 + 0.19 + 0.3) / 5, 3),
    }
    assert bins[0].to_dict() == {"bin": 1, "n": 2, "mean_confidence": 0.17, "share_right": 0.5}


def test_a_perfectly_calibrated_set_has_no_calibration_error() -> None:
    bins = [Bin(8, 10, 0.8, 0.8), Bin(2, 5, 0.2, 0.2)]
    assert expected_calibration_error(bins) == pytest.approx(0.0)
    assert math.isnan(expected_calibration_error([]))


def test_summarize_computes_metrics_per_group() -> None:
    results = [
        scored("date", 1, True),
        scored("date", 3, False, has_exact=False),
        scored("numeric", None, False, abstained=True, exact_em=0.0, exact_f1=0.0, has_exact=False),
        scored("crosslingual", 1, True),
        scored("none", None, False, abstained=True, answerable=False),
        scored("none", 2, False, answerable=False, quotes_bad=1),
    ]
    table = summarize(results)
    assert list(table) == ["overall", "crosslingual", "date", "numeric", "unanswerable", "quotes", "calibration"]
    assert table["overall"] == {
        "n": 3,
        "R@1": 0.333,
        "R@5": 0.667,
        "MRR@10": round((1 + 1 / 3) / 3, 3),
        "answer_acc": 0.333,
        "false_abstained": 0.333,
        "exact_em": 0.333,
        "exact_f1": 0.333,
        "has_exact": 0.333,
    }
    assert table["date"]["n"] == 2
    assert table["crosslingual"]["R@1"] == table["crosslingual"]["exact_em"] == 1.0
    assert table["unanswerable"] == {"n": 2, "abstained": 0.5}
    assert table["quotes"] == {"checked": 6, "bad": 1}
    assert table["calibration"]["answered"] == 4
    text = format_table(table)
    assert text.startswith("| group | n | R@1 | R@5 | MRR@10 | answer acc | false abst. | exact EM | exact F1 |\n")
    assert "| overall | 3 | 0.333 | 0.667 | 0.444 | 0.333 | 0.333 | 0.333 | 0.333 |" in text
    assert "| unanswerable |" not in text
    assert "unanswerable abstained: 0.500 (2 questions)" in text
    assert "exact quotes: 6 checked, 1 bad" in text
    assert "calibration (4 answered): ECE " in text


def test_summarize_without_unanswerable_or_answered_questions() -> None:
    table = summarize([scored("date", 1, True, abstained=True)])
    assert set(table) == {"overall", "date", "quotes"}
    text = format_table(table)
    assert "unanswerable abstained: nan (0 questions)" in text
    assert "calibration: no response answered" in text


def write_case(root: Path) -> tuple[Path, Path, Path]:
    """A question file, its responses and their corpus: right and wrong answers, abstentions on both kinds, exact
    spans right, partly right, wrong, broken and absent, broken quotes and highlights, confidences in 6 bins."""
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in SOURCES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    cases = [
        ("lookup", ["January 26, 1992"], response(answer(1, "a.txt", JAPAN, "January 26, 1992"), [
            citation(1, "a.txt", JAPAN)], 0.92)),
        ("numeric", ["1,500 generators"], response(answer(2, "b.txt", GENERATORS, "1,500"), [
            citation(1, "a.txt", FORUMS), citation(2, "b.txt", GENERATORS)], 0.75)),
        ("paraphrase", ["four forums"], response(answer(1, "b.txt", EMBASSY, "1993", exact_shift=1), [
            citation(1, "b.txt", EMBASSY), citation(2, "a.txt", FORUMS)], 0.55)),
        ("lookup", ["in 2014"], response(None, [citation(1, "a.txt", AID)], 0.2)),
        ("unanswerable", [], response(None, [citation(1, "b.txt", EMBASSY)], 0.1)),
        ("unanswerable", [], response(answer(1, "b.txt", EMBASSY, "1993"), [citation(1, "b.txt", EMBASSY)], 0.85)),
        ("crosslingual", ["January 26, 1992"], response(answer(1, "a.txt", JAPAN), [
            citation(1, "a.txt", JAPAN)], 0.65)),
        ("numeric", ["1993"], response(answer(1, "b.txt", EMBASSY) | {"exact": None}, [
            citation(1, "b.txt", EMBASSY, shift=1), citation(2, "b.txt", EMBASSY)], 0.35) | {"note": "read as: 1993"}),
        ("typo", ["four forums"], response(answer(1, "a.txt", FORUMS, "four forums in Kyiv"), [
            citation(1, "a.txt", FORUMS, mark=(3, 200))], 1.0)),
        ("lookup", ["Japan’s aid", "aid followed"], response(answer(2, "a.txt", AID, "Japan’s aid followed"), [
            citation(1, "a.txt", JAPAN), citation(2, "a.txt", AID)], 0.45)),
    ]  # fmt: skip
    questions, responses = root / "q.jsonl", root / "r.jsonl"
    items = [{"id": f"q{i}", "kind": k, "question": "?", "answers": a} for i, (k, a, _) in enumerate(cases)]
    questions.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    responses.write_text("".join(json.dumps(r) + "\n" for _, _, r in cases), encoding="utf-8")
    return questions, responses, corpus


SCORER_KEYS = {"r1": "R@1", "r5": "R@5", "mrr": "MRR@10", "ans": "answer_acc", "false_abstain": "false_abstained"}


def in_scorer_terms(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """`summarize`'s table with score.py's group and metric names."""
    names = {"overall": "all_answerable"}
    back = {ours: theirs for theirs, ours in SCORER_KEYS.items()}
    return {names.get(g, g): {back.get(k, k): v for k, v in m.items()} for g, m in table.items()}


def test_the_figures_agree_with_the_independent_scorer(tmp_path: Path) -> None:
    if not SCORER.is_file():
        pytest.skip(f"{SCORER} is not there")
    questions, responses, corpus = write_case(tmp_path)
    done = subprocess.run(
        [sys.executable, str(SCORER), str(questions), str(responses), str(corpus), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    theirs = json.loads(done.stdout)
    theirs["quotes"].pop("examples")
    items = read_questions(questions)
    lines = [json.loads(line) for line in responses.read_text(encoding="utf-8").splitlines()]
    pairs = zip(items, lines, strict=True)
    results = [score_one(q, r, lambda s: read_document(corpus, corpus / s).text) for q, r in pairs]
    ours = in_scorer_terms(summarize(results))
    assert set(ours) == set(theirs)
    for group, figures in theirs.items():
        assert ours[group] == figures, group  # both rounded to 3 decimals
    assert len(reliability(results)) >= 5
    assert theirs["quotes"]["bad"] > 0
    assert 0 < theirs["all_answerable"]["exact_f1"] < 1


def test_read_questions_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "One?", "answers": ["1"]}\n\n   \n{"question": "Two?", "kind": "x"}\n')
    assert [q["question"] for q in read_questions(path)] == ["One?", "Two?"]


@pytest.mark.parametrize(
    "bad", ["not json", '{"answers": ["no question"]}', "[1, 2]", '"text"', "42", '{"question": 1']
)
def test_read_questions_names_the_bad_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(f'{{"question": "fine"}}\n\n{bad}\n{{"question": "also fine"}}\n')
    with pytest.raises(BadRequest, match=r"q\.jsonl:3 "):
        read_questions(path)


def test_read_questions_of_a_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="cannot read"):
        read_questions(tmp_path / "missing.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadRequest, match="cannot read"):
        read_questions(tmp_path / "bin.jsonl")
