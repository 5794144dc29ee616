"""The HTTP edge: the app and its JSON routes (`api`), the chat pages (`pages`, `views`), the dependencies the
routes take (`deps`), the background rebuilds (`rebuilder`), the service that joins them to uploads and removals
(`service`), `--watch` (`watch`), metrics and the access log (`metrics`), and the security headers (`security`).

`create_app` is imported on first use (PEP 562): the background service and the watch need no web library, and
importing them (the CLI's `rag index` path, the tests of the core) leaves FastAPI out."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name != "create_app":
        raise AttributeError(f"module 'rag.server' has no attribute {name!r}")
    return importlib.import_module(".api", __name__).create_app
