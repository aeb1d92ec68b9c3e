"""Sound tags and speaker marks never become words: they match no keyword and take no share of a cue's time."""

from __future__ import annotations

import json

import pytest

from faceexpr_cli.clip.matching import find_hits
from faceexpr_cli.transcripts import load_transcript


def _words(tl):
    return [w.text for w in tl.words]


def test_srt_tags_and_speaker_marks_are_not_words_and_do_not_shift_interpolated_times(tmp_path):
    p = tmp_path / "a.srt"
    p.write_text("1\n00:00:00,000 --> 00:00:04,000\n[Music] smile for me\n\n"
                 "2\n00:00:04,000 --> 00:00:06,000\n>> JOHN: now (laughs)\n- frown [ crowd cheering ]\n\n"
                 "3\n00:00:06,000 --> 00:00:08,000\nSPEAKER 2: I said: cry\n")
    [tl] = load_transcript(p)
    assert _words(tl) == ["smile", "for", "me", "now", "frown", "I", "said:", "cry"]
    assert tl.segments[0].text == "[Music] smile for me"  # the caption's text is kept
    w = {x.text: x for x in tl.words}
    # interpolated by character length over the real words only: smile 5, for 3, me 2 of 10 characters in 4 s
    assert (w["smile"].start, w["smile"].end) == pytest.approx((0.0, 2.0))
    assert (w["for"].start, w["me"].start, w["me"].end) == pytest.approx((2.0, 3.2, 4.0))
    assert (w["now"].start, w["now"].end, w["frown"].end) == pytest.approx((4.0, 4.0 + 2 * 3 / 8, 6.0))
    for tag in ("music", "laughs", "john", "speaker", "crowd", "cheering"):
        assert find_hits(tl, [tag]) == [] and find_hits(tl, [tag], "substring") == []
    [hit] = find_hits(tl, ["smile"])
    assert (hit.start, hit.end) == pytest.approx((0.0, 2.0))


def test_youtube_timed_tag_ends_the_word_before_it_and_leaves_the_next_word_alone(tmp_path):
    p = tmp_path / "t.en.vtt"
    p.write_text("WEBVTT\nKind: captions\n\n00:00:01.000 --> 00:00:04.000 align:start position:0%\n \n"
                 "smile<00:00:01.500><c> [Applause]</c><00:00:02.500><c> now</c><00:00:03.000><c> &gt;&gt;</c>"
                 "<00:00:03.200><c> cry</c>\n")
    [tl] = load_transcript(p)
    assert _words(tl) == ["smile", "now", "cry"]
    w = {x.text: x for x in tl.words}
    assert (w["smile"].start, w["smile"].end) == pytest.approx((1.0, 1.5))  # not until "now" at 2.5
    assert (w["now"].start, w["now"].end) == pytest.approx((2.5, 3.0))
    assert w["cry"].start == pytest.approx(3.2)
    assert all(x.timed for x in tl.words)


def test_untimed_tag_line_of_auto_captions_is_a_segment_without_words(tmp_path):
    p = tmp_path / "m.vtt"
    p.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n \nhi<00:00:01.000><c> there</c>\n\n"
                 "00:00:02.000 --> 00:00:04.000\nhi there\n[Music]\n")
    [tl] = load_transcript(p)
    assert _words(tl) == ["hi", "there"]
    assert [s.text for s in tl.segments] == ["hi there", "[Music]"]
    assert tl.segments[1].n_words == 0


def test_whisper_tag_words_and_plain_vtt_marks(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"segments": [{"start": 0.0, "end": 3.0, "text": " [Music] smile please", "words": [
        {"word": " [Music]", "start": 0.0, "end": 1.0}, {"word": " smile", "start": 1.2, "end": 1.6},
        {"word": " please", "start": 1.7, "end": 2.0}]}]}))
    [tl] = load_transcript(p)
    assert [(x.text, x.start, x.end) for x in tl.words] == [("smile", 1.2, 1.6), ("please", 1.7, 2.0)]
    v = tmp_path / "p.vtt"
    v.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Ann>- smile</v>\n<v Bob>- no >> MARY: yes</v>\n")
    [tl] = load_transcript(v)
    # a speaker mark counts at the start of a line and after a mid-line ">>" (a change of speaker)
    assert _words(tl) == ["smile", "no", "yes"]


def test_words_that_look_like_marks_inside_speech_stay(tmp_path):
    p = tmp_path / "k.srt"
    p.write_text("1\n00:00:00,000 --> 00:00:02,000\nnote: smile - and well-being & joy\nso BOB: hi\n")
    [tl] = load_transcript(p)
    assert _words(tl) == ["note:", "smile", "and", "well-being", "&", "joy", "so", "BOB:", "hi"]
