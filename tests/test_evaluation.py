"""Scoring responses: string matching rules, per-question results, the summary table, reading question files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from rag.errors import BadRequest
from rag.evaluation import format_table, holds, normalize, read_questions, score_one, summarize

SOURCES = {
    "a.txt": "Japan established diplomatic relations with Ukraine in 1992. Japan’s aid followed.",
    "b.txt": "The New Europe Center organised four forums.",
}


def read_source(source: str) -> str:
    return SOURCES[source]


def citation(n: int, source: str, phrase: str, *, shift: int = 0) -> dict[str, Any]:
    start = SOURCES[source].index(phrase)
    return {"n": n, "source": source, "start": start + shift, "end": start + len(phrase) + shift, "text": phrase}


def response(answer: dict[str, Any] | None, citations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"question": "q", "abstained": answer is None, "confidence": 0.9, "answer": answer, "citations": citations}


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
    ],
)
def test_holds(text: str | None, answers: list[str], expected: bool) -> None:
    assert holds(text, answers) is expected


def test_score_one_finds_the_rank_and_the_right_answer() -> None:
    item = {"id": "q1", "kind": "date", "question": "When?", "answers": ["1992"]}
    answer = {**citation(2, "a.txt", "Japan established diplomatic relations with Ukraine in 1992."), "citation": 2}
    resp = response(
        answer, [citation(1, "b.txt", "four forums"), citation(2, "a.txt", "relations with Ukraine in 1992")]
    )
    result = score_one(item, resp, read_source)
    assert result == {
        "id": "q1",
        "kind": "date",
        "answerable": True,
        "rank": 2,
        "answer_right": True,
        "abstained": False,
        "exact": True,
    }


def test_score_one_flags_a_quote_that_is_not_in_the_source() -> None:
    item = {"question": "How many forums?", "answers": ["four forums"]}
    resp = response(None, [citation(1, "b.txt", "four forums", shift=1)])
    result = score_one(item, resp, read_source)
    assert result["exact"] is False
    assert result["abstained"] is True
    assert result["answer_right"] is False
    assert result["kind"] == "unknown"
    assert result["id"] is None


def test_score_one_of_an_unanswerable_question() -> None:
    item = {"question": "Who won the cup?", "answers": []}
    result = score_one(item, response(None, [citation(1, "a.txt", "Japan")]), read_source)
    assert result["answerable"] is False
    assert result["rank"] is None


def test_score_one_only_looks_at_the_first_ten_citations() -> None:
    item = {"question": "q", "answers": ["four forums"]}
    cites = [citation(i, "a.txt", "Japan") for i in range(1, 11)] + [citation(11, "b.txt", "four forums")]
    assert score_one(item, response(None, cites), read_source)["rank"] is None


def result(kind: str, rank: int | None, right: bool, abstained: bool = False, answerable: bool = True) -> dict:
    return {
        "id": None,
        "kind": kind,
        "answerable": answerable,
        "rank": rank,
        "answer_right": right,
        "abstained": abstained,
        "exact": True,
    }


def test_summarize_computes_metrics_per_group() -> None:
    results = [
        result("date", 1, True),
        result("date", 3, False),
        result("numeric", None, False, abstained=True),
        result("crosslingual", 1, True),
        result("none", None, False, abstained=True, answerable=False),
        result("none", 2, False, abstained=False, answerable=False),
    ]
    table = summarize(results)
    assert list(table)[0] == "overall"
    assert list(table)[-1] == "abstention"
    assert set(table) == {"overall", "crosslingual", "date", "numeric", "abstention"}
    assert table["overall"] == {
        "n": 3,
        "R@1": 0.3333,
        "R@5": 0.6667,
        "MRR@10": round((1 + 1 / 3) / 3, 4),
        "answer_acc": 0.3333,
    }
    assert table["date"]["n"] == 2
    assert table["crosslingual"] == {"n": 1, "R@1": 1.0, "R@5": 1.0, "MRR@10": 1.0, "answer_acc": 1.0}
    assert table["abstention"] == {
        "n": 6,
        "unanswerable_abstained": 0.5,
        "answerable_answered": 0.75,
        "exact_quotes": 1.0,
    }
    text = format_table(table)
    assert "| overall | 3 | 0.33 | 0.67 |" in text
    assert "unanswerable abstained: 0.50" in text


def test_summarize_without_unanswerable_questions_reports_nan() -> None:
    table = summarize([result("date", 1, True)])
    assert math.isnan(table["abstention"]["unanswerable_abstained"])


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
