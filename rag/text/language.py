"""Which language a question is written in, so that an English-only model is not handed a question it cannot read.

The bundled embedding model (all-MiniLM-L6-v2) reads English only. This module tells the language of a question:
`question_language` names it, `mostly_other_language` says whether it differs from the model's, `language_name`
spells a code out for messages.

Why py3langid (a maintained fork of langid.py): its model ships inside the wheel (4.6 MB; nothing is downloaded, it
works offline), it is BSD-3-Clause (compatible with this project's MIT licence), it can be limited to a list of
languages, and it gives a probability that can be thresholded. It replaced lingua-language-detector, whose wheel
(96 MB of models) was a sixth of the default install, and which did worse on the questions below.

How a question is read, cheapest step first:

1. Letters are sorted by script (Latin, Cyrillic, CJK, Arabic, ...), names left out (a word in capitals, or
   capitalised but not at the start of a sentence: "Japan", "JICA", "Fumio Kishida"). The script with most letters is
   the question's; words in other scripts are dropped, so "Коли Japan підписала угоду?" is read as Ukrainian.
2. A script that only one language uses names it (Greek, Hebrew, Thai, Georgian, ...; kana: Japanese, Hangul:
   Korean, other CJK: Chinese), and so do Cyrillic letters that only one language has (ї є ґ, or і without ы э ё:
   Ukrainian; ы э ё without і: Russian; ў: Belarusian; қ ғ ү ...: Kazakh).
3. A Latin-script question in which at least a third of the words (names left out) are English function or question
   words ("who", "the", "did", "how", ...) is English, and so is one with such a word whose words are nearly all
   whole words of the bundled model's English vocabulary (`english.py`). A detector alone is unreliable on a
   question of three or four words ("who won", "reconstruction plan").
4. Otherwise the detector decides among the 39 languages of `DETECTOR_LANGUAGES`, or returns None when its
   probability for the first is under `MIN_PROBABILITY`.

`mostly_other_language(text, "en")` first checks the script: when most letters are in a script English does not use
(Cyrillic, CJK, Arabic, ...), that alone decides; the detector is consulted only to name a language whose script
several languages share (Cyrillic without telling letters, Arabic, Devanagari).

Measured by `train/fit_language.py` (py3langid 0.4.0, Python 3.11), which chooses `MIN_PROBABILITY`, on 6,122
English questions (the SQuAD tune split and the team's questions on the bundled corpus, each also typed in lower case
without a question mark, and the casual ones of `tests/test_language.py`) and 121 short questions in 39 other
languages. With steps 1 to 3 and a minimum probability of 0.5: of the English questions, 2 SQuAD ones, which quote a
German hymn title, were taken for another language (lingua 2.1.1, as it was set up here before, took 42 on the same
questions: short ones built on one rare technical term); of the others, 115 were told not English (lingua: 110)
and 110 named right (lingua: 99). Lower values tell more foreign questions but take casual English ones ("aid to
ukraine", "reconstruction plan") for another language.
Left out of `DETECTOR_LANGUAGES`: Latin, Esperanto and small languages that took English names for theirs.

Cost: the model is read when the detector is first used (0.5 s, +70 MB resident besides numpy), once, under a lock
(`_detector`); importing this module does not read it, and a question that steps 1 to 3 decide never does. A detector
call takes 0.02 ms.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import NamedTuple

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from .english import looks_english

__all__ = ["language_name", "mostly_other_language", "question_language"]

# Languages the detector chooses between; a script of one language (Greek, Hebrew, CJK, Thai, ...) never reaches it.
# (Lists of codes and words are written as words: SIM905 would have them one a line.)
MAX_CHARS = 2000  # a pasted page is judged on its start
DETECTOR_LANGUAGES = (  # noqa: SIM905
    # Latin script: the EU's languages and the largest others written in it.
    "en de fr es it pt nl pl cs sk sl hr sr ro hu tr az sv da nb fi et lv lt ca vi id ms sq "
    # Cyrillic (Kazakh is told by its letters: the detector's rules mistook Ukrainian "Що у Києві?" for it).
    "uk ru be bg mk "
    # Arabic and Devanagari scripts.
    "ar fa ur hi mr"
).split()
MIN_PROBABILITY = 0.5  # fitted by train/fit_language.py (its docstring says how)
DETECTOR_CODES = {"nb": "no"}  # py3langid's codes where they differ from ISO 639-1 (it knows one Norwegian)
# Scripts that one language alone uses.
SCRIPT_LANGUAGE = {
    "GREEK": "el",
    "HEBREW": "he",
    "THAI": "th",
    "GEORGIAN": "ka",
    "ARMENIAN": "hy",
    "BENGALI": "bn",
    "GURMUKHI": "pa",
    "GUJARATI": "gu",
    "TAMIL": "ta",
    "TELUGU": "te",
}
CJK_PARTS = {"CJK": "CJK", "HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "BOPOMOFO": "CJK"}
UNSPACED = {"CJK", "THAI"}  # written without spaces between words: length is counted in letters
# The scripts each language is written in; any language not listed is written in Latin.
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: frozenset({script}) for script, code in SCRIPT_LANGUAGE.items()},
    **{code: frozenset({"CYRILLIC"}) for code in ("ru", "uk", "be", "bg", "mk", "kk", "mn")},
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    **{code: frozenset({"CJK"}) for code in ("zh", "ja", "ko")},
    **{code: frozenset({"ARABIC"}) for code in ("ar", "fa", "ur")},
    **{code: frozenset({"DEVANAGARI"}) for code in ("hi", "mr", "ne")},
}

KAZAKH_LETTERS = set("әғқңөұүһ")
UKRAINIAN_LETTERS = set("їєґ")
RUSSIAN_LETTERS = set("ыэё")  # Belarusian has them too, with і and ў
SERBIAN_LETTERS = set("ђћ")
MACEDONIAN_LETTERS = set("ѓќѕ")

PUNCTUATION = ".,;:!?¿¡\"'«»()[]{}“”„‘’‹›-–—…/\\*"
UNDETERMINED = "und"  # ISO 639-2 for a language that cannot be told

# English names of the codes this module returns, for messages ("code:Name, ...").
_NAMES = dict(
    pair.split(":")
    for pair in (  # noqa: SIM905 (a list literal would take a line a language)
        "af:Afrikaans, ar:Arabic, az:Azerbaijani, be:Belarusian, bg:Bulgarian, bn:Bengali, ca:Catalan, cs:Czech, "
        "da:Danish, de:German, el:Greek, en:English, es:Spanish, et:Estonian, fa:Persian, fi:Finnish, fr:French, "
        "gu:Gujarati, he:Hebrew, hi:Hindi, hr:Croatian, hu:Hungarian, hy:Armenian, id:Indonesian, it:Italian, "
        "ja:Japanese, ka:Georgian, kk:Kazakh, ko:Korean, lt:Lithuanian, lv:Latvian, mk:Macedonian, mn:Mongolian, "
        "mr:Marathi, ms:Malay, nb:Norwegian Bokmål, ne:Nepali, nl:Dutch, nn:Norwegian Nynorsk, pa:Punjabi, "
        "pl:Polish, pt:Portuguese, ro:Romanian, ru:Russian, sk:Slovak, sl:Slovene, sq:Albanian, sr:Serbian, "
        "sv:Swedish, ta:Tamil, te:Telugu, th:Thai, tr:Turkish, uk:Ukrainian, ur:Urdu, vi:Vietnamese, zh:Chinese"
    ).split(", ")
)
_NAMES[UNDETERMINED] = "Undetermined"

_lock = threading.Lock()
_built: LanguageIdentifier | None = None


class _Word(NamedTuple):
    text: str
    script: str  # the script of most of its letters, CJK parts merged
    letters: int
    name: bool


def _detector() -> LanguageIdentifier:
    """The detector, built on first use, once, whatever the number of threads."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages([DETECTOR_CODES.get(code, code) for code in DETECTOR_LANGUAGES])
                _built = identifier
    return _built


