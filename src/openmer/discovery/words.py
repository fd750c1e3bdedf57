"""The open vocabulary of emotion words that discovered clusters are named from.

The shipped list (``vocabulary.json`` beside this module, with its sources) holds GoEmotions' 27
categories and neutral (Demszky et al., ACL 2020) and Plutchik's 8 primary emotions (2001); the
label sets of the corpora openmer reads are added through their shared names
(:data:`openmer.datasets.vocabulary.LABEL_VOCABULARY`), so that every class a benchmark holds out
can be named. A user's own list (one word per line, ``#`` starts a comment) replaces it.

A word's *shared name* is what the shared vocabulary maps it to (``joy`` and ``happy`` ->
``happiness``, ``angry`` -> ``anger``), else the word itself: naming accuracy and the known-class
exclusion compare shared names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from openmer.datasets.vocabulary import LABEL_VOCABULARY
from openmer.errors import ConfigError, DataError

__all__ = ["DEFAULT_TEMPLATE", "Vocabulary", "default_vocabulary", "read_word_list", "shared_word"]

VOCABULARY_FILE = "vocabulary.json"
#: the prompt sentence of a word (CUEP's positive template, HCEP Eq. 4, with a full stop)
DEFAULT_TEMPLATE = "This video is {}."


def shared_word(word: str) -> str:
    """The shared name of ``word``: its entry in any corpus's table of
    :data:`~openmer.datasets.vocabulary.LABEL_VOCABULARY` (``joy`` -> ``happiness``), else the
    word itself (lower case, stripped)."""
    w = word.strip().lower()
    for table in LABEL_VOCABULARY.values():
        if w in table:
            return table[w]
    return w


@dataclass(frozen=True)
class Vocabulary:
    """Words to name clusters with, and where each comes from.

    Attributes:
        words: distinct words, in order.
        sources: word -> the lists it comes from (``goemotions``, ``plutchik``, ``corpora``, ``user``).
        template: the prompt sentence, ``{}`` = the word.
    """

    words: tuple[str, ...]
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        if not self.words:
            raise ConfigError("the vocabulary holds no word")
        if len(set(self.words)) != len(self.words):
            raise ConfigError("the vocabulary's words must be distinct")
        if self.template.count("{}") != 1:
            raise ConfigError(f"the prompt template must hold '{{}}' once (the word), got {self.template!r}")

    def sentences(self) -> list[str]:
        """The prompt sentence of every word (``template`` with the word)."""
        return [self.template.format(w) for w in self.words]

    def without(self, shared_names: Iterable[str]) -> Vocabulary:
        """The vocabulary less every word whose shared name is one of ``shared_names`` (e.g. the
        run's known classes, which the clips were rejected as).

        Raises:
            ConfigError: no word would be left.
        """
        drop = {shared_word(s) for s in shared_names}
        keep = tuple(w for w in self.words if shared_word(w) not in drop)
        if not keep:
            raise ConfigError(f"no word of the vocabulary is left once the known classes {sorted(drop)} are "
                              "left out; give a longer word list")
        return Vocabulary(keep, {w: self.sources.get(w, ()) for w in keep}, self.template)


def default_vocabulary(template: str = DEFAULT_TEMPLATE) -> Vocabulary:
    """The shipped vocabulary (see the module docstring) with every corpus's shared names."""
    raw = json.loads(resources.files("openmer.discovery").joinpath(VOCABULARY_FILE).read_text(encoding="utf-8"))
    sources: dict[str, list[str]] = {}
    lists = [*raw["words"].items(), ("corpora", sorted({s for t in LABEL_VOCABULARY.values() for s in t.values()}))]
    for source, words in lists:
        for w in words:
            sources.setdefault(w.lower(), []).append(source)
    return Vocabulary(tuple(sources), {w: tuple(s) for w, s in sources.items()}, template)


def read_word_list(path: str | Path, template: str = DEFAULT_TEMPLATE) -> Vocabulary:
    """A user's word list: one word or phrase per line, ``#`` starts a comment, blank lines skipped,
    repeats kept once.

    Raises:
        DataError: the file is missing, not UTF-8, or holds no word (naming the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "word list not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror or exc})") from None
    words: list[str] = []
    for line in text.splitlines():
        w = line.split("#", 1)[0].strip().lower()
        if w and w not in words:
            words.append(w)
    if not words:
        raise DataError(path, "the word list holds no word (one word per line)")
    return Vocabulary(tuple(words), dict.fromkeys(words, ("user",)), template)


def vocabulary_of(words: Sequence[str], template: str = DEFAULT_TEMPLATE) -> Vocabulary:
    """A vocabulary of the given words (source ``user``)."""
    unique = tuple(dict.fromkeys(w.strip().lower() for w in words if w.strip()))
    return Vocabulary(unique, dict.fromkeys(unique, ("user",)), template)
