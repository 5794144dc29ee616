"""Imported once by the reader pool's fork server (`sandbox.py`), so that every worker forked from it starts with the
readers' libraries loaded: about 0.3 s a worker otherwise, paid again after each worker that had to be stopped."""

from __future__ import annotations

import contextlib

with contextlib.suppress(ImportError):  # a library missing here is reported when a file of its format is read
    import chardetng_py  # noqa: F401
    import docx  # noqa: F401
    import pypdfium2  # noqa: F401
    from selectolax.lexbor import LexborHTMLParser  # noqa: F401

from . import documents  # noqa: E402,F401
