"""The Python API, one facade over the core: open or build the index, then ask.

    from rag import Assistant
    bot = Assistant.open()                      # corpus/ and index/, building or refreshing the index if needed
    response = bot.ask("When did Japan and Ukraine establish diplomatic relations?")
    print(response.answer.text if response.answer else "not in the documents")
    print(response.to_dict())                   # the same JSON as `rag ask --json` and POST /api/ask

The edges answer through an `Assistant` (`rag ask`, `eval`, `serve`; the server's routes and pages), but also call a
few core modules directly: `indexing` (`rag index`, the server's background rebuilds in `server/service.py`),
`indexing.catalog` (`rag show`), `readers` (uploads), `embedding` (the rebuilds' own encoder) and `config`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import reprlib
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from . import indexing
from .answer import Found, Query, Response, load_reader, load_scorer, respond
from .answer.conversation import combine, points_back
from .answer.scorer import check_model
from .config import MAX_HISTORY, MAX_QUESTION_CHARS, MAX_TOP_K, Settings
from .embedding import Encoder
from .errors import BadQuestion, BadRequest, CorpusError, IndexCorrupt, IndexMissing, IndexOutdated, NotFound, RagError
from .indexing import store
from .indexing.live import IndexOnDisk
from .indexing.progress import Progress
from .indexing.texts import DocumentText
from .retrieval import search, search_lexical
from .text.language import language_name, mostly_other_language

POOL = 10  # passages whose sentences the answer scorer reads (R@10 on the tune split: see train/fit_answer.py)
log = logging.getLogger("rag")
Say = Callable[[str], None]  # where `open` reports what it does


class Assistant:
    """An index and the encoder that reads questions for it."""

    def __init__(self, settings: Settings, index: store.Index, encoder: Encoder, cache_size: int = 1024) -> None:
        self.settings = settings
        self.encoder = encoder
        self.live = IndexOnDisk(settings.index, index, self._load_from_disk)
        self.cache = ResponseCache(cache_size)
        # Called with every response `ask` returns, in the asking thread (the server's metrics count answers so).
        self.observers: list[Callable[[Response], None]] = []
        self.scorer = load_scorer()
        check_model(self.scorer, settings.model)
        self.reader = load_reader()

    @property
    def index(self) -> store.Index:
        """The index answering; when another process (`rag index`) rebuilt the one on disk, that one is loaded
        first, so the next answer comes from it (a stat of its manifest, microseconds, when nothing changed)."""
        return self.live.get()

    @index.setter
    def index(self, index: store.Index) -> None:
        """Serve `index`, just built and saved by this process: the change on disk is its own, not reloaded."""
        self.live.set(index)

    def _load_from_disk(self) -> store.Index:
        return indexing.load(self.settings, self.encoder)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        refresh: bool = True,
        repair: bool = False,
        progress: Progress = False,
        say: Say = log.info,
    ) -> Assistant:
        """Load the index; build it if missing, update it if the corpus changed (when `refresh`).

        Args:
            repair: rebuild a damaged index from the corpus instead of stopping with `IndexCorrupt`.
            progress: how a build it runs reports progress: False (quiet), True (bars on stderr, as the CLI), or a
                callable given (stage, done, total) (`rag.indexing.progress`).
            say: where to report what is done (building, updating) and which files were skipped; the CLI prints
                them, the default logs them to the `rag` logger at INFO.
        """
        settings = settings or Settings.from_env()
        encoder = indexing.encoder_for(settings)
        has_corpus = settings.corpus.is_dir()
        try:
            manifest = store.read_manifest(settings.index)
            if refresh and has_corpus and indexing.is_stale(settings, manifest):
                say(f"The documents in {settings.corpus} changed: updating the index.")
                return cls(settings, _refresh(settings, encoder, progress, say), encoder)
            if not has_corpus:
                say(f"warning: no corpus folder {settings.corpus}; answering from {settings.index} as it was built.")
            return cls(settings, indexing.load(settings, encoder), encoder)
        except IndexMissing:
            if not has_corpus:
                raise CorpusError(
                    f"the corpus folder {settings.corpus} does not exist and there is no index in folder "
                    f"{settings.index}; pass --corpus DIR (or set RAG_CORPUS) to a folder of documents (.txt, .md, "
                    ".pdf, .html, .docx)"
                ) from None
            say(f"No index yet (folder {settings.index}): building it from {settings.corpus}.")
        except IndexOutdated as exc:
            if not (refresh and has_corpus):
                raise
            why = str(exc).split(";")[0]
            say(f"{why[:1].upper()}{why[1:]}: rebuilding it from {settings.corpus}.")
        except IndexCorrupt as exc:
            if not (repair and has_corpus):
                raise
            say(f"{str(exc).split(';')[0]}: rebuilding it from {settings.corpus}.")
            return cls(settings, _build(settings, encoder, progress, say, full=True), encoder)  # nothing of it kept
        return cls(settings, _build(settings, encoder, progress, say), encoder)

    def reindex(self, *, full: bool = False, progress: Progress = False) -> indexing.BuildReport:
        """Update the index from the corpus (only what changed unless `full`) and start using it; `progress` as for
        `open` (quiet by default)."""
        self.index, report = indexing.build(self.settings, self.encoder, full=full, progress=progress)
        return report

    def document(self, source: str) -> DocumentText:
        """Document `source` as it was indexed: title, format, page starts and the text every offset of a
        response refers to (`text[start:end]` is the quote). Raises `NotFound` for a source not in the index."""
        try:
            return self.index.document(source)
        except KeyError:
            raise NotFound(f"{source!r} is not in the index; GET /api/documents lists the documents") from None

    def document_text(self, source: str) -> str:
        """The text of `source` as it was indexed; raises `NotFound` for a source not in the index."""
        return self.document(source).text

    def ask(self, question: str, top_k: int | None = None, history: Sequence[str] | None = None) -> Response:
        """Answer one question from the index; raises `BadQuestion` or `BadRequest` for bad input.

        Args:
            question: the question, up to `MAX_QUESTION_CHARS` characters of text.
            top_k: passages to cite (default: the `top_k` setting).
            history: earlier questions of the conversation, oldest first; a follow-up such as "When was it
                signed?" is read together with the last of them.
        Returns:
            The response; `response.context` names the earlier question used, if one was.
        """
        question = check_question(question)
        history = check_history(history)
        index = self.index  # one index for the whole question, even if a rebuild swaps in a new one meanwhile
        k = min(check_top_k(self.settings.top_k if top_k is None else top_k), index.chunk_count)
        follows = history and points_back(question, len(index.vocabulary.query_terms(question)))
        context = history[-1] if follows else None
        key = (index.generation, question, k, context)  # a rebuilt index never sees the old one's answers
        response = self.cache.get(key)
        if response is None:
            query = question if context is None else combine(context, question)
            response = self.cache.put(key, self._answer(index, question, query, k, context))
        for observe in self.observers:
            observe(response)
        return response

    def _answer(self, index: store.Index, question: str, query: str, k: int, context: str | None = None) -> Response:
        other = mostly_other_language(question, self.settings.model_language)
        if other is not None:
            return self._unreadable(index, question, k, other)
        vector = self.encoder.encode_one(query)
        terms = index.vocabulary.query_terms(query)
        hits, passages = search(index.engine, vector, terms, max(k, POOL))
        read = Query.read(query, vector, terms, index.vocabulary, index.words.language, asked=question)
        found = Found(index, hits, passages)
        return respond(
            read, found, self.scorer, self.reader, min_confidence=self.settings.min_confidence, top_k=k, context=context
        )

    def _unreadable(self, index: store.Index, question: str, k: int, language: str) -> Response:
        """A question in a language the model does not read: no quotation, a note that says so and how to
        configure a model that reads it, and the passages that share names or numbers with it (BM25 alone)."""
        terms = index.vocabulary.query_terms(question)
        hits, passages = search_lexical(index.engine, terms, max(k, POOL))
        vector = np.zeros(index.dimension, dtype=np.float32)  # its meaning cannot be read: no dense signal
        read = Query.read(question, vector, terms, index.vocabulary, index.words.language)
        found = Found(index, hits, passages)
        response = respond(read, found, self.scorer, self.reader, min_confidence=math.inf, top_k=k)
        return dataclasses.replace(response, confidence=0.0, note=language_note(language, self.settings))


class ResponseCache:
    """The last `size` responses, by question: a repeated question (a page reload, a popular one) costs nothing.
    Responses are frozen values, so handing the same one out twice is safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], Response] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Response | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple[object, ...], response: Response) -> Response:
        with self._lock:
            self._items[key] = response
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return response


