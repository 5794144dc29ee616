"""One test sequence over every search engine (txtai's way with its ANN backends): build, ask with exact offsets,
abstain, rebuild incrementally, delete, rebuild while asking, and reopen from disk. `local` is FAISS + BM25 postings;
`milvus` runs on Milvus Lite in a folder of its own, started by the test itself (nothing to start by hand).

The steps share one corpus and index per engine and run in order (each builds on the last). Then a corpus split
into shares (`rag index --shard I/N`), each indexed apart into one Milvus collection, and their catalogs merged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag import Assistant, Settings, engine_types, indexing
from rag.embedding import Encoder
from rag.errors import BadRequest, EngineError, IndexMismatch
from rag.indexing.merge import merge
from tests.helpers import SMALL_DOCS, write_corpus

ENGINES = list(engine_types.ENGINES)  # every registered engine runs the same contract
EXTRA = {
    "harbour.txt": (
        "Kobe Harbour\n\nThe port of Kobe was rebuilt after the 1995 earthquake. Its container terminals reopened "
        "within two years. The harbour museum tells the story of the reconstruction."
    )
}


@dataclass
class Bench:
    """One engine's corpus, settings and assistant, shared by the steps."""

    corpus: Path
    settings: Settings
    assistant: Assistant


@pytest.fixture(scope="module", params=ENGINES)
def bench(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, encoder: Encoder
) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp(f"engine-{request.param}")
    corpus = write_corpus(root / "corpus", SMALL_DOCS)
    settings = Settings(
        corpus=corpus,
        index=root / "index",
        engine=request.param,
        milvus_uri=str(root / "milvus.db") if request.param == "milvus" else "",
        collection="engine_test",
    )
    assistant = Assistant.open(settings, progress=False)
    yield Bench(corpus, settings, assistant)
    assistant.index.engine.close()


def ask(bench: Bench, question: str) -> dict:
    response = bench.assistant.ask(question).to_dict()
    for c in response["citations"]:  # every offset is exact, whatever the engine
        assert bench.assistant.document_text(c["source"])[c["start"] : c["end"]] == c["text"]
    if response["answer"]:
        a = response["answer"]
        assert bench.assistant.document_text(a["source"])[a["start"] : a["end"]] == a["text"]
    return response


def test_1_build_puts_every_chunk_in_the_engine(bench: Bench) -> None:
    index = bench.assistant.index
    assert index.manifest["engine"]["name"] == bench.settings.engine
    assert index.engine.count() == index.chunk_count == len(index.chunks) > 0
    assert "token" not in str(index.manifest["engine"])


@pytest.mark.parametrize(
    ("question", "source", "words"),
    [
        ("How long is the central span of the Akashi Kaikyo Bridge?", "bridges.md", "1,991 metres"),
        ("How fast do trains run on the first Shinkansen line?", "trains/shinkansen.txt", "285 km/h"),
        ("Where is green tea grown?", "tea.txt", "Shizuoka"),
    ],
)
def test_2_answers_quote_the_right_document(bench: Bench, question: str, source: str, words: str) -> None:
    response = ask(bench, question)
    assert not response["abstained"]
    assert response["answer"]["source"] == source and words in response["answer"]["text"]


def test_3_a_question_the_documents_do_not_answer_abstains(bench: Bench) -> None:
    response = ask(bench, "What is the recipe for apple pie with cinnamon?")
    assert response["abstained"] and response["answer"] is None


def test_4_an_incremental_rebuild_embeds_only_what_changed(bench: Bench) -> None:
    write_corpus(bench.corpus, EXTRA)
    changed = SMALL_DOCS["tea.txt"] + " Gyokuro is shaded for three weeks before the harvest."
    write_corpus(bench.corpus, {"tea.txt": changed})
    report = bench.assistant.reindex(progress=False)
    assert report.added == ["harbour.txt"] and report.changed == ["tea.txt"]
    index = bench.assistant.index
    new = {d.source: d.chunks for d in index.documents}
    assert report.chunks_embedded == new["harbour.txt"] + new["tea.txt"]
    assert index.engine.count() == index.chunk_count
    response = ask(bench, "When was the port of Kobe rebuilt?")
    assert response["answer"]["source"] == "harbour.txt"
    assert "Gyokuro" in ask(bench, "How long is gyokuro shaded?")["answer"]["text"]


