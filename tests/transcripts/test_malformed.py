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


def test_vtt_cue_without_timing(tmp_path):
    assert _fails(tmp_path, "c.vtt", "WEBVTT\n\njust some text\n").startswith("c.vtt:3: cue without a timing line")


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
