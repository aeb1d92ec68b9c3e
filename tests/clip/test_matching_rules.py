"""Keyword matching word by word: each mode's exact hits (words, segment, times), the character-to-word mapping of
regex and substring matches at word edges, the modes' defaults, keyword parsing and the one-line errors."""

from __future__ import annotations

import sys

import pytest

from faceexpr_cli.clip import matching
from faceexpr_cli.clip.matching import (
    Hit,
    find_hits,
    match_prefix,
    match_regex,
    match_substring,
    match_words,
    parse_keywords,
)
from faceexpr_cli.errors import DependencyError, UsageError
from faceexpr_cli.transcripts.timeline import TimelineBuilder


def _tl():
    """Lower-cased words joined by spaces: "smile, a b smiled smile." (word starts at 0, 7, 9, 11, 18)."""
    b = TimelineBuilder("t.vtt", "test")
    b.add(0.0, 1.0, "Smile, a", [("Smile,", 0.0, 0.4), ("a", 0.5, 0.6)])
    b.add(1.0, 4.0, "b smiled smile.", [("b", 1.0, 1.1), ("smiled", 2.0, 2.4), ("smile.", 3.0, 3.5)])
    return b.finish()


def _texts(hits):
    return [h.matched_text for h in hits]


def test_a_phrase_hit_spans_its_words_and_keeps_the_first_word_segment():
    [hit] = match_words(_tl(), "A B")
    # words 1 ("a", segment 0, 0.5-0.6) and 2 ("b", segment 1, 1.0-1.1)
    assert hit == Hit("A B", "a b", 1, 2, 0, 0.5, 1.1)


def test_whole_words_ignore_case_and_outer_punctuation_but_not_word_forms():
    hits = match_words(_tl(), "smile!")  # no use_stem: the default is plain words
    assert _texts(hits) == ["Smile,", "smile."]
    assert [(h.first_word, h.last_word, h.segment, h.start, h.end) for h in hits] == [
        (0, 0, 0, 0.0, 0.4), (4, 4, 1, 3.0, 3.5)]
    assert _texts(match_words(_tl(), "smile", True)) == ["Smile,", "smiled", "smile."]  # stemmed


def test_prefix_matches_word_starts_and_does_not_stem_by_default():
    assert _texts(match_prefix(_tl(), "smiled")) == ["smiled"]
    assert _texts(match_prefix(_tl(), "smi")) == ["Smile,", "smiled", "smile."]
    # stemmed, "smiled" becomes "smile", which every form starts with
    assert _texts(match_prefix(_tl(), "smiled", True)) == ["Smile,", "smiled", "smile."]


def test_a_keyword_of_punctuation_only_matches_nothing():
    assert match_words(_tl(), "!!! ...") == []
    assert match_prefix(_tl(), "--") == []
    assert find_hits(_tl(), ["?"]) == []


def test_a_phrase_longer_than_the_transcript_matches_nothing():
    assert match_words(_tl(), "smile a b smiled smile again") == []
    assert _texts(match_words(_tl(), "smile a b smiled smile")) == ["Smile, a b smiled smile."]


def test_regex_hits_map_to_the_words_they_touch():
    tl = _tl()
    assert _texts(match_regex(tl, "a")) == ["a"]  # "a" only as word 1 (ends where the word ends)
    assert _texts(match_regex(tl, "a b")) == ["a b"]  # across two one-letter words
    assert _texts(match_regex(tl, "b")) == ["b"]
    assert _texts(match_regex(tl, "smile")) == ["Smile,", "smiled", "smile."]  # first word included
    assert _texts(match_regex(tl, "e, a")) == ["Smile, a"]
    hit = match_regex(tl, "led sm")[0]  # "smiled smile."
    assert (hit.first_word, hit.last_word, hit.start, hit.end, hit.segment) == (3, 4, 2.0, 3.5, 1)


def test_regex_ignores_case_and_skips_empty_matches():
    tl = _tl()
    assert _texts(match_regex(tl, "SMIL(ED)")) == ["smiled"]
    # "(smile)?" also matches the empty string between words: only the three real matches count
    assert _texts(match_regex(tl, "(smile)?")) == ["Smile,", "smiled", "smile."]
    assert match_regex(tl, "x*") == []


def test_a_bad_regex_is_one_usage_error_naming_it():
    with pytest.raises(UsageError, match=r"^bad regular expression '\(unclosed': missing \)"):
        match_regex(_tl(), "(unclosed")


def test_substring_is_literal_and_ignores_case():
    tl = _tl()
    assert _texts(match_substring(tl, "e.")) == ["smile."]  # a literal dot, not "any character"
    assert _texts(match_substring(tl, "SMILE")) == ["Smile,", "smiled", "smile."]
    assert _texts(match_substring(tl, "d s")) == ["smiled smile."]


def test_find_hits_defaults_to_plain_whole_words():
    assert _texts(find_hits(_tl(), ["smile"])) == ["Smile,", "smile."]
    assert _texts(find_hits(_tl(), ["smile"], "word", True)) == ["Smile,", "smiled", "smile."]


def test_find_hits_orders_by_time_then_by_the_keyword_order():
    tl = _tl()
    hits = find_hits(tl, ["smile", "smi"], "prefix")
    assert [(h.keyword, h.start) for h in hits] == [("smile", 0.0), ("smi", 0.0), ("smile", 2.0), ("smi", 2.0),
                                                    ("smile", 3.0), ("smi", 3.0)]
    hits = find_hits(tl, ["smi", "smile"], "prefix")
    assert [h.keyword for h in hits[:2]] == ["smi", "smile"]
    hits = find_hits(tl, ["b", "a"])  # the later keyword first in the list, still in time order
    assert [(h.keyword, h.start) for h in hits] == [("a", 0.5), ("b", 1.0)]


def test_an_unknown_match_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="fuzzy"):
        find_hits(_tl(), ["smile"], "fuzzy")


def test_parse_keywords_takes_a_string_quotes_and_spaces():
    assert parse_keywords("smile,frown") == ["smile", "frown"]
    assert parse_keywords("smile") == ["smile"]
    assert parse_keywords(["'look   surprised' , smile", '"frown"']) == ["look surprised", "smile", "frown"]
    assert parse_keywords(["a,,b", "b", "a"]) == ["a", "b"]


@pytest.mark.parametrize("values", [None, [], "", [" , ", "''"]])
def test_parse_keywords_empty_is_a_usage_error_with_the_hint(values):
    with pytest.raises(UsageError) as err:
        parse_keywords(values)
    assert err.value.message == "the keyword list is empty"
    assert err.value.hint == 'pass --keywords smile,"look surprised" or use --random N'


def test_stemming_without_snowballstemmer_is_a_dependency_error(monkeypatch):
    matching._english_stemmer.cache_clear()
    matching.stem.cache_clear()
    monkeypatch.setitem(sys.modules, "snowballstemmer", None)  # import fails
    try:
        with pytest.raises(DependencyError) as err:
            matching.stem("smiled")
        assert err.value.message == "--stem needs the snowballstemmer package"
        assert err.value.hint == "pip install snowballstemmer"
    finally:
        monkeypatch.undo()
        matching._english_stemmer.cache_clear()
        matching.stem.cache_clear()
    assert matching.stem("Smiled") == "smile"  # back to the real stemmer, lower-cased
