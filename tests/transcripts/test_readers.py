"""Every transcript format on realistic hand-written samples, down to word times."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceexpr_cli.transcripts import find_transcript, load_transcript

DATA = Path(__file__).parent / "data"


def words(tl):
    return [w.text for w in tl.words]


def test_youtube_auto_captions_drop_rolling_repeats_and_keep_word_times():
    [tl] = load_transcript(DATA / "talk.en.vtt")
    assert tl.format == "webvtt"
    assert words(tl) == ["okay", "so", "today", "I", "want", "you", "to", "smile", "for", "the", "camera",
                         "and", "now", "look", "really", "surprised", "&", "happy", "smiling"]  # no [Music]
    assert "[Music]" in tl.text  # the segment keeps what the caption said
    w = {x.text: x for x in tl.words}
    assert w["smile"].start == pytest.approx(2.879) and w["smile"].end == pytest.approx(3.36)
    assert w["smile"].timed
    assert w["surprised"].start == pytest.approx(9.28) and w["surprised"].end == pytest.approx(9.96)
    assert w["camera"].end == pytest.approx(5.51)  # last word of a line ends with its cue
    assert [s.text for s in tl.segments][1] == "smile for the camera"
    assert all(a.start <= b.start for a, b in zip(tl.words, tl.words[1:], strict=False))


def test_plain_webvtt_with_voice_tags_entities_notes_and_roll_up():
    [tl] = load_transcript(DATA / "lecture.vtt")
    assert [s.text for s in tl.segments] == ["Good morning, everyone.", "Please smile for the photo.",
                                             "Fish & chips later."]
    seg = tl.segments[1]
    assert (seg.start, seg.end) == (3.5, 6.0)
    inside = tl.segment_words(1)
    assert inside[0].start == 3.5 and inside[-1].end == pytest.approx(6.0)
    assert not any(w.timed for w in inside)  # interpolated across the cue
    assert tl.segments[2].start == 6.0  # mm:ss.mmm without hours


def test_srt_cues_tags_and_multiline_text():
    [tl] = load_transcript(DATA / "interview.srt")
    assert [s.text for s in tl.segments] == ["Hello there, welcome back.", "Can you give me a big smile?",
                                             "Now look surprised!"]
    assert (tl.segments[1].start, tl.segments[1].end) == (3.0, 5.0)
    smile = next(w for w in tl.words if w.norm == "smile")
    assert 3.0 < smile.start < smile.end == pytest.approx(5.0)


def test_whisperx_words_and_interpolated_numeral():
    [tl] = load_transcript(DATA / "talk_whisperx.json")
    assert tl.format == "whisper" and tl.fields == {"language": "en"}
    year = next(w for w in tl.words if w.text == "1999")
    assert not year.timed and year.start == pytest.approx(3.62) and year.end == pytest.approx(4.62)
    smile = next(w for w in tl.words if w.norm == "smile")
    assert (smile.start, smile.end) == (1.052, 1.492) and smile.timed


def test_seed_json_list_keeps_video_duration_and_subject_fields():
    first, second = load_transcript(DATA / "seed_transcripts.json")
    assert first.format == "seed" and first.video == "videos/subj_001_take1.mp4"
    assert first.duration == 12.0
    assert first.fields == {"subject_id": "subj_001", "age": 34, "gender": "female", "skin_type": "III"}
    assert [round(s.start, 3) for s in first.segments] == [0.0, 3.555, 6.02, 9.1]
    assert first.segments[0].end == pytest.approx(3.555)
    assert second.segments[0].text == "Smiled already?"


def test_word_tables_tsv_and_csv():
    [tsv] = load_transcript(DATA / "words.tsv")
    assert [s.text for s in tsv.segments] == ["please smile now.", "look surprised"]  # split at the pause
    assert (tsv.words[1].start, tsv.words[1].end) == (0.45, 0.8)
    [csv] = load_transcript(DATA / "words.csv")
    assert [s.text for s in csv.segments] == ["big smile", "relax"]


def test_whisper_bare_segment_list_and_content_sniffing(tmp_path):
    p = tmp_path / "talk.transcript"
    p.write_text('[{"start": 0.5, "end": 2.0, "text": " smile please"}]')
    [tl] = load_transcript(p)
    assert tl.format == "whisper" and words(tl) == ["smile", "please"]


def test_unordered_and_inverted_cues_are_fixed_with_warnings(tmp_path):
    p = tmp_path / "bad.srt"
    p.write_text("1\n00:00:05,000 --> 00:00:06,000\nsecond\n\n2\n00:00:01,000 --> 00:00:00,500\nfirst\n")
    [tl] = load_transcript(p)
    assert [s.text for s in tl.segments] == ["first", "second"]
    assert tl.segments[0].end == tl.segments[0].start == 1.0
    assert any("out of order" in w for w in tl.warnings) and any("inverted" in w for w in tl.warnings)


def test_find_transcript_next_to_video(tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"x")
    assert find_transcript(video) is None
    (tmp_path / "talk.de.vtt").write_text("WEBVTT\n")
    (tmp_path / "talk.en.vtt").write_text("WEBVTT\n")
    assert find_transcript(video).name == "talk.en.vtt"  # yt-dlp's language-tagged name, English first
    (tmp_path / "talk.srt").write_text("")
    assert find_transcript(video).name == "talk.srt"
