"""The contamination guard of ``fairseq-bt-clean``: which protected (valid and test) sentences
a line holds.

Lines are compared by key (:func:`guard_key`): the text (Moses-normalised by the caller) in
Unicode NFKC, without format characters (Unicode category Cf: a byte-order mark, zero-width
space, joiners, soft hyphen, direction marks), case-folded, split on whitespace, each word
stripped of the punctuation (Unicode categories P*) at its start and end, the words left
(none empty) in order. "A dog runs.", "a dog runs !", "\\ufeffA dog\\u200b runs" and
"A dog, runs" have the same key.

A line holds a protected sentence when their keys are equal, or, for a protected sentence of
at least :data:`MIN_WORDS` words, when the sentence's words occur in the line's words as a
run ("Two dogs play in the snow." holds "two dogs play in", not "dogs play"; "Yes." only
lines whose key is "yes"). The protected sentences are indexed by their first
:data:`MIN_WORDS` words, so a line costs one dictionary look-up per word position.
"""
import unicodedata
from collections import defaultdict
from typing import DefaultDict, Dict, List, Set, Tuple

import regex

#: a protected sentence of at least this many words is found inside longer lines too
MIN_WORDS = 4

_FORMAT = regex.compile(r"\p{Cf}+")
# punctuation at the start or the end of a word
_EDGE_PUNCTUATION = regex.compile(r"(?<!\S)\p{P}+|\p{P}+(?!\S)")

Key = Tuple[str, ...]


def guard_key(text: str) -> Key:
    """The words ``text`` is compared by (the rule: the module's docstring)."""
    text = _FORMAT.sub("", unicodedata.normalize("NFKC", text)).casefold()
    return tuple(_EDGE_PUNCTUATION.sub("", text).split())


class Guard:
    """Protected sentences, each under the names of the sets it occurs in."""

    def __init__(self):
        self.names: Dict[Key, Set[str]] = defaultdict(set)
        # first MIN_WORDS words -> the keys (of at least MIN_WORDS words) that start with them
        self.starts: DefaultDict[Key, Set[Key]] = defaultdict(set)

    def __bool__(self) -> bool:
        return bool(self.names)

    def add(self, name: str, key: Key) -> None:
        if not key:  # punctuation only: no words to find
            return
        self.names[key].add(name)
        if len(key) >= MIN_WORDS:
            self.starts[key[:MIN_WORDS]].add(key)

    def find(self, key: Key) -> List[str]:
        """The names of the sets with a sentence that the line of ``key`` holds."""
        found: Set[str] = set(self.names.get(key, ()))
        for i in range(len(key) - MIN_WORDS + 1):
            for sentence in self.starts.get(key[i:i + MIN_WORDS], ()):
                if key[i:i + len(sentence)] == sentence:
                    found |= self.names[sentence]
        return sorted(found)
