"""The HTTP edge: the app and its JSON routes (`api`), the chat pages (`pages`, `views`), the dependencies the
routes take (`deps`), the background rebuilds and uploads (`service`), `--watch` (`watch`), metrics and the access
log (`metrics`), and the security headers (`security`)."""

from __future__ import annotations

from .api import create_app

__all__ = ["create_app"]