def _ranked(text: str) -> list[tuple[str, float]]:
    """The detector's languages for `text`, most likely first, as ISO 639-1 codes with their probabilities."""
    codes = {theirs: ours for ours, theirs in DETECTOR_CODES.items()}
    return [(codes.get(code, code), float(p)) for code, p in _detector().rank(text)]


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name: LATIN, CYRILLIC, HIRAGANA, CJK, ..."""
    name = unicodedata.name(char, "")
    if name.startswith(("FULLWIDTH LATIN", "HALFWIDTH LATIN")):
        return "LATIN"
    if name.startswith(("HALFWIDTH KATAKANA", "KATAKANA-HIRAGANA", "IDEOGRAPHIC")):
        return "KATAKANA" if "KATAKANA" in name else "CJK"
    if name.startswith("HALFWIDTH HANGUL"):
        return "HANGUL"
    return name.split(" ", 1)[0] or "OTHER"


def _words(text: str) -> list[_Word]:
    """The words of `text` that have letters, each with its script and whether it looks like a name."""
    tokens = text[:MAX_CHARS].split()
    cased = [c for c in "".join(tokens) if c.isupper() or c.islower()]
    shouted = len(cased) > 3 and sum(c.isupper() for c in cased) * 2 > len(cased)  # capitals tell nothing then
    words = []
    initial = True  # at the start of a sentence, where any word is capitalised
    for token in tokens:
        word = token.strip(PUNCTUATION)
        letters = [c for c in word if c.isalpha()]
        if letters:
            counts: dict[str, int] = {}
            for c in letters:
                script = CJK_PARTS.get(_script(c), _script(c))
                counts[script] = counts.get(script, 0) + 1
            capitals = sum(c.isupper() for c in letters)
            name = not shouted and (capitals >= 2 or (capitals == 1 and not initial and word[0].isupper()))
            words.append(_Word(word, max(counts, key=counts.__getitem__), len(letters), name))
            initial = False
        if token.rstrip("\"')]»”’").endswith((".", "!", "?")):
            initial = True
    return words


def _main_script(words: list[_Word]) -> tuple[str, float] | None:
    """The script of most letters, names left out unless there is nothing else, and its share of the letters."""
    counted = [w for w in words if not w.name] or words
    counts: dict[str, int] = {}
    for w in counted:
        counts[w.script] = counts.get(w.script, 0) + w.letters
    if not counts:
        return None
    script = max(counts, key=counts.__getitem__)
    return script, counts[script] / sum(counts.values())


def _by_letters(words: list[_Word], script: str) -> str | None:
    """The language that the script or its letters alone tell, if they do."""
    if script in SCRIPT_LANGUAGE:
        return SCRIPT_LANGUAGE[script]
    text = "".join(w.text for w in words if w.script == script)
    if script == "CJK":
        parts = [_script(c) for c in text if c.isalpha()]
        if parts.count("HANGUL") * 2 >= len(parts):
            return "ko"
        return "ja" if "HIRAGANA" in parts or "KATAKANA" in parts else "zh"
    if script == "CYRILLIC":
        letters = set(text.lower())
        if letters & KAZAKH_LETTERS:
            return "kk"
        if "ў" in letters:
            return "be"
        if letters & UKRAINIAN_LETTERS:
            return "uk"
        if "і" in letters:
            return "be" if letters & RUSSIAN_LETTERS else "uk"
        if letters & RUSSIAN_LETTERS:
            return "ru"
        if letters & SERBIAN_LETTERS:
            return "sr"
        if letters & MACEDONIAN_LETTERS:
            return "mk"
    return None


def question_language(text: str) -> str | None:
    """ISO 639-1 code of the language `text` is mostly written in ("en", "uk", ...), or None when it cannot tell.

    None for a question too short to tell (one word, fewer than four letters) or made only of numbers and names.
    """
    words = _words(text)
    main = _main_script(words)
    if main is None:
        return None
    script = main[0]
    # Latin names are left out (they are English, Japanese, ... whatever the question); names in another script are
    # inflected by the question's language ("у Києві"), so they stay.
    content = [w for w in words if w.script == script and not (w.name and script == "LATIN")]
    letters = sum(w.letters for w in content)
    if letters < 2 or (script not in UNSPACED and (len(content) < 2 or letters < 4)):
        return None
    told = _by_letters(content, script)
    if told is not None:
        return told
    if script == "LATIN" and looks_english([w.text for w in content]):
        return "en"
    code, probability = _ranked(" ".join(w.text for w in content))[0]
    return code if probability >= MIN_PROBABILITY else None


def mostly_other_language(text: str, model_language: str | None) -> str | None:
    """The language of `text` when it is mostly one other than `model_language`, else None.

    `model_language` is the ISO 639-1 code of the language the embedding model reads ("en" for the bundled one);
    None means a multilingual or unknown model, and then the answer is always None. When most letters are in a
    script the model's language is not written in, that decides: the answer is then never None (UNDETERMINED, "und",
    when not even the detector can name the language).
    """
    if not model_language:
        return None
    model = model_language.strip().lower().replace("_", "-").split("-")[0]
    words = _words(text)
    main = _main_script(words)
    if main is not None and main[1] > 0.5 and main[0] not in LANGUAGE_SCRIPTS.get(model, frozenset({"LATIN"})):
        script = main[0]
        found = question_language(text) or _by_letters(words, script)
        if found is None:
            ranked = _ranked(" ".join(w.text for w in words if w.script == script))
            found = ranked[0][0] if ranked and ranked[0][1] > 0 else UNDETERMINED
        return found if found != model else None
    found = question_language(text)
    return found if found is not None and found != model else None


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code, for messages: "uk" -> "Ukrainian"; an unknown code is returned as it is."""
    return _NAMES.get(code.strip().lower(), code)
