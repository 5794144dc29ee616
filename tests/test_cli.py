"""The `rag` command, run in-process with click's CliRunner on a copy of part of the bundled corpus."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rag import embedding
from rag.answer import Response
from rag.cli import format_response, main
from rag.config import FIELDS
from rag.embedding import Encoder
from rag.indexing import store

from .helpers import CORPUS, reuse, small_index

pytestmark = pytest.mark.slow  # the real model

GENERATORS = "How many generators did Japan hand over to Ukraine last year?"
FORUMS = "How many forums has the New Europe Center held?"
RESPONSE_KEYS = {"question", "abstained", "confidence", "answer", "citations"}


@dataclass
class Workspace:
    corpus: Path
    index: Path
    first_build: Result | None = None  # what the first `rag index` printed

    def args(self, *rest: str) -> list[str]:
        return ["--corpus", str(self.corpus), "--index", str(self.index), *rest]


def clean_env() -> dict[str, str | None]:
    """No RAG_* variable from the calling shell leaks into a test run."""
    return {f"RAG_{name.upper()}": None for name, _, _ in FIELDS}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={**clean_env(), **(env or {})}, catch_exceptions=True)


def assert_one_line_error(result: Result, *, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Iterator[Workspace]:
    """Two documents of the bundled corpus, indexed once by `rag index` (the result is kept for a test)."""
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("003_7f8c229d719f695d.txt", "004_33d5d0d9e9c87589.txt"):
        shutil.copy(CORPUS / name, corpus / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedding.Encoder, "_load", reuse(encoder))  # the real model, loaded once per session
        space = Workspace(corpus, root / "index")
        space.first_build = run(*space.args("index"))
        yield space


@pytest.fixture(autouse=True)
def shared_model(monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> None:
    monkeypatch.setattr(embedding.Encoder, "_load", reuse(encoder))


def test_index_prints_a_summary_of_what_was_added(workspace: Workspace) -> None:
    result = workspace.first_build
    assert result is not None
    assert result.exit_code == 0, result.output
    assert "2 added" in result.stdout
    assert "chunks embedded" in result.stdout


def test_index_again_embeds_nothing(workspace: Workspace) -> None:
    result = run(*workspace.args("index"))
    assert result.exit_code == 0, result.output
    assert "2 unchanged" in result.stdout
    assert " 0 chunks embedded" in result.stdout


def test_index_json_is_the_build_report(workspace: Workspace) -> None:
    result = run(*workspace.args("index", "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["chunks_embedded"] == 0
    assert sorted(report["unchanged"]) == sorted(p.name for p in workspace.corpus.iterdir())
    assert report["added"] == report["changed"] == report["removed"] == report["skipped"] == []


def test_ask_json_prints_the_response(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", GENERATORS, "--json"))
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert set(response) >= RESPONSE_KEYS
    assert response["question"] == GENERATORS
    assert "1,500 generators" in response["answer"]["text"]
    text = (workspace.corpus / response["answer"]["source"]).read_text(encoding="utf-8")
    assert text[response["answer"]["start"] : response["answer"]["end"]] == response["answer"]["text"]


def test_ask_prints_the_quote_and_numbered_passages(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", FORUMS))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    if lines[0].startswith("Answer: "):  # the exact answer first, then the quoted sentence
        lines = lines[1:]
    assert lines[0].startswith("“") and "four forums" in lines[0]
    assert "[1] " in result.stdout
    assert ">>" in result.stdout and "<<" in result.stdout


def test_ask_top_k_sets_the_number_of_passages(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", FORUMS, "--json", "--top-k", "2"))
    assert result.exit_code == 0, result.output
    assert [c["n"] for c in json.loads(result.stdout)["citations"]] == [1, 2]


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001, "nul\x00byte"], ids=["empty", "blank", "long", "nul"])
def test_ask_a_bad_question_is_one_line_and_exit_2(workspace: Workspace, question: str) -> None:
    line = assert_one_line_error(run(*workspace.args("ask", question)))
    assert "question" in line


@pytest.mark.parametrize("top_k", ["0", "51", "-1"])
def test_ask_a_bad_top_k_is_one_line_and_exit_2(workspace: Workspace, top_k: str) -> None:
    line = assert_one_line_error(run(*workspace.args("ask", FORUMS, "--top-k", top_k)))
    assert "top_k" in line


def test_ask_without_a_question_is_a_usage_error(workspace: Workspace) -> None:
    result = run(*workspace.args("ask"))
    assert result.exit_code == 2
    assert "QUESTION" in result.stderr
    assert "Traceback" not in result.output


def test_ask_file_prints_one_json_line_per_question(workspace: Workspace, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    items = [{"question": GENERATORS}, {"question": ""}, {"question": FORUMS, "top_k": 99}, {"question": FORUMS}]
    questions.write_text("\n".join(json.dumps(i) for i in items) + "\n\n")
    result = run(*workspace.args("ask", "--file", str(questions)))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert set(lines[0]) >= RESPONSE_KEYS and set(lines[3]) >= RESPONSE_KEYS
    assert lines[1] == {"question": "", "error": {"code": "bad_question", "message": lines[1]["error"]["message"]}}
    assert lines[2]["error"]["code"] == "bad_request"
    assert "four forums" in lines[3]["answer"]["text"]


def test_ask_file_reads_a_follow_up_with_its_history(workspace: Workspace, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    items = [{"question": "How many were there?", "history": [FORUMS]}, {"question": "How many were there?"}]
    questions.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    result = run(*workspace.args("ask", "--file", str(questions)))
    assert result.exit_code == 0, result.output
    follow_up, alone = (json.loads(line) for line in result.stdout.splitlines())
    assert follow_up["context"] == FORUMS and alone["context"] is None
    assert "forums" in follow_up["citations"][0]["text"]


def test_ask_file_reports_a_question_with_a_lone_surrogate_as_an_error_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "What \\ud800 is this?"}\n' + json.dumps({"question": FORUMS}) + "\n")
    result = run(*workspace.args("ask", "--file", str(questions)))
    assert result.exit_code == 0, repr(result.exception)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["error"]["code"] == "bad_question"


def test_ask_file_with_a_broken_line_names_it(workspace: Workspace, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "fine"}\n{"question": \n')
    line = assert_one_line_error(run(*workspace.args("ask", "--file", str(questions))))
    assert "questions.jsonl:2" in line


def test_eval_json_has_metrics_and_per_question_results(workspace: Workspace, tmp_path: Path) -> None:
    questions = tmp_path / "set.jsonl"
    items = [
        {"id": "g", "kind": "numeric", "question": GENERATORS, "answers": ["1,500 generators"]},
        {"id": "f", "kind": "numeric", "question": FORUMS, "answers": ["four forums"]},
        {"id": "n", "kind": "unanswerable", "question": "What is the capital of Peru?", "answers": []},
    ]
    questions.write_text("".join(json.dumps(i) + "\n" for i in items))
    result = run(*workspace.args("eval", str(questions), "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"metrics", "reliability", "questions"}
    metrics = data["metrics"]
    assert list(metrics) == ["overall", "numeric", "unanswerable", "quotes", "calibration"]
    assert metrics["overall"]["n"] == 2
    assert metrics["overall"]["answer_acc"] == 1.0
    assert metrics["overall"]["false_abstained"] == 0.0
    assert set(metrics["overall"]) >= {"R@1", "R@5", "MRR@10", "exact_em", "exact_f1", "has_exact"}
    assert metrics["quotes"]["checked"] > 0 and metrics["quotes"]["bad"] == 0
    assert metrics["unanswerable"] == {"n": 1, "abstained": 1.0}
    assert metrics["calibration"]["answered"] == 2
    assert sum(b["n"] for b in data["reliability"]) == 2
    assert set(data["reliability"][0]) == {"bin", "n", "mean_confidence", "share_right"}
    assert [q["id"] for q in data["questions"]] == ["g", "f", "n"]
    assert {"rank", "answer_right", "confidence", "exact_em", "exact_f1", "quotes_bad"} <= set(data["questions"][0])


def test_eval_prints_a_table(workspace: Workspace, tmp_path: Path) -> None:
    questions = tmp_path / "set.jsonl"
    questions.write_text(json.dumps({"question": FORUMS, "answers": ["four forums"]}) + "\n")
    result = run(*workspace.args("eval", str(questions)))
    assert result.exit_code == 0, result.output
    header = "| group | n | R@1 | R@5 | MRR@10 | answer acc | false abst. | exact EM | exact F1 |"
    assert result.stdout.startswith(header + "\n")
    assert "| overall | 1 |" in result.stdout
    assert "\nexact quotes: " in result.stdout and " 0 bad" in result.stdout
    assert "\ncalibration (1 answered): ECE " in result.stdout


def test_eval_of_a_missing_file_is_a_usage_error(workspace: Workspace, tmp_path: Path) -> None:
    result = run(*workspace.args("eval", str(tmp_path / "nothing.jsonl")))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


SENTENCE = "Japan established relations with Ukraine on January 26, 1992."


def printed_response(**changes: Any) -> dict[str, Any]:
    """A response as `rag ask --json` gives it, without the newer `exact` and `note` keys unless given."""
    passage = {"n": 1, "source": "a.txt", "title": "A", "chunk_id": "a:0", "text": SENTENCE, "start": 10}
    passage |= {"end": 10 + len(SENTENCE), "score": 0.8, "highlight": {"start": 10, "end": 10 + len(SENTENCE)}}
    answer = {"text": SENTENCE, "source": "a.txt", "start": 10, "end": 10 + len(SENTENCE), "citation": 1}
    base = {"question": "When?", "abstained": False, "confidence": 0.81, "answer": answer, "citations": [passage]}
    return base | changes


def test_format_response_of_an_old_response_starts_with_the_quote() -> None:
    lines = format_response(Response.from_dict(printed_response())).splitlines()
    assert lines[0] == f"“{SENTENCE}”"
    assert lines[1] == "   [1] a.txt, characters 10-71 (confidence 0.81)"
    assert lines[3].startswith("[1] A (a.txt:10-71, score 0.80)")
    assert ">>Japan" in lines[4]


def test_format_response_prints_the_exact_answer_first_and_the_note_before_the_passages() -> None:
    response = printed_response(note="Read as a question about Ukraine.")
    response["answer"]["exact"] = {"text": "January 26, 1992", "start": 54, "end": 70}
    lines = format_response(Response.from_dict(response)).splitlines()
    assert lines[:2] == ["Answer: January 26, 1992", f"“{SENTENCE}”"]
    assert lines[3] == "Note: Read as a question about Ukraine."
    assert lines[5].startswith("[1] A ")


def test_format_response_of_an_abstention_with_a_null_exact_and_note() -> None:
    text = format_response(Response.from_dict(printed_response(abstained=True, answer=None, note=None)))
    assert text.splitlines()[0] == "I could not find this in the documents (confidence 0.81). The closest passages:"
    assert "Answer:" not in text and "Note:" not in text
    response = printed_response(note=None)
    response["answer"]["exact"] = None
    assert format_response(Response.from_dict(response)) == format_response(Response.from_dict(printed_response()))


def test_an_abstention_prints_its_confidence(workspace: Workspace) -> None:
    result = run(*workspace.args("ask", "How do I bake sourdough bread at home?"))
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(r"I could not find this in the documents \(confidence 0\.\d\d\)\. The closest passages:", first)
    none = format_response(
        Response.from_dict(printed_response(abstained=True, answer=None, confidence=0.0, citations=[]))
    )
    assert none == "I could not find this in the documents (confidence 0.00)."  # no heading over no passages


@pytest.mark.parametrize("command", ["index", "ask"])
def test_a_missing_corpus_folder_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    args = ["--corpus", str(tmp_path / "no-such-folder"), "--index", str(tmp_path / "index"), command]
    line = assert_one_line_error(run(*args, *(["When?"] if command == "ask" else [])))
    assert "no-such-folder" in line


def test_a_bad_environment_value_is_one_line_and_exit_2(workspace: Workspace) -> None:
    line = assert_one_line_error(run(*workspace.args("ask", FORUMS), env={"RAG_TOP_K": "many"}))
    assert "many" in line


def test_rag_corpus_and_rag_index_are_honoured(workspace: Workspace) -> None:
    env = {"RAG_CORPUS": str(workspace.corpus), "RAG_INDEX": str(workspace.index)}
    result = run("index", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks_embedded"] == 0  # the workspace's index, already up to date
    result = run("ask", FORUMS, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert "four forums" in json.loads(result.stdout)["answer"]["text"]


def test_options_win_over_the_environment(workspace: Workspace, tmp_path: Path) -> None:
    env = {"RAG_CORPUS": str(tmp_path / "elsewhere"), "RAG_INDEX": str(tmp_path / "elsewhere-index")}
    result = run(*workspace.args("index", "--json"), env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["chunks_embedded"] == 0


def test_help_of_the_group_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("index", "ask", "eval"):
        assert command in result.stdout


@pytest.mark.parametrize("command", sorted(main.commands))  # type: ignore[attr-defined]
def test_help_works_for_each_command(command: str) -> None:
    for flag in ("--help", "-h"):
        result = run(command, flag)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage:")


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert "version" in result.stdout


# ---------------------------------------------------------------------------------------------------------------
# rag add, rag remove: the corpus's writes (`rag/corpus.py`, as the server's uploads), then an update of those paths

FERRY = "Ferry Notes\n\nThe night ferry to Hokkaido leaves Oarai at 19:45. The crossing takes eighteen hours.\n"


def small_space(root: Path, encoder: Encoder) -> Workspace:
    settings = small_index(root, encoder)
    return Workspace(settings.corpus, settings.index)


def indexed(space: Workspace) -> set[str]:
    return {d["source"] for d in store.read_manifest(space.index)["documents"]}


def test_add_copies_files_into_the_corpus_and_indexes_only_them(tmp_path: Path, encoder: Encoder) -> None:
    space = small_space(tmp_path, encoder)
    before = indexed(space)
    (tmp_path / "new").mkdir()
    ferry, notes = tmp_path / "new" / "ferry.txt", tmp_path / "new" / "notes.md"
    ferry.write_text(FERRY, encoding="utf-8")
    notes.write_text("# Kettles\n\nA cast-iron kettle is called a tetsubin.\n", encoding="utf-8")
    result = run(*space.args("add", str(ferry), str(notes), "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(report["added"]) == ["ferry.txt", "notes.md"] and report["removed"] == report["changed"] == []
    assert (space.corpus / "ferry.txt").read_text(encoding="utf-8") == FERRY
    assert indexed(space) == before | {"ferry.txt", "notes.md"}
    answer = json.loads(run(*space.args("ask", "When does the night ferry leave?", "--json")).stdout)["answer"]
    assert answer and answer["source"] == "ferry.txt"


def test_add_refuses_a_taken_name_in_one_line_and_indexes_the_files_before_it(tmp_path: Path, encoder: Encoder) -> None:
    space = small_space(tmp_path, encoder)
    (tmp_path / "new").mkdir()
    ferry, tea = tmp_path / "new" / "ferry.txt", tmp_path / "new" / "tea.txt"
    ferry.write_text(FERRY, encoding="utf-8")
    tea.write_text("Tea\n\nAnother text under a name the corpus has.\n", encoding="utf-8")
    result = run(*space.args("add", str(ferry), str(tea), "--json"))  # --json: no progress bars on stderr
    assert "tea.txt is already in the corpus" in assert_one_line_error(result)
    assert json.loads(result.stdout)["added"] == ["ferry.txt"]
    assert "ferry.txt" in indexed(space) and "Green tea" in (space.corpus / "tea.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "content", "says"), [("tool.exe", b"MZ", "only "), ("empty.txt", b"  \n", "")])
def test_add_refuses_a_file_no_reader_takes_and_changes_nothing(
    tmp_path: Path, encoder: Encoder, name: str, content: bytes, says: str
) -> None:
    space = small_space(tmp_path, encoder)
    before = indexed(space)
    (tmp_path / name).write_bytes(content)
    assert f"{name}: {says}" in assert_one_line_error(run(*space.args("add", str(tmp_path / name))))
    assert not (space.corpus / name).exists() and indexed(space) == before


def test_remove_deletes_the_file_and_drops_the_document(tmp_path: Path, encoder: Encoder) -> None:
    space = small_space(tmp_path, encoder)
    before = indexed(space)
    result = run(*space.args("remove", "trains/shinkansen.txt", "--json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == ["trains/shinkansen.txt"]
    assert not (space.corpus / "trains" / "shinkansen.txt").exists()
    assert indexed(space) == before - {"trains/shinkansen.txt"}
    plain = run(*space.args("remove", "tea.txt"))
    assert plain.exit_code == 0, plain.output
    assert re.match(r"0 added, 0 changed, 1 removed, ", plain.stdout)


@pytest.mark.parametrize(("source", "says"), [("nope.txt", "is not in the index"), ("../tea.txt", "not a document")])
def test_remove_refuses_what_is_not_a_document_in_one_line(
    tmp_path: Path, encoder: Encoder, source: str, says: str
) -> None:
    space = small_space(tmp_path, encoder)
    before = indexed(space)
    assert says in assert_one_line_error(run(*space.args("remove", source)))
    assert indexed(space) == before and (space.corpus / "tea.txt").exists()
