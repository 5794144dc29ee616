"""Answers and citations on the bundled corpus: exact quotes, highlights, numbering, abstention, the JSON shape."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rag.answer import Answer, Citation, Exact, Found, Query, Response, respond, sentence_text
from rag.config import Settings
from rag.pipeline import Assistant
from rag.retrieval import search

pytestmark = pytest.mark.slow  # the real model

# Our own questions about the bundled corpus, each with a phrase the answer sentence must hold.
ANSWERABLE = {
    "In which year did Japan set up diplomatic relations with Ukraine?": "1992",
    "How many generators did Japan give Ukraine last year?": "1,500 generators",
    "Who is the director of New Europe?": "Alyona Getmanchuk",
    "How many forums has the New Europe Center organised?": "four forums",
    "How many Ukrainian students are studying at universities in Japan?": "253",
    "Which company is russia's main tool in nuclear terrorism?": "Rosatom",
    "How many journalists came to the press conference at the National Press Club?": "70 journalists",
}
OFF_TOPIC = [
    "How long should sourdough bread be baked, and at what oven temperature?",
    "Which team won the football World Cup final in 2018?",
    "What is a good recipe for chocolate chip cookies?",
]
QUESTIONS = [*ANSWERABLE, *OFF_TOPIC]
# "context" (the earlier question a follow-up was read with) joined the shape with conversations.
# "note" (how the question was read, e.g. in a language the model does not read) and the answer's "exact" span
# joined it with the calibrated answer scorer.
RESPONSE_KEYS = {"question", "abstained", "confidence", "answer", "citations", "context", "note"}
ANSWER_KEYS = {"text", "source", "start", "end", "citation", "exact", "page"}
CITATION_KEYS = {"n", "source", "title", "chunk_id", "text", "start", "end", "score", "highlight", "page"}


@pytest.fixture(scope="module")
def responses(assistant: Assistant) -> dict[str, Response]:
    return {q: assistant.ask(q) for q in QUESTIONS}


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_quote_is_exact(responses: dict[str, Response], corpus_text: Callable[[str], str], question: str) -> None:
    response = responses[question]
    for c in response.citations:
        assert corpus_text(c.source)[c.start : c.end] == c.text
    if response.answer is not None:
        a = response.answer
        assert corpus_text(a.source)[a.start : a.end] == a.text
        if a.exact is not None:
            assert corpus_text(a.source)[a.exact.start : a.exact.end] == a.exact.text
            assert a.start <= a.exact.start < a.exact.end <= a.end


def test_an_answered_question_marks_its_exact_answer(responses: dict[str, Response]) -> None:
    answer = responses["In which year did Japan set up diplomatic relations with Ukraine?"].answer
    assert answer is not None and answer.exact is not None
    assert "1992" in answer.exact.text


def test_a_question_in_another_language_gets_a_note_and_no_quotation(assistant: Assistant) -> None:
    response = assistant.ask("Коли Японія встановила дипломатичні відносини з Україною?")
    assert response.abstained and response.answer is None
    assert response.note is not None and "Ukrainian" in response.note and "English" in response.note
    assert "RAG_MODEL" not in response.note and "rag index" not in response.note  # the operator's part is elsewhere


@pytest.mark.parametrize("question", QUESTIONS)
def test_citations_are_numbered_and_ordered_by_score(responses: dict[str, Response], question: str) -> None:
    citations = responses[question].citations
    assert [c.n for c in citations] == list(range(1, len(citations) + 1))
    assert len(citations) == 5  # the default top_k
    assert [c.score for c in citations] == sorted((c.score for c in citations), reverse=True)
    assert all(0.0 <= c.score <= 1.0 + 1e-9 for c in citations)
    assert len({c.chunk_id for c in citations}) == len(citations)


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_highlight_is_a_sentence_of_its_citation(
    assistant: Assistant, responses: dict[str, Response], question: str
) -> None:
    chunks = {c.id: c for c in assistant.index.chunks}
    for c in responses[question].citations:
        start, end = c.highlight
        assert c.start <= start < end <= c.end
        chunk = chunks[c.chunk_id]
        assert (start, end) in chunk.sentences
        assert (chunk.source, chunk.start, chunk.end, chunk.text) == (c.source, c.start, c.end, c.text)
        assert c.title == assistant.index.title(c.source)


@pytest.mark.parametrize("question", QUESTIONS)
def test_confidence_is_a_probability(responses: dict[str, Response], question: str) -> None:
    assert 0.0 <= responses[question].confidence <= 1.0


@pytest.mark.parametrize(("question", "phrase"), ANSWERABLE.items())
def test_answerable_questions_are_answered_from_the_right_sentence(
    responses: dict[str, Response], question: str, phrase: str
) -> None:
    response = responses[question]
    assert not response.abstained
    assert response.answer is not None
    assert phrase in response.answer.text
    assert response.confidence >= Settings().min_confidence


@pytest.mark.parametrize("question", ANSWERABLE)
def test_the_answer_points_to_the_citation_that_holds_it(responses: dict[str, Response], question: str) -> None:
    response = responses[question]
    answer = response.answer
    assert answer is not None
    cited = response.citations[answer.citation - 1]
    assert cited.n == answer.citation
    assert cited.source == answer.source
    assert cited.start <= answer.start < answer.end <= cited.end
    assert cited.highlight == (answer.start, answer.end)
    for c in response.citations:  # every other passage that holds the answer marks it too
        if c.source == answer.source and c.start <= answer.start and answer.end <= c.end:
            assert c.highlight == (answer.start, answer.end)


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_an_off_topic_question_abstains_but_shows_the_closest_passages(
    responses: dict[str, Response], question: str
) -> None:
    response = responses[question]
    assert response.abstained
    assert response.answer is None
    assert response.confidence < Settings().min_confidence
    assert len(response.citations) == 5


@pytest.mark.parametrize("question", QUESTIONS)
def test_to_dict_has_the_one_json_shape(responses: dict[str, Response], question: str) -> None:
    response = responses[question]
    data = json.loads(json.dumps(response.to_dict()))
    assert set(data) == RESPONSE_KEYS
    assert data["question"] == question
    assert data["abstained"] is response.abstained
    assert data["confidence"] == round(response.confidence, 4)
    assert data["context"] is None  # a question asked on its own
    if response.answer is None:
        assert data["answer"] is None
    else:
        assert set(data["answer"]) == ANSWER_KEYS
    for c in data["citations"]:
        assert set(c) == CITATION_KEYS
        assert set(c["highlight"]) == {"start", "end"}
        assert isinstance(c["score"], float)


def test_to_dict_of_a_hand_made_response() -> None:
    response = Response(
        question="Q?",
        abstained=False,
        confidence=0.876543,
        answer=Answer("It is so.", "a.txt", 10, 19, citation=1),
        citations=[Citation(1, "a.txt", "A", "a.txt#0", "Before. It is so.", 2, 19, 0.123456, (10, 19))],
    )
    assert response.to_dict() == {
        "question": "Q?",
        "abstained": False,
        "confidence": 0.8765,
        "answer": {
            "text": "It is so.",
            "source": "a.txt",
            "start": 10,
            "end": 19,
            "citation": 1,
            "exact": None,
            "page": None,
        },
        "citations": [
            {
                "n": 1,
                "source": "a.txt",
                "title": "A",
                "chunk_id": "a.txt#0",
                "text": "Before. It is so.",
                "start": 2,
                "end": 19,
                "score": 0.1235,
                "highlight": {"start": 10, "end": 19},
                "page": None,
            },
        ],
        "context": None,
        "note": None,
    }


def test_to_dict_carries_the_exact_span_with_its_source() -> None:
    exact = Exact("1992", 15, 19)
    answer = Answer("It was in 1992.", "a.txt", 5, 20, citation=1, exact=exact)
    data = Response("Q?", False, 0.9, answer, [], note="a note").to_dict()
    assert data["answer"]["exact"] == {"text": "1992", "source": "a.txt", "start": 15, "end": 19}
    assert data["note"] == "a note"


def rounded(response: Response) -> Response:
    """`response` with its confidence and scores rounded as `to_dict` writes them."""
    citations = [dataclasses.replace(c, score=round(c.score, 4)) for c in response.citations]
    return dataclasses.replace(response, confidence=round(response.confidence, 4), citations=citations)


@pytest.mark.parametrize("question", QUESTIONS)
def test_from_dict_reads_back_what_to_dict_wrote(responses: dict[str, Response], question: str) -> None:
    response = responses[question]
    assert Response.from_dict(json.loads(json.dumps(response.to_dict()))) == rounded(response)


def test_from_dict_of_a_hand_made_response_with_every_field() -> None:
    answer = Answer("It was in 1992.", "a.pdf", 5, 20, citation=2, exact=Exact("1992", 15, 19), page=3)
    citations = [
        Citation(1, "b.txt", "B", "b.txt#0", "Other.", 0, 6, 0.4, (0, 6)),
        Citation(2, "a.pdf", "A", "a.pdf#1", "Yes. It was in 1992.", 0, 20, 0.123456, (5, 20), page=3),
    ]
    response = Response("When?", False, 0.876543, answer, citations, context="Earlier?", note="a note")
    back = Response.from_dict(json.loads(json.dumps(response.to_dict())))
    assert back == rounded(response)
    assert back.citations[1].highlight == (5, 20) and back.answer is not None and back.answer.page == 3


def test_from_dict_reads_an_older_response_without_the_newer_keys() -> None:
    answer = Answer("It is so.", "a.txt", 10, 19, citation=1)
    citation = Citation(1, "a.txt", "A", "a.txt#0", "It is so.", 10, 19, 0.5, (10, 19))
    data = Response("Q?", False, 0.5, answer, [citation]).to_dict()
    for key in ("context", "note"):
        del data[key]
    for key in ("exact", "page"):
        del data["answer"][key]
    del data["citations"][0]["page"]
    assert Response.from_dict(data) == Response("Q?", False, 0.5, answer, [citation])


def hand_made() -> dict[str, Any]:
    answer = Answer("It was in 1992.", "a.txt", 5, 20, citation=1, exact=Exact("1992", 15, 19))
    citation = Citation(1, "a.txt", "A", "a.txt#0", "Yes. It was in 1992.", 0, 20, 0.5, (5, 20))
    return json.loads(json.dumps(Response("Q?", False, 0.9, answer, [citation]).to_dict()))


@pytest.mark.parametrize(
    "exact",
    [
        "a string",
        [15, 19],
        {"start": 15},
        {"text": "1992", "start": "15", "end": 19},
        {"text": "1992", "start": True, "end": 19},
        {"text": "1992", "start": 15, "end": 19.0},
        {"text": 1992, "start": 15, "end": 19},
    ],
)
def test_from_dict_drops_a_malformed_exact_span(exact: Any) -> None:
    data = hand_made()
    data["answer"]["exact"] = exact
    response = Response.from_dict(data)
    assert response.answer is not None and response.answer.exact is None
    assert response.answer.text == "It was in 1992."  # the answer itself is kept


def _break(data: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, for `...`, delete) the value at `path`, keys and list indexes joined by dots."""
    *parents, last = path.split(".")
    where: Any = data
    for step in parents:
        where = where[int(step)] if isinstance(where, list) else where[step]
    key = int(last) if isinstance(where, list) else last
    if value is ...:
        del where[key]
    else:
        where[key] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("question", ..., "response: the key 'question' is missing"),
        ("answer", ..., "response: the key 'answer' is missing"),
        ("citations", ..., "response: the key 'citations' is missing"),
        ("question", None, "response.question must be a string, not NoneType"),
        ("abstained", 1, "response.abstained must be a boolean, not int"),
        ("confidence", "0.9", "response.confidence must be a number, not str"),
        ("confidence", True, "response.confidence must be a number, not bool"),
        ("citations", {}, "response.citations must be a list, not dict"),
        ("note", 3, "response.note must be a string, not int"),
        ("answer", "It was in 1992.", "response.answer must be an object, not str"),
        ("answer.start", True, "response.answer.start must be an integer, not bool"),
        ("answer.text", ..., "response.answer: the key 'text' is missing"),
        ("answer.page", "3", "response.answer.page must be an integer, not str"),
        ("citations.0", None, "response.citations[0] must be an object, not NoneType"),
        ("citations.0.end", 20.0, "response.citations[0].end must be an integer, not float"),
        ("citations.0.chunk_id", ..., "response.citations[0]: the key 'chunk_id' is missing"),
        ("citations.0.highlight", [5, 20], "response.citations[0].highlight must be an object, not list"),
        ("citations.0.highlight.end", ..., "response.citations[0].highlight: the key 'end' is missing"),
    ],
)
def test_from_dict_of_a_broken_response_raises_a_clear_value_error(path: str, value: Any, message: str) -> None:
    data = hand_made()
    _break(data, path, value)
    with pytest.raises(ValueError) as raised:
        Response.from_dict(data)
    assert str(raised.value) == message


