"""Expected answer types and the focus pattern of "How many X" questions."""

from __future__ import annotations

import pytest

from rag.text.question import expected_type, focus_pattern, holds_type, question_form, respell


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the first Shinkansen line open?", "date"),
        ("  when was the memorandum signed", "date"),
        ("What year did the bridge open?", "date"),
        ("In what year was the fund set up?", "date"),
        ("On what date was the agreement signed?", "date"),
        ("Since when has Japan supported Ukraine?", "date"),
        ("How many forums were organised?", "quantity"),
        ("HOW MUCH aid did Japan give?", "quantity"),
        ("How long is the central span?", "quantity"),
        ("What percentage of the aid was humanitarian?", "quantity"),
        ("What is the total of the contributions?", "quantity"),
        ("Who is the Director of the centre?", None),
        ("Why did the minister visit Kyiv?", None),
        ("Where is the World Expo held?", None),
        ("Whenever possible, what do they discuss?", None),
        ("Tell me about the Shinkansen and when it opened.", None),
    ],
)
def test_expected_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    "sentence",
    [
        "The bridge opened in April 1998.",
        "On 16 July 2018 the agreement expired.",
        "The meeting was held on Nov. 16.",
        "It was signed in 1992.",
        "The talks took place yesterday.",
    ],
)
def test_a_sentence_with_a_date_holds_the_date_type(sentence: str) -> None:
    assert holds_type(sentence, "date")


@pytest.mark.parametrize(
    "sentence",
    [
        "The network carries about 400,000 passengers a day.",
        "Japan provided more than 1,500 generators.",
        "They organised four forums.",
        "Half of the aid was financial.",
        "The span is 1,991 metres long.",
    ],
)
def test_a_sentence_with_a_number_holds_the_quantity_type(sentence: str) -> None:
    assert holds_type(sentence, "quantity")


@pytest.mark.parametrize(
    "sentence",
    [
        "(1) Building Self-Reliance and Dignity",
        "(2) Creating Livelihoods and Economic Opportunities",
        "2. Minister Kamikawa has condemned the attacks.",
        "3) The ministers agreed to meet again.",
        "The ministers agreed to meet again.",
    ],
)
def test_list_markers_are_not_quantities(sentence: str) -> None:
    assert not holds_type(sentence, "quantity")


def test_no_expected_type_holds_nothing() -> None:
    assert not holds_type("It opened in 1964 with 12 trains.", None)


def test_dates_are_not_found_where_there_are_none() -> None:
    assert not holds_type("The leaves are steamed soon after picking.", "date")


def test_focus_pattern_finds_a_number_just_before_the_focus_noun() -> None:
    pattern = focus_pattern("How many forums did the New Europe Center organise?")
    assert pattern is not None
    assert pattern.search("we have managed to organise four forums and more")
    assert pattern.search("They held 12 forums in Tokyo.")
    assert pattern.search("There were 2,718 large public forums.")  # up to two words in between
    assert not pattern.search("The forums were four in number.")
    assert not pattern.search("They held many forums.")


def test_focus_pattern_matches_other_forms_of_the_noun() -> None:
    pattern = focus_pattern("How many Ukrainians did Japan accept?")
    assert pattern is not None
    assert pattern.search("Japan accepted 2718 Ukrainians.")
    assert pattern.search("Japan accepted 2718 Ukrainian refugees.")  # the stem drops the plural


@pytest.mark.parametrize(
    "question",
    [
        "Who organised the forums?",
        "How much money did Japan give?",
        "How long is the bridge?",
        "What is the number of forums?",
    ],
)
def test_no_focus_pattern_without_a_focus_noun(question: str) -> None:
    assert focus_pattern(question) is None


@pytest.mark.parametrize(
    ("question", "form"),
    [("whos the director of the museum", "who"), ("whats the budget", "what"), ("wheres the office", "where")],
)
def test_a_question_word_run_together_with_is_keeps_its_form(question: str, form: str) -> None:
    assert question_form(question) == form


@pytest.mark.parametrize(
    ("typed", "form"),
    [
        ("wen did the ferry start running", "when"),
        ("hw many tickets were sold", "quantity"),
        ("whre is the lighthouse", "where"),
        ("wat is the capital of skarn", "what"),
        ("hwo built the bridge", "who"),
    ],
)
def test_a_misspelled_question_word_is_read_as_the_word(typed: str, form: str) -> None:
    """Casual typing drops or swaps a letter of the question word; "wen did ..." had no form, and its "wen" counted
    as a word the documents lack, which sank the confidence of a right answer to 0.001."""
    assert question_form(typed) == form
    assert respell(typed).split()[0] in ("when", "how", "where", "what", "who")


def test_respelling_leaves_names_and_real_words_alone() -> None:
    assert respell("Wat Pho is where?") == "Wat Pho is where?"  # capitalised: a name
    assert respell("then who won") == "then who won" and respell("now what") == "now what"  # words, not slips