def language_note(language: str, settings: Settings) -> str:
    """What a user asking in `language` should know when the model reads another one: plainly what happened and
    what to do (the operator's part is `language_setup`'s, for the README and the admin page; issue #21)."""
    asked, reads = language_name(language), language_name(settings.model_language or "en")
    return (
        f"This question seems to be in {asked}; the documents are searched in {reads}, so no answer is quoted. "
        f"Ask it in {reads} to get one."
    )


def language_setup(settings: Settings) -> str:
    """For the operator: which language the model reads, and how to answer questions in others."""
    if settings.model_language is None:
        return f"The model ({settings.model}) is taken to read any language (RAG_LANGUAGE={settings.language})."
    reads = language_name(settings.model_language)
    return (
        f"The model ({settings.model}) reads {reads}: a question in another language is told so and quotes nothing. "
        "To answer other languages, point RAG_MODEL at a multilingual sentence-transformers model folder (for "
        "example paraphrase-multilingual-MiniLM-L12-v2), set RAG_LANGUAGE=none, fit the answer weights for it "
        "(train/fit_answer.py) and run `rag index --full`."
    )


def _build(settings: Settings, encoder: Encoder, progress: Progress, say: Say, full: bool = False) -> store.Index:
    index, report = indexing.build(settings, encoder, full=full, progress=progress)
    for line in report.skip_lines():
        say(line)
    say(f"Index updated: {report.summary()}.")
    return index


