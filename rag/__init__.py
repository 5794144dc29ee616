"""Extractive question answering over a folder of documents, offline: quoted answers with exact citations."""

from __future__ import annotations

from .answer import Answer, Citation, Response
from .config import Settings
from .errors import RagError
from .pipeline import Assistant

__all__ = ["Answer", "Assistant", "Citation", "RagError", "Response", "Settings"]
__version__ = "0.1.0"