@pytest.mark.parametrize("data", [None, [], "response", 1])
def test_from_dict_of_something_other_than_an_object_raises(data: Any) -> None:
    with pytest.raises(ValueError, match="^response must be an object"):
        Response.from_dict(data)


def test_the_exact_span_is_marked_in_english_only(assistant: Assistant) -> None:
    question = "In which year did Japan set up diplomatic relations with Ukraine?"
    index = assistant.index
    vector = assistant.encoder.encode_one(question)
    terms = index.vocabulary.query_terms(question)
    hits, passages = search(index.engine, vector, terms, 10)
    found = Found(index, hits, passages)
    for language, marked in (("en", True), ("de", False)):
        query = Query.read(question, vector, terms, index.vocabulary, language)
        response = respond(query, found, assistant.scorer, assistant.reader, min_confidence=0.0, top_k=5)
        assert response.answer is not None
        assert (response.answer.exact is not None) == marked


def test_no_hits_means_an_abstention_without_citations(assistant: Assistant) -> None:
    index = assistant.index
    query = Query.read("anything", np.zeros(index.dimension, np.float32), [], index.vocabulary, "en")
    passages = index.engine.fetch([]).passages([])
    found = Found(index, [], passages)
    response = respond(query, found, assistant.scorer, assistant.reader, min_confidence=0.5, top_k=5)
    assert response.abstained and response.answer is None
    assert response.confidence == 0.0
    assert response.citations == []


