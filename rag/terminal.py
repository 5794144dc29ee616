"""The command line's text: a response as lines to read, and printing that escapes what a terminal would act on
rather than show, so that no document, title or file name can colour the output, set the window title, move the
cursor or reorder a line (issue #20). JSON output keeps the text exact, with those characters as `\\u` escapes.
And the commands' failures: one line on stderr and an exit code (`friendly_errors`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

import click

from .errors import RagError
from .readers.documents import TERMINAL_CONTROLS, printable

if TYPE_CHECKING:  # `rag --help` does not load the answer modules
    from .answer import Answer, Citation, Response

EXIT_USAGE = 2


def echo(text: str, err: bool = False) -> None:
    """Print text for a person, with what a terminal would act on rather than show (an escape sequence in a title,
    a passage or a file name) escaped: a document cannot colour the output, set the window title or reorder it."""
    click.echo(printable(text, lines=True), err=err)


def echo_json(value: Any, indent: int | None = None) -> None:
    """Print `value` as JSON; the controls that JSON leaves as they are (DEL, the C1 controls, the bidirectional
    overrides) are written as `\\u` escapes too, which every JSON reader decodes to the same text."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    click.echo(TERMINAL_CONTROLS.sub(lambda found: f"\\u{ord(found.group()):04x}", text))


def say(message: str) -> None:
    """A message for the person at the terminal, on stderr (progress, warnings, what a command skipped)."""
    echo(message, err=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    echo(f"error: {message}", err=True)
    sys.exit(code)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the core's errors and Ctrl-C into one line and an exit code."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RagError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted; the previous index is unchanged", 130)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
        except click.ClickException:
            raise
        except Exception as exc:  # a bug of ours: one line, the traceback only when asked for
            if os.environ.get("RAG_DEBUG"):
                raise
            fail(f"internal error ({type(exc).__name__}: {exc}); run with RAG_DEBUG=1 for details", 1)

    return run


def format_response(response: Response) -> str:
    """A response as text for a terminal: the exact answer, the quoted sentence, a note, then the numbered passages
    with the marked sentence. JSON printed by `rag ask --json` (of this version or an older one) is read with
    `Response.from_dict` first."""
    lines = _answer_lines(response)
    if response.note:
        lines.append(f"Note: {response.note}")
    for c in response.citations:
        h0, h1 = c.highlight[0] - c.start, c.highlight[1] - c.start
        text = c.text[:h0] + ">>" + c.text[h0:h1] + "<<" + c.text[h1:]
        lines += [
            "",
            f"[{c.n}] {c.title} ({_where(c)}:{c.start}-{c.end}, score {c.score:.2f})",
            "    " + " ".join(text.split()),
        ]
    return "\n".join(lines)


def _where(span: Answer | Citation) -> str:
    """The source of an answer or citation, with its page for a paged document: `report.pdf p. 12`."""
    return f"{span.source} p. {span.page}" if span.page else span.source


def _answer_lines(response: Response) -> list[str]:
    """The exact answer (when the response has one), then the quoted sentence and where it is."""
    a = response.answer
    if response.abstained or a is None:
        closest = " The closest passages:" if response.citations else ""
        return [f"I could not find this in the documents (confidence {response.confidence:.2f}).{closest}"]
    exact = [f"Answer: {a.exact.text}"] if a.exact else []
    return [
        *exact,
        f"“{a.text}”",
        f"   [{a.citation}] {_where(a)}, characters {a.start}-{a.end} (confidence {response.confidence:.2f})",
    ]
