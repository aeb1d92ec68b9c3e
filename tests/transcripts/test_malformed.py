"""Malformed transcripts: the message names the file and the line or key."""

from __future__ import annotations

import pytest

from faceexpr_cli.transcripts import TranscriptError, load_transcript


def _fails(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(TranscriptError) as info:
        load_transcript(p)
    return info.value.one_line().replace(str(tmp_path) + "/", "")


def test_vtt_without_header(tmp_path):
    assert _fails(tmp_path, "a.vtt", "00:00:01.000 --> 00:00:02.000\nhi\n").startswith("a.vtt:1: missing the WEBVTT")


def test_vtt_bad_timing_names_the_line(tmp_path):
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\n00:00:03.000 --> 00:0x:04.000\nthere\n"
    assert _fails(tmp_path, "b.vtt", text).startswith("b.vtt:6: bad cue timing")


def test_vtt_block_without_timing_is_skipped_with_a_warning_naming_the_line(tmp_path):
    # as browsers do: a block with no "-->" in its first two lines is not a cue; the cues around it are read
    p = tmp_path / "c.vtt"
    p.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nplease smile\n\njust some text\nand more\n\n"
                 "00:00:03.000 --> 00:00:04.000\nnow frown\n")
    [tl] = load_transcript(p)
    assert [w.text for w in tl.words] == ["please", "smile", "now", "frown"]
    assert [(s.start, s.end) for s in tl.segments] == [(1.0, 2.0), (3.0, 4.0)]
    [warning] = tl.warnings
    assert warning.startswith("line 6: skipped a block without a timing line: 'just some text'")


def test_vtt_bad_timing_after_a_skipped_block_still_fails_the_file(tmp_path):
    text = "WEBVTT\n\nstray words\n\n00:00:01.000 --> 00:00:0x.000\nhi\n"
    assert _fails(tmp_path, "c2.vtt", text).startswith("c2.vtt:5: bad cue timing '00:00:01.000 --> 00:00:0x.000'")


def test_srt_bad_timing_names_the_line(tmp_path):
    text = "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,000 -> 00:00:04,000\nthere\n"
    assert _fails(tmp_path, "d.srt", text).startswith("d.srt:5: cue without a timing line")
    text = "1\n00:00:01,000 --> 00:00:02,00x\nhi\n"
    assert _fails(tmp_path, "e.srt", text).startswith("e.srt:2: bad cue timing")


def test_json_syntax_error_names_the_line(tmp_path):
    msg = _fails(tmp_path, "f.json", '{"segments": [\n  {"start": 1.0,\n   "end": 2.0 "text": "x"}\n]}')
    assert msg.startswith("f.json:3: not valid JSON")


def test_whisper_missing_keys_are_named(tmp_path):
    assert "key segments[1].end: missing" in _fails(
        tmp_path, "g.json", '{"segments": [{"start": 0, "end": 1, "text": "a"}, {"start": 2, "text": "b"}]}')
    assert "key segments[0].words[0].start: expected a number" in _fails(
        tmp_path, "h.json", '{"segments": [{"start": 0, "end": 1, "text": "a", "words": [{"word": "a", "start": "x"}]}]}')


def test_seed_entry_problems_are_named(tmp_path):
    assert "key [1].transcription_timestamp: missing" in _fails(
        tmp_path, "i.json", '[{"transcription_timestamp": "[0.0] a"}, {"video_path": "v.mp4", "transcription_timestamp": 3}]')
    assert "text before the first [time] mark" in _fails(
        tmp_path, "j.json", '[{"video_path": "v.mp4", "transcription_timestamp": "hello [1.0] a"}]')


def test_table_problems(tmp_path):
    assert _fails(tmp_path, "k.csv", "begin,finish,word\n0,1,a\n").startswith("k.csv:1: header")
    assert _fails(tmp_path, "l.tsv", "start\tend\tword\n0\t1\ta\nzero\t2\tb\n").startswith("l.tsv:3: start/end")


def test_empty_and_unknown(tmp_path):
    assert "is empty" in _fails(tmp_path, "m.vtt", "  \n")
    assert "not a transcript format" in _fails(tmp_path, "n.txt", "hello world")
