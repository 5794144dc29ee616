"""The layering of `rag/`: the core imports no edge library (importing it in a fresh interpreter leaves fastapi,
jinja2 and click out), no module imports another that imports it back, and no module grows past 300 lines."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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


RAG = Path(__file__).resolve().parent.parent / "rag"
# Modules longer than MAX_LINES today: to be split by the relayout of issue #10. No module may join them, and each
# leaves the list once it is split (the test fails on a name here that is no longer over the limit).
MAX_LINES = 300
OVER_300: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The rag modules `path` imports anywhere (inside functions too: an import there still closes a cycle, it only
    hides it until the call), relative imports resolved. Imports under `if TYPE_CHECKING:` never run: left out."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from . import store` imports the module store of the package; `from . import __version__` the package.
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {m for m in found if m in modules and m != name}


def _rag_files() -> list[Path]:
    return sorted(RAG.rglob("*.py"))


def test_no_import_cycle_among_rag_modules() -> None:
    modules = {_module_name(p) for p in _rag_files()}
    graph = {_module_name(p): _imports(p, modules) for p in _rag_files()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_grows_past_300_lines() -> None:
    lengths = {str(p.relative_to(RAG.parent)): len(p.read_text(encoding="utf-8").splitlines()) for p in _rag_files()}
    over = {name for name, n in lengths.items() if n > MAX_LINES}
    assert over - OVER_300 == set(), f"over {MAX_LINES} lines: split them rather than grow them"
    assert OVER_300 - over == set(), "no longer over the limit: take them out of OVER_300"


def test_the_cli_loads_no_heavy_library_on_import() -> None:
    """`rag --help` stays fast: the index's and the model's libraries load only in the commands that need them."""
    heavy = ("faiss", "bm25s", "scipy", "torch", "onnxruntime", "sentence_transformers", "fastapi", "uvicorn")
    code = f"import json, sys, rag.cli\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# The layers, top to bottom (../shared/STYLE.md): a module imports only from its own layer or the ones below it,
# imports inside functions included (`_imports`), so no import runs back up. The engine interface is two parts: the
# factory (`rag.engines`, which picks an engine) above the engines, and the types every engine implements
# (`rag.engines.base`) below them. A module belongs to the layer of its longest prefix listed here.
LAYERS = [
    ["rag", "rag.cli", "rag.server"],  # the edges, and the package's facade
    ["rag.pipeline", "rag.evaluation"],
    ["rag.indexing", "rag.indexing.builder", "rag.indexing.stale", "rag.indexing.updates", "rag.indexing.scan"],
    ["rag.answer", "rag.retrieval"],
    # the index on disk
    [
        "rag.indexing.store",
        "rag.indexing.lock",
        "rag.indexing.segmented",
        "rag.indexing.segments",
        "rag.indexing.index",
        "rag.indexing.live",
        "rag.indexing.texts",
        "rag.indexing.swap",
    ],
    ["rag.engines"],  # the engine interface: the factory
    [
        "rag.engines.local",
        "rag.engines.segment",
        "rag.engines.postings",
        "rag.engines.dense",
        "rag.engines.milvus",
        "rag.engines.milvus_records",
        "rag.engines.milvus_client",
    ],
    ["rag.engines.base"],  # the engine interface: the types
    ["rag.corpus"],  # the corpus folder's writes, for both edges (`rag add`, uploads): over the readers only
    [  # the ground
        "rag.text",
        "rag.readers",
        "rag.embedding",
        "rag.onnx_backend",
        "rag.onnx_graph",
        "rag.onnx_torch",
        "rag.config",
        "rag.engine_types",
        "rag.errors",
    ],
]
ENGINE_LIBRARIES = ("faiss", "bm25s", "pymilvus", "milvus_lite")
# The only use of an engine library outside the engines: bm25s's stop-word lists (data, no search code), which the
# word rules share with the local engine's BM25 so that both cut text into the same terms.
ENGINE_LIBRARY_USERS = {"rag.engines.local", "rag.engines.dense", "rag.engines.milvus"}
STOP_WORD_LISTS = {"rag.text.words": {"bm25s.stopwords"}}


def _layer(module: str) -> int:
    best, depth = -1, -1
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = rank, prefix.count(".")
    assert best >= 0, f"{module} is in no layer: add it to LAYERS"
    return best


def test_imports_only_go_down_the_layers() -> None:
    modules = {_module_name(p) for p in _rag_files()}
    upward = [
        f"{_module_name(p)} -> {target}"
        for p in _rag_files()
        for target in sorted(_imports(p, modules))
        if _layer(target) < _layer(_module_name(p))
    ]
    assert upward == [], "imports running back up the layers: " + "; ".join(upward)


def _external_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def test_only_the_engines_import_search_libraries() -> None:
    offenders = []
    for path in _rag_files():
        module = _module_name(path)
        if any(module == m or module.startswith(m + ".") or module.startswith(m + "_") for m in ENGINE_LIBRARY_USERS):
            continue
        used = {m for m in _external_imports(path) if m.split(".")[0] in ENGINE_LIBRARIES}
        if used - STOP_WORD_LISTS.get(module, set()):
            offenders.append(f"{module}: {sorted(used)}")
    assert offenders == [], "search libraries imported above rag/engines: " + "; ".join(offenders)
