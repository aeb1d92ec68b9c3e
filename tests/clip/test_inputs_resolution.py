"""What `fx clip` was given, resolved without decoding anything: folders, manifests (CSV, TSV, JSONL), transcript
lists and lone transcripts, with the exact messages of the inputs that cannot be used."""

from __future__ import annotations

import json
import os

import pytest

from faceexpr_cli.clip.inputs import ClipInput, _resolve, _video_for, resolve_inputs
from faceexpr_cli.errors import DataError, MissingFileError, UsageError

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsmile\n"


def _touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_inputs_is_a_usage_error():
    with pytest.raises(UsageError) as err:
        resolve_inputs([])
    assert err.value.message == "no inputs"
    assert err.value.hint == "pass videos, folders, a manifest or a transcript list"


def test_a_missing_input_is_a_missing_file_error(tmp_path):
    with pytest.raises(MissingFileError, match="nothing.mp4"):
        resolve_inputs([tmp_path / "nothing.mp4"])


def test_a_folder_gives_its_videos_sorted_recursively_skipping_hidden_ones(tmp_path):
    for name in ("b.mp4", "a.MOV", "sub/c.webm", ".hidden/d.mp4", ".e.mp4", "notes.txt", "f.mkv.txt"):
        _touch(tmp_path / name)
    _touch(tmp_path / "b.vtt", VTT)
    items = resolve_inputs([tmp_path])
    assert [os.path.relpath(i.source, tmp_path) for i in items] == ["a.MOV", "b.mp4", "sub/c.webm"]
    assert all(i.video == tmp_path / os.path.relpath(i.source, tmp_path) for i in items)
    assert [i.transcript for i in items] == [None, tmp_path / "b.vtt", None]
    assert all(i.error is None and i.fields == {} and i.timeline is None for i in items)


def test_a_folder_without_videos_is_a_data_error(tmp_path):
    _touch(tmp_path / "readme.txt")
    _touch(tmp_path / ".hidden" / "x.mp4")
    with pytest.raises(DataError) as err:
        resolve_inputs([tmp_path])
    assert err.value.message == f"{tmp_path}: no videos in this folder"
    assert err.value.hint == "videos end in .mp4, .m4v, .mov, .mkv, .webm, .avi"


def test_an_unknown_kind_of_file_is_a_usage_error(tmp_path):
    p = _touch(tmp_path / "notes.txt")
    with pytest.raises(UsageError) as err:
        resolve_inputs([p])
    assert err.value.message == f"{p}: not a video, folder, manifest or transcript"
    assert err.value.hint == ("videos: .mp4, .m4v, .mov, .mkv, .webm, .avi; manifests: .csv, .tsv, .parquet, "
                              ".jsonl")


def test_the_same_video_twice_is_one_input(tmp_path):
    v = _touch(tmp_path / "v.mp4")
    assert [i.source for i in resolve_inputs([v, tmp_path, v])] == [str(v)]


def test_transcript_option_goes_with_exactly_one_video(tmp_path):
    v = _touch(tmp_path / "v.mp4")
    _touch(tmp_path / "v.vtt", VTT)
    other = _touch(tmp_path / "other.srt", "1\n00:00:00,000 --> 00:00:01,000\nsmile\n")
    [item] = resolve_inputs([v], transcript=other)
    assert item.transcript == other and item.timeline is None
    w = _touch(tmp_path / "w.mp4")
    with pytest.raises(UsageError) as err:
        resolve_inputs([v, w], transcript=other)
    assert err.value.message == "--transcript goes with exactly one video"
    assert err.value.hint == "put transcripts next to videos instead"
    orphan = _touch(tmp_path / "lone.vtt", VTT)  # a transcript without its video is no video either
    with pytest.raises(UsageError, match="exactly one video"):
        resolve_inputs([orphan], transcript=other)


def test_csv_manifest_columns_fields_and_missing_videos(tmp_path):
    _touch(tmp_path / "vids" / "a.mp4")
    _touch(tmp_path / "vids" / "a.en.vtt", VTT)
    _touch(tmp_path / "vids" / "b.mp4")
    _touch(tmp_path / "subs" / "b.srt", "1\n00:00:00,000 --> 00:00:01,000\nsmile\n")
    m = _touch(tmp_path / "m.csv", "path,captions,subject,age,note\n"
                                   "vids/a.mp4,,s1,30,\n"
                                   "vids/b.mp4,subs/b.srt,s2,41,x\n"
                                   "vids/gone.mp4,,s3,,\n")
    a, b, gone = resolve_inputs([m])
    assert (a.source, a.video, a.transcript) == (str(tmp_path / "vids" / "a.mp4"), tmp_path / "vids" / "a.mp4",
                                                 tmp_path / "vids" / "a.en.vtt")  # found beside the video
    assert a.fields == {"subject": "s1", "age": "30"} and a.error is None  # empty cells are left out
    assert b.transcript == tmp_path / "subs" / "b.srt"  # the manifest's, relative to the manifest
    assert b.fields == {"subject": "s2", "age": "41", "note": "x"}
    assert gone.transcript is None and gone.fields == {"subject": "s3"}
    assert gone.error == f"{m}: the manifest names vids/gone.mp4, which does not exist"


def test_manifest_prefers_the_video_column_and_reads_tsv(tmp_path):
    _touch(tmp_path / "a.mp4")
    m = _touch(tmp_path / "m.tsv", "file\tvideo\ttranscript\nb.mp4\ta.mp4\t\n")
    [item] = resolve_inputs([m])
    # "video" comes before "file" in the column preference; "file" is then a field like any other
    assert item.video == tmp_path / "a.mp4" and item.fields == {"file": "b.mp4"} and item.error is None


