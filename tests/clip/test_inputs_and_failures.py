"""Inputs of every kind, bad inputs as error rows (the run goes on), random mode and resume."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq

from faceexpr_cli.cli.app import main
from faceexpr_cli.clip.synthetic import read_code
from faceexpr_cli.dataset import ClipDataset


def _run(capsys, *args):
    code = main(["clip", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _index(out):
    return pq.read_table(out / "index.parquet").to_pylist()


def NAMES(stem):  # noqa: N802 - the names fx looks for beside <stem>.mp4, written out by hand
    return (f"{stem}.vtt, {stem}.srt, {stem}.json, {stem}.tsv, {stem}.csv, {stem}.<lang>.vtt, "
            f"{stem}.<lang>.srt")


def test_a_video_without_transcript_is_reported_as_no_transcript_not_as_no_keyword(talk, tmp_path, capsys):
    bare = tmp_path / "bare.mp4"
    shutil.copy(talk.path, bare)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, bare, "-k", "smile", "-o", out)
    assert code == 1 and "1 of 1 items failed" in err
    assert "no keyword found" not in stdout
    assert f"no transcript for bare.mp4 (looked for {NAMES('bare')} beside it)" in stdout
    [row] = [r for r in _index(out) if r["status"] == "failed"]
    assert row["error"].startswith(f"{bare}: no transcript (looked for {NAMES('bare')} in {tmp_path})")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["no_transcript"] == [str(bare)]
    # with a second video that has a transcript but no hit, both facts are said
    other = tmp_path / "other.mp4"
    shutil.copy(talk.path, other)
    shutil.copy(talk.path.with_name("talk.en.vtt"), tmp_path / "other.en.vtt")
    code, stdout, _ = _run(capsys, bare, other, "-k", "frown", "-o", tmp_path / "two")
    assert code == 1
    assert "no keyword found in 1 videos with a transcript (frown)" in stdout
    assert f"no transcript for bare.mp4 (looked for {NAMES('bare')} beside it)" in stdout


def test_seed_transcript_list_with_subject_fields_and_a_missing_video(talk, tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    shutil.copy(talk.path, tmp_path / "videos" / "subj_001.mp4")
    entries = [
        {"video_path": "videos/subj_001.mp4", "duration_ms": 6000, "subject_id": "subj_001", "age": 34,
         "transcription_timestamp": "[0.000] Please smile now. [2.000] Relax. [3.000] Look surprised."},
        {"video_path": "videos/missing.mp4", "duration_ms": 4000, "subject_id": "subj_002",
         "transcription_timestamp": "[0.000] Smile."},
    ]
    listing = tmp_path / "transcripts.json"
    listing.write_text(json.dumps(entries))
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, listing, "-k", "smile", "--rules", "seed", "--end-margin", "0", "-o", out)
    assert code == 1 and "1 of 2 items failed" in err
    assert "1 clips" in stdout and "1 videos failed" in stdout
    [s] = list(ClipDataset(out, audio=False))
    assert s["meta"]["subject"] == {"subject_id": "subj_001", "age": 34}
    assert s["meta"]["anchor"] == 2.0  # next segment
    failed = [r for r in _index(out) if r["status"] == "failed"]
    assert len(failed) == 1 and "videos/missing.mp4, which does not exist" in failed[0]["error"]
    assert json.loads(failed[0]["subject"]) == {"subject_id": "subj_002"}


def test_bad_transcripts_and_videos_become_rows_and_the_run_goes_on(talk, tmp_path, capsys):
    good, bad, bare, broken = (tmp_path / f"{n}.mp4" for n in ("good", "bad", "bare", "broken"))
    for v in (good, bad, bare):
        shutil.copy(talk.path, v)
    shutil.copy(talk.path.with_name("talk.en.vtt"), tmp_path / "good.vtt")
    (tmp_path / "bad.srt").write_text("1\n00:00:01,000 --> 00:00:0x,000\nsmile\n")
    broken.write_bytes(b"not a video at all")
    (tmp_path / "broken.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsmile\n")
    (tmp_path / "orphan.en.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsmile\n")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, tmp_path, tmp_path / "orphan.en.vtt", "-k", "smile", "-o", out)
    assert code == 1 and "4 of 5 items failed" in err
    errors = {r["source"].rsplit("/", 1)[-1]: r["error"] for r in _index(out) if r["status"] == "failed"}
    assert "bad.srt:2: bad cue timing" in errors["bad.mp4"]
    assert f"bare.mp4: no transcript (looked for {NAMES('bare')} in {tmp_path})" in errors["bare.mp4"]
    assert "not a readable media file" in errors["broken.mp4"]
    assert "no video found for this transcript" in errors["orphan.en.vtt"]
    kept = list(ClipDataset(out, audio=False))  # good.mp4 went through: its two "smile" clips
    assert {s["meta"]["source"] for s in kept} == {str(good)}
    assert sorted(read_code(s["frames"][0].numpy()) for s in kept) == [round(1.13 * 25), round(5.37 * 25)]
    assert not list(out.glob(".*.part"))


def test_manifest_csv_random_mode(talk, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video,subject_id,gender\n{talk.path},s7,female\n")
    out = tmp_path / "random"
    code, stdout, _ = _run(capsys, manifest, "--random", "3", "--frames", "10", "--min-gap", "0.5",
                           "--seed", "1", "-o", out)
    assert code == 0 and "3 clips" in stdout
    samples = sorted(ClipDataset(out, audio=False), key=lambda s: s["meta"]["window"][0])
    assert all(s["meta"]["mode"] == "random" and s["frames"].shape[0] == 10 for s in samples)
    assert samples[0]["meta"]["subject"] == {"subject_id": "s7", "gender": "female"}
    starts = [s["meta"]["window"][0] for s in samples]
    assert all(b - a >= 0.4 + 0.5 - 1e-6 for a, b in zip(starts, starts[1:], strict=False))
    for s, start in zip(samples, starts, strict=True):  # the pixels are the frames of that window
        assert [read_code(f.numpy()) for f in s["frames"]] == list(range(round(start * 25), round(start * 25) + 10))
    code, stdout2, _ = _run(capsys, manifest, "--random", "3", "--frames", "10", "--min-gap", "0.5",
                            "--seed", "1", "-o", tmp_path / "again")
    again = sorted(s["meta"]["window"][0] for s in ClipDataset(tmp_path / "again", audio=False))
    assert again == starts  # seeded


def test_resume_skips_finished_inputs_and_refuses_other_settings(talk, tmp_path, capsys):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copy(talk.path, a)
    shutil.copy(talk.path.with_name("talk.en.vtt"), tmp_path / "a.en.vtt")
    shutil.copy(talk.path, b)
    out = tmp_path / "out"
    code, _, _ = _run(capsys, a, b, "-k", "smile", "--shard-count", "1", "-o", out)
    assert code == 1  # b has no transcript yet
    shards = sorted(p.name for p in out.glob("clips-*.tar"))
    assert shards == ["clips-000000.tar", "clips-000001.tar"]
    shutil.copy(talk.path.with_name("talk.en.vtt"), tmp_path / "b.vtt")
    code, stdout, _ = _run(capsys, a, b, "-k", "smile", "--shard-count", "1", "-o", out, "--json")
    stats = json.loads(stdout)
    assert code == 0 and stats["inputs"] == {"total": 2, "done": 2, "failed": 0, "skipped_as_done": 1}
    assert stats["clips"] == 4 and len(list(out.glob("clips-*.tar"))) == 4
    samples = list(ClipDataset(out, audio=False))  # each clip once, starting on its keyword's frame
    assert len({s["key"] for s in samples}) == 4
    for video in (a, b):
        firsts = sorted(read_code(s["frames"][0].numpy()) for s in samples if s["meta"]["source"] == str(video))
        assert firsts == [round(1.13 * 25), round(5.37 * 25)]
    assert not [r for r in _index(out) if r["status"] == "failed"]  # the fixed failure is gone
    code, _, err = _run(capsys, a, b, "-k", "frown", "-o", out)
    assert code == 2 and "other settings (keywords)" in err
