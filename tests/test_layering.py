"""The core imports no edge library: importing it in a fresh interpreter leaves fastapi, jinja2 and click out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EDGE_LIBRARIES = ("fastapi", "starlette", "jinja2", "click", "uvicorn")


@pytest.mark.parametrize("module", ["rag", "rag.retrieval", "rag.answer", "rag.pipeline"])
def test_the_core_does_not_import_edge_libraries(module: str) -> None:
    code = f"import json, sys, {module}\nprint(json.dumps([m for m in {EDGE_LIBRARIES!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_core_does_not_load_the_model_on_import() -> None:
    code = "import json, sys, rag.pipeline\nprint(json.dumps('sentence_transformers' in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False
