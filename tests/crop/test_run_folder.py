"""The output folder of fx crop: one run at a time, settings recorded and checked, --overwrite, merged manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mediacheck import decode_video_times

from faceexpr_cli.cli.app import main
from faceexpr_cli.crop import read_manifest
from faceexpr_cli.runlock import output_lock

ARGS = ["--no-embed", "--json"]


def _crop(capsys, *args) -> tuple[int, str, str]:
    code = main(["crop", *map(str, args), *ARGS])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clips_decode(out):
    """Every clip under a final name decodes and holds the frames its manifest row says."""
    df = read_manifest(out / "manifest.parquet")
    rows = {r["clip"]: r for _, r in df.iterrows() if r["status"] == "ok"}
    files = sorted(p.relative_to(out).as_posix() for p in (out / "clips").rglob("*.mp4") if not p.name.startswith("."))
    assert files == sorted(rows), "a clip without its row, or a row without its clip"
    for name, row in rows.items():
        frames, _ = decode_video_times(out / name)
        assert frames == row["n_frames"] > 0, name
    return df


def test_a_second_run_on_the_same_folder_refuses_and_leaves_the_first_runs_clips(small_videos, tmp_path, capsys):
    out = tmp_path / "out"
    video = small_videos / "v0.mp4"
    assert _crop(capsys, video, "--out", out, "--size", "64")[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*.mp4")}
    with output_lock(out, "fx crop"):  # another run holds the folder
        code, _, err = _crop(capsys, video, "--out", out, "--size", "64", "--no-resume")
    assert code == 1 and "in use by fx crop" in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in out.rglob("*.mp4")} == before
    _clips_decode(out)


def test_out_that_is_a_file_is_a_usage_error(small_videos, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, f / "sub"):
        code, _, err = _crop(capsys, small_videos / "v0.mp4", "--out", out)
        assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1, err
    assert f.read_text() == "x"


def test_resume_with_other_settings_refuses_and_overwrite_starts_again(small_videos, tmp_path, capsys):
    out = tmp_path / "out"
    video = small_videos / "v1.mp4"
    assert _crop(capsys, video, "--out", out, "--size", "64")[0] == 0
    code, _, err = _crop(capsys, video, "--out", out, "--size", "96")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "size 64 -> 96" in err and "--overwrite" in err and "--out" in err
    clip = next(p for p in (out / "clips").rglob("*.mp4"))
    import av

    with av.open(str(clip)) as c:  # the refused run changed nothing
        assert (c.streams.video[0].width, c.streams.video[0].height) == (64, 64)
    (out / "clips" / "stray").mkdir()
    (out / "clips" / "stray" / "old.mp4").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    code, stdout, _ = _crop(capsys, video, "--out", out, "--size", "96", "--overwrite")
    assert code == 0 and json.loads(stdout)["resumed_skipped"] == 0
    assert not (out / "clips" / "stray").exists() and (out / "notes.txt").read_text() == "mine"
    with av.open(str(clip)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (96, 96)
    assert json.loads((out / "run.json").read_text())["settings"]["size"] == 96
    # the same settings resume
    code, stdout, _ = _crop(capsys, video, "--out", out, "--size", "96")
    assert code == 0 and json.loads(stdout)["resumed_skipped"] == 1


def test_a_run_on_some_inputs_keeps_the_other_sources_rows(small_videos, tmp_path, capsys):
    out = tmp_path / "out"
    a, b = small_videos / "v2.mp4", small_videos / "v3.mp4"
    assert _crop(capsys, a, b, "--out", out, "--size", "64")[0] == 0
    assert _crop(capsys, a, "--out", out, "--size", "64", "--no-resume")[0] == 0
    df = _clips_decode(out)
    assert sorted(df["source"]) == sorted([str(a.resolve()), str(b.resolve())])
    assert (df["status"] == "ok").all()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["inputs"] == 1  # the stats are the last run's


@pytest.mark.parametrize("args", [
    ["--margin", "nan"], ["--margin", "inf"], ["--margin", "-1"], ["--detect-size", "-1"],
    ["--score-threshold", "nan"], ["--min-face", "nan"], ["--min-duration", "nan"], ["--max-duration", "nan"],
    ["--max-pixels", "0"], ["--preset", "nope"], ["--size", "8"], ["--stride", "0"],
    ["--face-opt", "upsample=-1"], ["--face-opt", "upsample=abc"], ["--face-opt", "jitters=0"],
    ["--face-backend", "opencv", "--face-opt", "min_size=0"],
])
def test_bad_options_are_usage_errors_before_any_work(small_videos, tmp_path, capsys, args):
    out = tmp_path / "out"
    code, _, err = _crop(capsys, small_videos / "v0.mp4", "--out", out, *args)
    flag = args[-1].split("=")[0] if "--face-opt" in args else args[0]
    assert code == 2 and flag in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # nothing was made, not even the folder


def test_detect_size_zero_means_the_full_frame(small_videos, tmp_path, capsys):
    code, stdout, _ = _crop(capsys, small_videos / "v0.mp4", "--out", tmp_path, "--size", "64",
                            "--detect-size", "0")
    assert code == 0 and json.loads(stdout)["clips"] == 1
    assert json.loads((tmp_path / "run.json").read_text())["settings"]["detect_size"] is None


def test_crop_temp_names_are_unique_per_process(tmp_path, monkeypatch):
    """Two processes writing the same manifest part or stats never share a temporary file."""
    import os

    from faceexpr_cli.crop import manifest as mf

    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(str(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    mf.write_part(tmp_path, "abc", [mf.new_row("s", "abc", "ok")])
    mf.write_stats(tmp_path, {"x": 1})
    assert len(seen) == 2 and all(f".{os.getpid()}.part" in s for s in seen), seen
    assert np.all([not p.name.endswith(".part") for p in tmp_path.rglob("*")])
