"""Which language a question is written in, so that an English-only model is not handed a question it cannot read.

The bundled embedding model (all-MiniLM-L6-v2) reads English only. This module tells the language of a question:
`question_language` names it, `mostly_other_language` says whether it differs from the model's, `language_name`
spells a code out for messages.

Why lingua (lingua-language-detector): its models ship inside the wheel (nothing is downloaded, it works offline),
it is Apache-2.0 (compatible with this project's MIT licence), it is maintained, and it is built for short text,
which is what questions are.

How a question is read, cheapest step first:

1. Letters are sorted by script (Latin, Cyrillic, CJK, Arabic, ...), names left out (a word in capitals, or
   capitalised but not at the start of a sentence: "Japan", "JICA", "Fumio Kishida"). The script with most letters is
   the question's; words in other scripts are dropped, so "Коли Japan підписала угоду?" is read as Ukrainian.
2. A script that only one language uses names it (Greek, Hebrew, Thai, Georgian, ...; kana: Japanese, Hangul:
   Korean, other CJK: Chinese), and so do Cyrillic letters that only one language has (ї є ґ, or і without ы э ё:
   Ukrainian; ы э ё without і: Russian; ў: Belarusian; қ ғ ү ...: Kazakh).
3. A Latin-script question in which at least a third of the words (names left out) are English function or question
   words ("who", "the", "did", "how", ...) is English, and so is one with such a word whose words are nearly all
   whole words of the bundled model's English vocabulary (`english.py`). The low-accuracy detector alone is
   unreliable on a question of three or four words: it read "who won" as Indonesian and "who is the ceo" as German
   (numbers below).
4. Otherwise the lingua detector decides, or returns None when no language is clearly ahead.

`mostly_other_language(text, "en")` first checks the script: when most letters are in a script English does not use
(Cyrillic, CJK, Arabic, ...), that alone decides; the detector is consulted only to name a language whose script
several languages share (Cyrillic without telling letters, Arabic, Devanagari).

Detector settings, measured on this machine (lingua 2.1.1, Python 3.11, 2 cores) on 159 short English questions
typed as people type them (lower case, typos, no question mark, foreign names; 60 of them written after the rules
below, to check them) and 104 questions in 28 other languages:

- The detector alone, all 75 languages, high-accuracy mode: 14 of the first 99 English questions came out as another
  language ("Who is Alyona Getmanchuk?" Tsonga, "Where is Hiroshima?" Swahili, "why" Welsh); with a minimum relative
  distance of 0.1, none, but 42 came out None. Its memory rules it out: +1.2 GB with all models loaded, and still
  +720 MB for 30 languages.
- The detector alone in low-accuracy mode (+140 MB for all 75 languages): 32 to 43 of 99 came out as another language
  ("who won" Indonesian, "when did the war start" Lithuanian, "who is olaf scholz" German) with 30, 45 or 75
  languages, and still 8 to 11 of 99 at a minimum relative distance of 0.5, which made half of them None.
- Chosen: low-accuracy mode, the 39 languages of `DETECTOR_LANGUAGES` (those of other scripts are told by step 2;
  left out are Latin, Esperanto and the small languages, such as Tsonga, Tswana, Shona, Yoruba or Welsh, that took
  English names for theirs), a minimum relative distance of 0.2, and steps 1 to 3. English: 0 of 159 came out as
  another language, 13 came out None ("why", "ok", "cost"). Others: 100 of 104 not English, 93 of 104 the right
  language; the misses are short Latin-script questions named as a neighbour ("Vem skrev under avtalet?" Bokmål,
  "Kto jest ambasadorem?" Spanish) or None ("Kolik stojí projekt?"). Without step 3: 9 of 159 English questions came
  out as another language and 51 None. A distance of 0 or 0.1: 3 or 1 of 159; 0.3: none, but 91 of 104 right.

Cost of the chosen detector, with its models loaded when it is built (no question waits for a lazy load): built in
0.3 s; resident memory +71 MB once built and +89 MB once in use (flat from 100 to 20,000 questions); 0.15 to 0.2 ms
a detector call, 0.1 to 0.15 ms a `question_language` call on average (steps 1 to 3 decide many without it). It is
built once, on first use, under a lock (`_detector`); importing this module does not build it, and a question that
steps 1 to 3 decide never builds it.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import NamedTuple

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

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
LOW_ACCURACY = True
MIN_RELATIVE_DISTANCE = 0.2
# Scripts that one language alone uses (of those lingua knows).
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

_NAMES = {lang.iso_code_639_1.name.lower(): lang.name.title() for lang in Language.all()}
_NAMES.update({"nb": "Norwegian Bokmål", "nn": "Norwegian Nynorsk", UNDETERMINED: "Undetermined"})

_lock = threading.Lock()
_built: LanguageDetector | None = None


class _Word(NamedTuple):
    text: str
    script: str  # the script of most of its letters, CJK parts merged
    letters: int
    name: bool


def _detector() -> LanguageDetector:
    """The detector, built on first use, once, whatever the number of threads."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                languages = [lang for lang in Language.all() if lang.iso_code_639_1.name.lower() in DETECTOR_LANGUAGES]
                builder = LanguageDetectorBuilder.from_languages(*languages)
                if LOW_ACCURACY:
                    builder = builder.with_low_accuracy_mode()
                _built = (
                    builder.with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
                    .with_preloaded_language_models()
                    .build()
                )
    return _built


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


def _code(language: Language | None) -> str | None:
    return None if language is None else language.iso_code_639_1.name.lower()


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
    return _code(_detector().detect_language_of(" ".join(w.text for w in content)))


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
            values = _detector().compute_language_confidence_values(
                " ".join(w.text for w in words if w.script == script)
            )
            found = _code(values[0].language) if values and values[0].value > 0 else UNDETERMINED
        return found if found != model else None
    found = question_language(text)
    return found if found is not None and found != model else None


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code, for messages: "uk" -> "Ukrainian"; an unknown code is returned as it is."""
    return _NAMES.get(code.strip().lower(), code)