def test_manifest_errors(tmp_path):
    empty = _touch(tmp_path / "empty.csv", "video,subject\n")
    with pytest.raises(DataError) as err:
        resolve_inputs([empty])
    assert err.value.message == f"{empty}: the manifest has no rows"
    nocol = _touch(tmp_path / "nocol.csv", "clip,subject\na.mp4,s1\n")
    with pytest.raises(DataError) as err:
        resolve_inputs([nocol])
    assert err.value.message == f"{nocol}: no video column (one of video, video_path, path, file, filename)"
    assert err.value.hint == "columns: clip, subject"


def test_jsonl_manifest_skips_blank_lines_and_names_the_bad_line(tmp_path):
    _touch(tmp_path / "a.mp4")
    good = _touch(tmp_path / "good.jsonl", json.dumps({"video_path": "a.mp4", "age": 3}) + "\n\n")
    [item] = resolve_inputs([good])
    assert item.video == tmp_path / "a.mp4" and item.fields == {"age": 3}
    bad = _touch(tmp_path / "bad.jsonl", json.dumps({"video": "a.mp4"}) + "\n\n{oops\n")
    with pytest.raises(DataError) as err:
        resolve_inputs([bad])
    assert err.value.message.startswith(f"{bad}:3: not valid JSON (")


def test_a_word_table_csv_is_a_transcript_not_a_manifest(tmp_path):
    v = _touch(tmp_path / "talk.mp4")
    table = _touch(tmp_path / "talk.csv", "start,end,word\n0.5,0.9,smile\n")
    [item] = resolve_inputs([table])
    assert (item.source, item.video, item.transcript) == (str(v), v, table)
    assert [w.text for w in item.timeline.words] == ["smile"] and item.error is None


def test_a_lone_transcript_finds_its_video_or_says_which_it_looked_for(tmp_path):
    v = _touch(tmp_path / "talk.mov")
    vtt = _touch(tmp_path / "talk.en.vtt", VTT)
    [item] = resolve_inputs([vtt])
    assert (item.source, item.video, item.transcript, item.error) == (str(v), v, vtt, None)
    assert [w.text for w in item.timeline.words] == ["smile"]
    orphan = _touch(tmp_path / "orphan.en.vtt", VTT)
    [item] = resolve_inputs([orphan])
    assert (item.source, item.video, item.transcript) == (str(orphan), None, orphan)
    assert item.error == (f"{orphan}: no video found for this transcript (looked for orphan.mp4 and other video "
                          "suffixes beside it)")


def test_video_for_prefers_the_longest_stem_then_the_suffix_order(tmp_path):
    t = _touch(tmp_path / "talk.en.vtt", VTT)
    assert _video_for(t) is None
    short = _touch(tmp_path / "talk.avi")
    assert _video_for(t) == short
    mkv = _touch(tmp_path / "talk.mkv")
    assert _video_for(t) == mkv  # .mkv comes before .avi
    long = _touch(tmp_path / "talk.en.webm")
    assert _video_for(t) == long  # talk.en.* before talk.*
    (tmp_path / "talk.en.mp4").mkdir()  # a folder is not a video
    assert _video_for(t) == long


def test_seed_transcript_list_entries_name_their_videos(tmp_path):
    _touch(tmp_path / "v" / "one.mp4")
    entries = [{"video_path": "v/one.mp4", "subject_id": "s1", "transcription_timestamp": "[0.000] Smile."},
               {"video_path": "v/two.mp4", "subject_id": "s2", "transcription_timestamp": "[0.000] Frown."}]
    listing = _touch(tmp_path / "list.json", json.dumps(entries))
    one, two = resolve_inputs([listing])
    assert one.video == tmp_path / "v" / "one.mp4" and one.transcript == listing and one.error is None
    assert one.fields == {"subject_id": "s1"} and one.timeline.words[0].text == "Smile."
    assert two.fields == {"subject_id": "s2"}
    assert two.error == (f"{listing}: entry [1] names v/two.mp4, which does not exist (a transcript with no "
                         "video)")


def test_resolve_keeps_existing_and_absolute_paths_and_falls_back_to_the_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "base"
    _touch(base / "in_base.mp4")
    _touch(tmp_path / "here.mp4")
    assert str(_resolve("here.mp4", base)) == "here.mp4"  # exists from the working folder: kept as given
    assert _resolve("in_base.mp4", base) == base / "in_base.mp4"
    assert str(_resolve("nowhere.mp4", base)) == "nowhere.mp4"
    _touch(tmp_path / "both.mp4")
    _touch(base / "both.mp4")
    assert str(_resolve("both.mp4", base)) == "both.mp4"  # the working folder's wins over the base's
    assert _resolve(str(tmp_path / "abs.mp4"), base) == tmp_path / "abs.mp4"


def test_clip_input_defaults():
    item = ClipInput("s", None)
    assert (item.transcript, item.timeline, item.fields, item.error) == (None, None, {}, None)


def test_a_word_table_tsv_is_a_transcript_too(tmp_path):
    v = _touch(tmp_path / "talk.mp4")
    table = _touch(tmp_path / "talk.tsv", "start\tend\tword\n0.5\t0.9\tsmile\n")
    [item] = resolve_inputs([table])
    assert (item.video, item.transcript) == (v, table) and item.timeline.words[0].text == "smile"


def test_transcript_option_replaces_a_transcript_already_read(tmp_path):
    v = _touch(tmp_path / "talk.mp4")
    vtt = _touch(tmp_path / "talk.vtt", VTT)
    other = _touch(tmp_path / "other.srt", "1\n00:00:00,000 --> 00:00:01,000\nfrown\n")
    [item] = resolve_inputs([vtt], transcript=other)  # the lone transcript was read; --transcript wins
    assert item.video == v and item.transcript == other and item.timeline is None