def _refresh(settings: Settings, encoder: Encoder, progress: Progress, say: Say) -> store.Index:
    """The index brought up to date with the corpus or, when the new one cannot be written (a full disk, a
    read-only folder), the old one as it is, with one warning: answers a little out of date beat none."""
    try:
        return _build(settings, encoder, progress, say)
    except OSError as exc:  # `IndexUnwritable` from the save, or a rename of the swap
        error = exc if isinstance(exc, store.IndexUnwritable) else store.unwritable(settings.index.absolute(), exc)
        try:
            index = indexing.load(settings, encoder)
        except RagError:  # the old index cannot answer either (built with another model...): the write is the news
            raise error from None
    log.warning(
        "warning: the index is out of date: the documents in %s changed since it was built (%s), but %s. "
        "Answering from it as it was.",
        settings.corpus,
        index.manifest.get("built_at", "at an unknown time"),
        error,
    )
    return index


def check_question(question: object) -> str:
    """The question without surrounding white space; raises `BadQuestion` if it is unusable."""
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    question = question.strip()
    if not question:
        raise BadQuestion("the question is empty; type a question about the documents")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in question):
        raise BadQuestion("the question contains control characters or invalid Unicode; send plain text")
    return question


def check_history(history: object) -> list[str]:
    """Earlier questions, each checked like a question; the last `MAX_HISTORY` are kept."""
    if history is None:
        return []
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise BadRequest("history must be a list of earlier questions")
    try:
        return [check_question(q) for q in history][-MAX_HISTORY:]
    except BadQuestion as exc:
        raise BadRequest(f"history holds a bad question: {exc}") from None


def check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        huge = isinstance(top_k, int) and abs(top_k) > 10**18  # repr() of a 5,000-digit int raises ValueError
        shown = "a very large number" if huge else reprlib.repr(top_k)
        raise BadRequest(f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {shown}")
    return top_k