def test_a_zero_threshold_always_answers(assistant: Assistant) -> None:
    eager = Assistant(dataclasses.replace(assistant.settings, min_confidence=0.0), assistant.index, assistant.encoder)
    response = eager.ask(OFF_TOPIC[0])
    assert not response.abstained and response.answer is not None


def test_a_key_word_the_documents_never_use_lowers_the_confidence(assistant: Assistant) -> None:
    held = assistant.ask("How many generators did Japan give Ukraine?")
    missing = assistant.ask("How many submarines did Japan give Ukraine?")
    assert missing.confidence < held.confidence


def test_confidence_is_the_fitted_probability_and_grows_with_evidence(assistant: Assistant) -> None:
    scorer = assistant.scorer
    base = np.zeros(len(scorer.confidence.names), dtype=np.float32)
    more = base.copy()
    more[scorer.confidence.names.index("top_cover")] = 1.0
    assert 0.0 <= scorer.probability(base) <= 1.0
    assert scorer.probability(more) > scorer.probability(base)
    assert scorer.meta["fitted_by"] == "train/fit_answer.py"
    assert scorer.meta["min_confidence"] == Settings().min_confidence


def test_sentence_text_cuts_by_document_offsets(assistant: Assistant) -> None:
    chunk = assistant.index.chunks[3]
    for span in chunk.sentences:
        assert assistant.document_text(chunk.source)[span[0] : span[1]] == sentence_text(chunk, span)
