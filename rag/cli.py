"""Edge: the `rag` command. Parses argv with click, calls the core (`pipeline`; `indexing`, `store`), prints.

Core errors (`RagError`) become one line on stderr and exit code 2; nothing a user types produces a traceback. The
core's reports (what `Assistant.open` does, warnings logged to the `rag` logger) are printed on stderr too.

`import rag.cli` loads click and light modules only (~0.1 s): the index's libraries (FAISS, bm25s, SciPy: ~0.8 s)
and the web stack are imported by the commands that use them, and the model's runtime (ONNX Runtime, or PyTorch)
when the encoder first runs, so `rag --help` pays for none of them (tests/test_layering.py keeps it so).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .config import Settings
from .errors import RagError
from .evaluation import format_table, read_questions, reliability, score_one, summarize
from .terminal import echo, echo_json, format_response, friendly_errors
from .terminal import fail as _fail
from .terminal import say as _say

if TYPE_CHECKING:
    from .indexing.index import Index
    from .pipeline import Assistant


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus", type=click.Path(path_type=Path), help="Folder of documents [env RAG_CORPUS; corpus].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [env RAG_INDEX; index].")
@click.option("--model", help="Sentence-transformers model folder or name [env RAG_MODEL; bundled MiniLM].")
@click.version_option(package_name="rag")
@click.pass_context
@friendly_errors
def main(ctx: click.Context, corpus: Path | None, index_dir: Path | None, model: str | None) -> None:
    """Ask questions about a folder of documents; answers are quoted from them, with citations."""
    ctx.obj = Settings.from_env(corpus=corpus, index=index_dir, model=model)
    _print_core_logs()


class _Say(logging.Handler):
    """The `rag` logger's records (the core's warnings) as plain lines on stderr, like every other message."""

    def emit(self, record: logging.LogRecord) -> None:
        _say(self.format(record))


def _print_core_logs() -> None:
    log = logging.getLogger("rag")
    if not any(isinstance(h, _Say) for h in log.handlers):  # once per process: tests invoke `main` many times
        log.addHandler(_Say())
        logging.getLogger("rag.model").setLevel(logging.INFO)  # the model's one-time preparation shows too


def _assistant(settings: Settings, quiet: bool = False, repair: bool = False) -> Assistant:
    # Lazily: the pipeline imports bm25s and SciPy (~0.8 s), and an engine's library as the index opens; the
    # encoder loads its runtime on first use.
    from .pipeline import Assistant

    return Assistant.open(settings, progress=not quiet, repair=repair, say=_say)


@main.command()
@click.option("--full", is_flag=True, help="Rebuild everything instead of only what changed.")
@click.option(
    "--compact",
    is_flag=True,
    help="After the update, join the index's segments into one (engine local; embeds nothing).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option(
    "--shard",
    metavar="I/N",
    help="Index only share I of N of the documents into the shared engine (engine milvus; docs/scaling.md).",
)
@click.option(
    "--merge",
    "merge_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Join the index folders of every shard into --index, embedding nothing (repeat it for each shard).",
)
@click.pass_obj
@friendly_errors
def index(
    settings: Settings, full: bool, compact: bool, as_json: bool, shard: str | None, merge_dirs: tuple[Path, ...]
) -> None:
    """Build or update the index from the corpus (embeds only added or changed documents)."""
    from . import indexing  # lazily, as in `_assistant`
    from .readers.sandbox import pool_for

    if merge_dirs:
        from .indexing.merge import merge

        merged = merge(settings, list(merge_dirs))
        echo(f"merged {len(merge_dirs)} shards: {len(merged.documents)} documents, {merged.chunk_count} chunks")
        return
    share = indexing.parse_shard(shard) if shard is not None else None
    pool_for(settings).warm()  # the reader processes start while the model loads
    encoder = indexing.encoder_for(settings)
    built, report = indexing.build(settings, encoder, full=full, progress=not as_json, shard=share)
    for line in report.skip_lines():
        _say(line)
    echo_json(report.to_dict()) if as_json else echo(report.summary())
    if compact and isinstance(built, indexing.SegmentedIndex) and (len(built.stored) > 1 or built.dead[0]):
        indexing.merge_segments(settings, built, everything=True)
        if not as_json:
            echo(f"compacted: {len(built.stored)} segments joined into one, without removed documents")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.pass_obj
@friendly_errors
def add(settings: Settings, files: tuple[Path, ...], as_json: bool) -> None:
    """Copy FILES into the corpus (each under its own name, once its reader read it), then update the index."""
    from .corpus import Corpus  # lazily, as in `_assistant`

    corpus, sources = Corpus(settings), []
    try:
        for file in files:
            sources.append(corpus.add(file.name, file.read_bytes(), settings.max_file_bytes))
    except RagError:  # the files copied before a refused one are indexed all the same
        _update_index(settings, sources, as_json)
        raise
    _update_index(settings, sources, as_json)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.pass_obj
@friendly_errors
def remove(settings: Settings, sources: tuple[str, ...], as_json: bool) -> None:
    """Delete the corpus files of documents SOURCES (paths as citations name them), then update the index."""
    from . import indexing  # lazily, as in `_assistant`
    from .corpus import Corpus

    index, removed = indexing.load(settings, indexing.encoder_for(settings)), []
    corpus = Corpus(settings, hint="a citation names a document by its path in the corpus")
    try:
        for source in sources:
            corpus.remove(source, index)
            removed.append(source)
    except RagError:  # the documents removed before a refused one leave the index all the same
        _update_index(settings, removed, as_json, index)
        raise
    _update_index(settings, removed, as_json, index)


def _update_index(settings: Settings, sources: list[str], as_json: bool, loaded: Index | None = None) -> None:
    """Update the index with corpus paths `sources` (`rag add`, `rag remove`; none: nothing to do) and print the
    build report. `loaded`: the index on disk, when the command loaded it already."""
    from . import indexing

    if not sources:
        return
    encoder = indexing.encoder_for(settings)  # `rag index`'s: at the precision the index was built with
    _, report = indexing.build(settings, encoder, progress=not as_json, loaded=loaded, paths=sources)
    for line in report.skip_lines():
        _say(line)
    echo_json(report.to_dict()) if as_json else echo(report.summary())


@main.command()
@click.argument("question", required=False)
@click.option(
    "--file",
    "questions_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help='A JSON-lines file of {"question": ...} objects (optional "history": earlier questions, oldest first; '
    '"top_k"); prints one JSON response a line.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the response as JSON.")
@click.option("--top-k", type=int, help="Passages to cite (default: RAG_TOP_K or 5).")
@click.pass_obj
@friendly_errors
def ask(
    settings: Settings, question: str | None, questions_file: Path | None, as_json: bool, top_k: int | None
) -> None:
    """Answer QUESTION from the documents, quoting the passage it comes from."""
    if (question is None) == (questions_file is None):
        raise click.UsageError("give either a QUESTION or --file QUESTIONS.jsonl")
    items = read_questions(questions_file) if questions_file else None
    bot = _assistant(settings, quiet=as_json or questions_file is not None)
    if question is not None:
        response = bot.ask(question, top_k=top_k)
        echo_json(response.to_dict(), indent=1) if as_json else echo(format_response(response))
        return
    for item in items or []:  # not None: exactly one of the two was given
        try:
            line = bot.ask(item["question"], top_k=item.get("top_k", top_k), history=item.get("history")).to_dict()
            echo_json(line)
        except RagError as exc:  # ASCII escapes: the question may hold text that cannot be printed (lone surrogates)
            line = {"question": item["question"], "error": {"code": exc.code, "message": str(exc)}}
            click.echo(json.dumps(line))


@main.command(name="eval")
@click.argument("questions_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics (and each question's result) as JSON.")
@click.option("--top-k", type=int, default=10, show_default=True, help="Passages retrieved per question.")
@click.pass_obj
@friendly_errors
def evaluate(settings: Settings, questions_file: Path, as_json: bool, top_k: int) -> None:
    """Score the answers to a question set (R@1, R@5, MRR@10, answer accuracy, abstention, exact span EM/F1,
    exact quotes, calibration), by the rules of the eval README."""
    items = read_questions(questions_file)
    bot = _assistant(settings, quiet=as_json)
    results = [
        score_one(
            item, bot.ask(item["question"], top_k=top_k, history=item.get("history")).to_dict(), bot.document_text
        )
        for item in items
    ]
    table = summarize(results)
    if as_json:
        bins = [b.to_dict() for b in reliability(results)]
        out = {"metrics": table, "reliability": bins, "questions": [asdict(r) for r in results]}
        echo_json(out, indent=1)
    else:
        echo(format_table(table))


@main.command()
@click.argument("source")
@click.option("--start", type=click.IntRange(min=0), help="First character of a passage to print.")
@click.option("--end", type=click.IntRange(min=0), help="Character after the passage's last one.")
@click.option("--json", "as_json", is_flag=True, help="Print source, title, format, pages and text as JSON.")
@click.pass_obj
@friendly_errors
def show(settings: Settings, source: str, start: int | None, end: int | None, as_json: bool) -> None:
    """Print a document's text as it was indexed (which every citation's offsets refer to), or one passage of it.

    SOURCE is the document's path in the corpus, as citations name it. Control characters that a terminal would act
    on are printed escaped (`\\x1b`); --json gives the text exactly.
    """
    from .indexing import catalog  # lazily, and not the model: printing indexed text needs no encoder

    document = catalog.read_document(settings.index, source)
    if as_json:
        echo_json(document.to_dict(), indent=1)
        return
    text = document.text
    first, last = start or 0, len(text) if end is None else end
    if not first <= last <= len(text):
        _fail(f"--start {first} --end {last} is not a span of {source}, which has {len(text)} characters")
    echo(text[first:last])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--watch", is_flag=True, help="Update the index when corpus files are added, changed or removed.")
@click.pass_obj
@friendly_errors
def serve(settings: Settings, host: str, port: int, watch: bool) -> None:
    """Start the web chat and JSON API (building or refreshing the index first).

    Without --watch the server still takes up an index that `rag index` rebuilt meanwhile, before its next answer.
    """
    import asyncio  # lazily, like the web stack: only `serve` needs them

    import uvicorn

    from .server.api import create_app
    from .server.metrics import log_requests

    app = create_app(_assistant(settings, repair=True))
    if watch:
        app.state.service.watch()
    log_requests()  # one JSON line a request on stderr (rag.access), instead of uvicorn's access log
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            echo(f"Chat ready at http://{shown}:{bound}/  (API docs at /docs; Ctrl-C stops)")
            if watch:
                echo(f"Watching {settings.corpus} for changes.")
        await serving

    try:
        asyncio.run(run())
    finally:
        app.state.service.stop_watching()
