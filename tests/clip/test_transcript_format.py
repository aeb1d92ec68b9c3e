"""`--transcript-format` reaches the reader when a transcript is given as an input (not only beside a video)."""

from __future__ import annotations

import pytest

from faceexpr_cli.clip.inputs import resolve_inputs
from faceexpr_cli.transcripts.base import TranscriptError

SRT = "1\n00:00:01,000 --> 00:00:02,500\nhello there world\n\n2\n00:00:03,000 --> 00:00:04,000\nsecond line\n"


def test_named_format_overrides_the_suffix(tmp_path):
    (tmp_path / "talk.mp4").touch()
    (tmp_path / "talk.vtt").write_text(SRT, encoding="utf-8")  # SRT text under a WebVTT name
    [item] = resolve_inputs([tmp_path / "talk.vtt"], transcript_format="srt")
    assert item.video == tmp_path / "talk.mp4"
    assert item.timeline.format == "srt"
    assert [(w.text, w.start, w.end) for w in item.timeline.words][:1] == [("hello", 1.0, 1.5)]
    assert [s.text for s in item.timeline.segments] == ["hello there world", "second line"]
    assert [(s.start, s.end) for s in item.timeline.segments] == [(1.0, 2.5), (3.0, 4.0)]


def test_without_a_format_the_suffix_decides(tmp_path):
    (tmp_path / "talk.mp4").touch()
    (tmp_path / "talk.vtt").write_text(SRT, encoding="utf-8")
    with pytest.raises(TranscriptError, match="missing the WEBVTT header"):
        resolve_inputs([tmp_path / "talk.vtt"])