def test_5_a_deleted_document_leaves_the_engine(bench: Bench) -> None:
    (bench.corpus / "bridges.md").unlink()
    report = bench.assistant.reindex(progress=False)
    assert report.removed == ["bridges.md"] and report.chunks_embedded == 0
    index = bench.assistant.index
    assert index.engine.count() == index.chunk_count
    response = ask(bench, "When did the Akashi Kaikyo Bridge open?")
    assert all(c["source"] != "bridges.md" for c in response["citations"])
    assert not index.engine.search_lexical(index.vocabulary.query_terms("Akashi Kaikyo"), 10)


def test_6_answers_keep_coming_while_the_index_is_rebuilt(bench: Bench) -> None:
    errors: list[BaseException] = []
    answered: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                response = ask(bench, "When did the first Shinkansen line open?")
                answered.append(response["answer"]["source"] if response["answer"] else "")
            except BaseException as exc:  # noqa: BLE001 (any failure is the test's finding)
                errors.append(exc)
                return

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        write_corpus(bench.corpus, {"bridges.md": SMALL_DOCS["bridges.md"]})
        bench.assistant.reindex(progress=False)
    finally:
        stop.set()
        asker.join(timeout=60)
    assert not errors, errors
    assert answered and set(answered) == {"trains/shinkansen.txt"}


def test_7_a_reopened_index_answers_the_same(bench: Bench) -> None:
    before = ask(bench, "When did the Akashi Kaikyo Bridge open?")
    reopened = Assistant.open(bench.settings, progress=False)
    after = reopened.ask("When did the Akashi Kaikyo Bridge open?").to_dict()
    if bench.settings.engine == "milvus":  # a server answering through Milvus reads no chunk list, only words
        assert reopened.index._chunks is None and reopened.index._table is None
    assert [c.id for c in reopened.index.chunks] == [c.id for c in bench.assistant.index.chunks]
    assert after["answer"] == before["answer"]
    assert [c["chunk_id"] for c in after["citations"]] == [c["chunk_id"] for c in before["citations"]]


def test_shards_indexed_apart_then_merged_answer_from_every_share(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_corpus(tmp_path / "corpus", {**SMALL_DOCS, **EXTRA})
    shared = {"corpus": corpus, "engine": "milvus", "milvus_uri": str(tmp_path / "milvus.db"), "collection": "shards"}
    folders, shares = [], []
    for i in range(3):  # these four names hash to shares 0, 0, 2, 2: one share is empty
        settings = Settings(index=tmp_path / f"shard-{i}", **shared)
        index, report = indexing.build(settings, encoder, progress=False, shard=(i, 3))
        folders.append(settings.index)
        shares.append(set(report.added))
        assert index.manifest["shard"] == [i, 3]
    assert [len(s) for s in shares] == [2, 0, 2] and set().union(*shares) == {*SMALL_DOCS, *EXTRA}
    served = Settings(index=tmp_path / "index", **shared)
    merged = merge(served, folders)
    assert merged.engine.count() == merged.chunk_count == sum(d.chunks for d in merged.documents)
    bot = Assistant(served, merged, encoder)
    assert bot.ask("When was the port of Kobe rebuilt?").answer.source == "harbour.txt"  # type: ignore[union-attr]
    assert bot.ask("Where is green tea grown?").answer.source == "tea.txt"  # type: ignore[union-attr]
    with pytest.raises(IndexMismatch, match="missing"):
        merge(served, folders[:1])
    with pytest.raises(BadRequest, match="new split"):  # another split would remove documents others hold
        indexing.build(Settings(index=folders[0], **shared), encoder, progress=False, shard=(0, 2))
    merged.engine.close()


def test_an_unreachable_milvus_says_so(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL_DOCS)
    settings = Settings(corpus=corpus, index=tmp_path / "index", engine="milvus", milvus_uri="http://127.0.0.1:9")
    with pytest.raises(EngineError, match="cannot use Milvus at http://127.0.0.1:9"):
        indexing.build(settings, encoder, progress=False)


def test_a_shard_needs_a_shared_engine(tmp_path: Path, encoder: Encoder) -> None:
    settings = Settings(corpus=write_corpus(tmp_path / "corpus", SMALL_DOCS), index=tmp_path / "index")
    with pytest.raises(BadRequest, match="RAG_ENGINE=milvus"):
        indexing.build(settings, encoder, progress=False, shard=(0, 2))
    for wrong in ("2/2", "1", "-1/3", "a/b"):
        with pytest.raises(BadRequest, match="I/N"):
            indexing.parse_shard(wrong)
    assert indexing.parse_shard(" 3/4 ") == (3, 4)
