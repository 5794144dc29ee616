"""The README stays true: its settings table is the one generated from `rag/config.py`, its CLI commands exist,
and the test command it names is the one CI runs."""

from __future__ import annotations

import re

from click.testing import CliRunner

from rag.cli import main
from rag.config import settings_table
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_settings_table_is_generated_from_the_settings() -> None:
    table = re.search(r"<!-- settings-table.*?-->\n(.*?)<!-- /settings-table -->", README, re.S)
    assert table is not None
    assert table.group(1).strip() == settings_table()


def test_every_rag_command_in_the_readme_exists() -> None:
    commands = set(re.findall(r"rag (index|ask|eval|serve|\w+)\b", README)) & {"index", "ask", "eval", "serve"}
    assert commands == {"index", "ask", "eval", "serve"}
    for command in commands:
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0, result.output


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
