"""The language of a question: other languages told, English (however typed) never taken for another."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from py3langid.langid import LanguageIdentifier

from rag.text import language
from rag.text.language import language_name, mostly_other_language, question_language

OTHER = [
    ("uk", "Коли Японія підписала угоду з Україною?"),
    ("uk", "Скільки генераторів передали лікарням Харкова?"),
    ("uk", "хто очолює фонд відновлення"),
    ("uk", "Що він сказав у Харкові?"),
    ("ru", "Когда Япония подписала соглашение с Украиной?"),
    ("ru", "Сколько генераторов передали больницам Харькова?"),
    ("ru", "кто возглавляет фонд восстановления"),
    ("de", "Wann hat Japan das Abkommen mit der Ukraine unterzeichnet?"),
    ("de", "Wie viele Generatoren wurden an die Krankenhäuser geliefert?"),
    ("de", "wie viel hat die brücke gekostet"),
    ("fr", "Quand le Japon a-t-il signé l'accord avec l'Ukraine ?"),
    ("fr", "Combien de générateurs ont été livrés aux hôpitaux ?"),
    ("fr", "Pourquoi le ministre est-il venu à Kyiv ?"),
    ("zh", "日本什么时候与乌克兰签署了协议？"),
    ("zh", "有多少台发电机被送到了医院"),
    ("zh", "JICA在乌克兰做了什么？"),
    ("ja", "日本はいつウクライナと協定に署名しましたか？"),
    ("ko", "일본은 언제 우크라이나와 협정에 서명했습니까?"),
    ("es", "¿Cuándo firmó Japón el acuerdo con Ucrania?"),
    ("it", "Chi ha firmato il trattato di pace?"),
    ("pl", "Kiedy Japonia podpisała umowę z Ukrainą?"),
    ("ar", "متى وقعت اليابان الاتفاقية مع أوكرانيا؟"),
    ("el", "Πότε υπέγραψε η Ιαπωνία τη συμφωνία;"),
]

# Ukrainian questions that name people and organisations in Latin letters.
UKRAINIAN_WITH_LATIN_NAMES = [
    "Коли Japan підписала меморандум з Україною?",
    "Що сказав Fumio Kishida у Києві?",
    "Скільки коштів виділила JICA на відбудову мостів?",
    "Яку роль відіграє Sasakawa Peace Foundation в Україні?",
    "Що таке ODA і скільки Japan виділила у 2023 році?",
]

ENGLISH = [
    "Who won?",
    "When was it signed?",
    "how many tanks",
    "who won",
    "when was it signed",
    "what year",
    "why did they leave",
    "how much did it cost",
    "who is the ceo",
    "whats the capital of japan",
    "wich country gave the most aid",
    "how mnay people died",
    "when did the war start",
    "where is it",
    "list the members",
    "who runs the fund",
    "Who is Alyona Getmanchuk?",
    "When did Fumio Kishida visit Kyiv?",
    "What did Zelensky say in Tokyo?",
    "Where is Hiroshima?",
    "who is olaf scholz",
    "what did kishida promise",
    "When did Volodymyr Zelenskyy meet Shinzo Abe?",
    "what did Dmytro Kuleba say",
    "who is Taras Shevchenko",
    "what is the Nikkei index",
    "tell me about Kyodo News",
    "Is Kakhovka dam rebuilt?",
    "who is the head of Naftogaz",
    "how far is odesa from kyiv",
    "waht is the purpose of the forum",
    "hwo is the director",
    "where is teh office",
    "whos the ambassador",
    "aid to ukraine",
    "reconstruction plan",
    "price of gas",
    "What is ODA?",
    "why",
    "how",
    "ok",
    "thanks",
    "WHO SIGNED THE TREATY?",
    "Who Signed The Treaty?",
    "did Emmanuel Macron call Putin",
    "how many HIMARS were sent",
    "wen did it start",
    "is kyiv safe now",
    "How many generators were delivered to Ukrainian hospitals in 2023?",
    # Few function words, every word English: the detector alone read these as Spanish or Portuguese.
    "whos the director of new europe center",
    "whats the budget of the reconstruction conference",
    "who will sybiha meet in japan",
]


@pytest.mark.parametrize(("code", "question"), OTHER)
def test_other_languages_are_told(code: str, question: str) -> None:
    assert question_language(question) == code
    assert mostly_other_language(question, "en") == code


@pytest.mark.parametrize("question", UKRAINIAN_WITH_LATIN_NAMES)
def test_ukrainian_with_latin_names_is_ukrainian(question: str) -> None:
    assert question_language(question) == "uk"
    assert mostly_other_language(question, "en") == "uk"
    assert mostly_other_language(question, "uk") is None


@pytest.mark.parametrize("question", ENGLISH)
def test_english_is_never_another_language(question: str) -> None:
    assert question_language(question) in ("en", None)
    assert mostly_other_language(question, "en") is None


def test_english_is_mostly_told_as_english() -> None:
    told = [q for q in ENGLISH if question_language(q) == "en"]
    assert len(told) >= 0.8 * len(ENGLISH)


def test_english_is_another_language_for_a_model_of_another_language() -> None:
    assert mostly_other_language("When did Fumio Kishida visit Kyiv?", "uk") == "en"
    assert mostly_other_language("how many generators were delivered", "de") == "en"


@pytest.mark.parametrize("question", [q for _, q in OTHER] + UKRAINIAN_WITH_LATIN_NAMES + ENGLISH)
def test_no_model_language_means_never(question: str) -> None:
    assert mostly_other_language(question, None) is None
    assert mostly_other_language(question, "") is None


@pytest.mark.parametrize("text", ["", "   ", "2014", "42?", "???", "1 000 000", "Kishida", "Fumio Kishida", "JICA"])
def test_too_little_to_tell(text: str) -> None:
    assert question_language(text) is None
    assert mostly_other_language(text, "en") is None


def test_a_script_english_does_not_use_decides_even_when_too_short() -> None:
    assert question_language("Хто?") is None
    assert mostly_other_language("Хто?", "en") in ("uk", "ru", "be", "bg", "mk", "sr")
    assert mostly_other_language("谁？", "en") == "zh"
    assert mostly_other_language("Кишида", "en") is not None


def test_model_language_codes_are_normalised() -> None:
    assert mostly_other_language("Коли Японія підписала угоду?", "EN") == "uk"
    assert mostly_other_language("Коли Японія підписала угоду?", "en-GB") == "uk"
    assert mostly_other_language("Коли Японія підписала угоду?", "uk_UA") is None


def test_a_long_text_is_judged_on_its_start() -> None:
    text = "Коли Японія підписала угоду з Україною? " * 500
    assert question_language(text) == "uk"


def test_language_names() -> None:
    assert language_name("uk") == "Ukrainian"
    assert language_name("en") == "English"
    assert language_name("DE") == "German"
    assert language_name("zh") == "Chinese"
    assert language_name("nb") == "Norwegian Bokmål"
    assert language_name("und") == "Undetermined"
    assert language_name("xx") == "xx"


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_importing_does_not_build_the_detector() -> None:
    _run("import rag.text.language as m; assert m._built is None")


def test_questions_told_by_their_script_do_not_build_the_detector() -> None:
    _run(
        "import rag.text.language as m\n"
        "assert m.mostly_other_language('日本什么时候签署了协议？', 'en') == 'zh'\n"
        "assert m.mostly_other_language('Що сказав Fumio Kishida у Києві?', 'en') == 'uk'\n"
        "assert m.mostly_other_language('Who is Alyona Getmanchuk?', 'en') is None\n"
        "assert m.mostly_other_language('anything', None) is None\n"
        "assert m._built is None\n"
    )


def test_the_detector_is_built_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    real = LanguageIdentifier.from_model_file

    def counting(*args: object, **kwargs: object) -> LanguageIdentifier:
        builds.append(1)
        time.sleep(0.05)  # let the other threads arrive while this one builds
        return real(*args, **kwargs)

    monkeypatch.setattr(language, "_built", None)
    monkeypatch.setattr(language.LanguageIdentifier, "from_model_file", counting)
    with ThreadPoolExecutor(max_workers=4) as pool:
        detectors = list(pool.map(lambda _: language._detector(), range(8)))
    assert builds == [1]
    assert all(d is detectors[0] for d in detectors)


def test_the_detector_chooses_among_its_languages_only() -> None:
    assert {code for code, _ in language._ranked("Kto podpisał traktat?")} == set(language.DETECTOR_LANGUAGES)
