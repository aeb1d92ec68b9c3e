"""Finding keywords in a timeline: whole words (default), prefixes, regular expressions, or the seed's substrings.

Matching runs over the whole word sequence, so a phrase split across two caption lines ("look" | "surprised")
still matches. Whole-word matching compares normalised words (lower case, outer punctuation removed); with
``stem=True`` both sides are reduced by Snowball's English stemmer so that "smiled" and "smiling" match
"smile" and "cried" matches "cry" - only when asked, because it also merges words a user may want apart. Sound
tags and speaker marks never reach the words (``transcripts.speech``), so they cannot match."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from faceexpr_cli.errors import DependencyError, UsageError
from faceexpr_cli.registry import Registry
from faceexpr_cli.transcripts.timeline import Timeline, normalise_word


@dataclass
class Hit:
    keyword: str  # as the user wrote it
    matched_text: str  # the transcript's words
    first_word: int
    last_word: int  # inclusive
    segment: int  # segment of the first word
    start: float  # first word's start
    end: float  # last word's end


MatchFn = Callable[[Timeline, str, bool], list[Hit]]
MATCHERS: Registry[MatchFn] = Registry("match mode")


def parse_keywords(values: list[str] | str | None) -> list[str]:
    """``["smile,look surprised", "frown"]`` -> ["smile", "look surprised", "frown"] (order kept, no repeats)."""
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = " ".join(part.strip().strip('"').strip("'").split())
            if part and part not in out:
                out.append(part)
    if not out:
        raise UsageError("the keyword list is empty", 'pass --keywords smile,"look surprised" or use --random N')
    return out


@functools.lru_cache(maxsize=1)
def _english_stemmer():
    try:
        import snowballstemmer
    except ImportError as exc:
        raise DependencyError("--stem needs the snowballstemmer package", "pip install snowballstemmer") from exc
    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball's English (Porter 2) stem: cry / cried / cries / crying -> cri; smile / smiled / smiling -> smile."""
    return _english_stemmer().stemWord(word.lower())


def _hit(tl: Timeline, keyword: str, i: int, j: int) -> Hit:
    words = tl.words[i:j + 1]
    return Hit(keyword, " ".join(w.text for w in words), i, j, words[0].segment, words[0].start, words[-1].end)


def _sequence_match(tl: Timeline, keyword: str, use_stem: bool, same: Callable[[str, str], bool]) -> list[Hit]:
    tokens = [normalise_word(t) for t in keyword.split()]
    tokens = [t for t in tokens if t]
    if not tokens:
        return []
    norm = [w.norm for w in tl.words]
    if use_stem:
        tokens = [stem(t) for t in tokens]
        norm = [stem(n) for n in norm]
    hits = []
    k = len(tokens)
    for i in range(len(norm) - k + 1):
        if all(same(norm[i + m], tokens[m]) for m in range(k)):
            hits.append(_hit(tl, keyword, i, i + k - 1))
    return hits


@MATCHERS.register("word")
def match_words(tl: Timeline, keyword: str, use_stem: bool = False) -> list[Hit]:
    return _sequence_match(tl, keyword, use_stem, lambda word, token: word == token)


@MATCHERS.register("prefix")
def match_prefix(tl: Timeline, keyword: str, use_stem: bool = False) -> list[Hit]:
    return _sequence_match(tl, keyword, use_stem, lambda word, token: word.startswith(token))


def _char_match(tl: Timeline, keyword: str, pattern: re.Pattern) -> list[Hit]:
    """Run ``pattern`` over the words joined by spaces and map each match back to the words it touches."""
    starts, pieces, pos = [], [], 0
    for w in tl.words:
        starts.append(pos)
        pieces.append(w.text.lower())
        pos += len(w.text) + 1
    text = " ".join(pieces)
    hits = []
    for m in pattern.finditer(text):
        if m.end() == m.start():
            continue
        i = bisect.bisect_right(starts, m.start()) - 1
        j = bisect.bisect_right(starts, m.end() - 1) - 1
        hits.append(_hit(tl, keyword, max(0, i), max(0, j)))
    return hits


@MATCHERS.register("regex")
def match_regex(tl: Timeline, keyword: str, use_stem: bool = False) -> list[Hit]:
    try:
        pattern = re.compile(keyword, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(f"bad regular expression {keyword!r}: {exc}") from exc
    return _char_match(tl, keyword, pattern)


@MATCHERS.register("substring")
def match_substring(tl: Timeline, keyword: str, use_stem: bool = False) -> list[Hit]:
    """The seed's rule: case-insensitive substring, so "smile" also hits "smiled" and "smiley"."""
    return _char_match(tl, keyword, re.compile(re.escape(keyword.lower())))


def find_hits(tl: Timeline, keywords: list[str], match: str = "word", use_stem: bool = False) -> list[Hit]:
    """Every hit of every keyword, in time order."""
    fn = MATCHERS.get(match)
    hits = [h for kw in keywords for h in fn(tl, kw, use_stem)]
    return sorted(hits, key=lambda h: (h.start, h.first_word, keywords.index(h.keyword)))
