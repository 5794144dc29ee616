"""Answer selection: candidate features, the fitted scorer, the trained reader that re-reads the best candidates
and marks the exact span, the calibrated confidence, and the response values with their one JSON shape."""

from __future__ import annotations

from .features import Pool, Query, gather_pool, question_features
from .reader import Reader, load_reader
from .response import Answer, Citation, Exact, Response
from .scorer import Scorer, load_scorer
from .select import Found, extend_span, quoted_text, rank_passages, read_best, respond, sentence_text

__all__ = [
    "Answer",
    "Citation",
    "Exact",
    "Found",
    "Pool",
    "Query",
    "Reader",
    "Response",
    "Scorer",
    "extend_span",
    "gather_pool",
    "load_reader",
    "load_scorer",
    "question_features",
    "quoted_text",
    "rank_passages",
    "read_best",
    "respond",
    "sentence_text",
]
