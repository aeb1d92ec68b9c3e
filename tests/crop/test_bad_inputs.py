"""Every kind of bad input gets a clear status; the run finishes and its exit code counts the failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceexpr_cli.cli.app import main
from faceexpr_cli.crop import CropOptions, crop_videos, read_manifest
from faceexpr_cli.errors import BatchFailures


def test_bad_inputs_each_get_a_status(bad_inputs, tmp_path):
    d, expected = bad_inputs
    with pytest.raises(BatchFailures) as exc:
        crop_videos([d], tmp_path, CropOptions(size=64))
    assert exc.value.failed == 4 and exc.value.total == len(expected)
    df = read_manifest(tmp_path / "manifest.parquet")
    status = {Path(s).name: st for s, st in zip(df["source"], df["status"], strict=True)}
    assert status == expected
    errors = {Path(s).name: e for s, e in zip(df["source"], df["error"], strict=True)}
    assert "truncated" in errors["truncated.mp4"]
    assert "no video stream" in errors["audio_only.mp4"]
    assert "not a readable media file" in errors["corrupt.mp4"]
    assert "4352x4352 is above the limit" in errors["huge.mp4"]
    assert "--min-duration" in errors["one_frame.mp4"]
    assert errors["notes.txt"] == "not a video file (.txt)"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["failed"] == 4 and stats["clips"] == 1
    assert len(stats["failures"]) == 4


def test_cli_exit_code_and_one_line(bad_inputs, tmp_path, capsys):
    d, _ = bad_inputs
    out = tmp_path / "out"
    code = main(["crop", str(d / "good.mp4"), str(d / "corrupt.mp4"), "--out", str(out), "--size", "64",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 1
    result = json.loads(captured.out)
    assert result["clips"] == 1 and result["failed"] == 1
    assert "1 of 2 items failed" in captured.err and "Traceback" not in captured.err
    # a re-run skips the good video and retries the failed one (which fails again)
    code = main(["crop", str(d / "good.mp4"), str(d / "corrupt.mp4"), "--out", str(out), "--size", "64",
                 "--json"])
    assert code == 1 and json.loads(capsys.readouterr().out)["resumed_skipped"] == 1


def test_cli_usage_errors_are_one_line(sample_video, tmp_path, capsys, monkeypatch):
    assert main(["crop", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["crop", str(sample_video.path), "--out", str(tmp_path), "--mode", "zoom"]) == 2
    assert "unknown crop mode" in capsys.readouterr().err
    monkeypatch.setenv("HOME", str(tmp_path))
    code = main(["crop", str(sample_video.path), "--out", str(tmp_path), "--face-backend", "insightface"])
    err = capsys.readouterr().err
    assert code == 1 and "put the buffalo_l .onnx files" in err and "Traceback" not in err
    assert "requests" not in err
