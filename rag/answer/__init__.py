"""Answer selection: candidate features, the fitted scorer and its calibrated confidence, the exact span, and the
response values with their one JSON shape."""

from __future__ import annotations

from .features import Pool, Query, gather_pool, question_features
from .response import Answer, Citation, Exact, Response
from .scorer import Scorer, load_scorer
from .select import extend_span, rank_passages, respond, sentence_text

__all__ = [
    "Answer",
    "Citation",
    "Exact",
    "Pool",
    "Query",
    "Response",
    "Scorer",
    "extend_span",
    "gather_pool",
    "load_scorer",
    "question_features",
    "rank_passages",
    "respond",
    "sentence_text",
]
