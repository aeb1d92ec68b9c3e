"""`fx animate eval`: the reconstruction protocol writes metrics.json and a per-video CSV; bad videos become rows.

Metrics are judged against baselines the test computes itself from the decoded frames: a frozen output (every
frame = the first) and another person's face. Fixed thresholds once passed a still image (L1 0.027 < 0.03).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from faceexpr_cli.cli.app import main

FRAMES, EVERY = 12, 3


@pytest.fixture(scope="module")
def baselines(sample_video, face_backend):
    """What a frozen output would score: L1 and AKD of every frame against frame 0; AED of another person."""
    from faceexpr_cli.animate.evaluate import face_metrics
    from faceexpr_cli.media import read_frames
    from faceexpr_cli.samples import load_portrait

    frames = read_frames(sample_video.path, max_frames=FRAMES)
    assert len(frames) == FRAMES
    l1 = float(np.mean(np.abs(frames.astype(np.float32) - frames[:1].astype(np.float32)).mean(axis=(1, 2, 3)))) / 255
    akd = [face_metrics(face_backend, frames[i], frames[0])[0] for i in range(0, FRAMES, EVERY)]
    assert None not in akd
    other = load_portrait("grace_hopper")[0]
    _, aed_other = face_metrics(face_backend, frames[0], other)
    return {"l1": l1, "akd": float(np.mean(akd)), "aed": aed_other}


def test_eval_landmarks_reconstruction_beats_a_frozen_output(tmp_path, capsys, sample_video, baselines):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "good.mp4").symlink_to(sample_video.path)
    (clips / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "eval"
    code = main(["animate", "eval", str(clips), "--out", str(out), "--max-frames", str(FRAMES), "--every", str(EVERY),
                 "--json"])
    cap = capsys.readouterr()
    assert code == 1 and "1 of 2 items failed" in cap.err  # the broken clip is recorded, the run went on
    printed = json.loads(cap.out)  # the summary is on stdout even though a video failed
    metrics = json.loads((out / "metrics.json").read_text())
    assert printed == metrics
    assert metrics["videos"] == 2 and metrics["failed"] == 1 and metrics["frames"] == FRAMES
    # the frozen output's motion is real: these margins mean something
    assert baselines["l1"] > 0.015 and baselines["akd"] > 2.0 and baselines["aed"] > 0.4, baselines
    # rebuilding a video from its own first frame with the landmarks engine: far closer than a frozen output ...
    assert metrics["l1"] < 0.5 * baselines["l1"], (metrics["l1"], baselines)
    assert metrics["akd"] < 0.25 * baselines["akd"], (metrics["akd"], baselines)
    # ... and the same person: much nearer than another person's face is
    assert metrics["aed"] < 0.5 * baselines["aed"], (metrics["aed"], baselines)
    rows = {r["video"].split("/")[-1]: r for r in csv.DictReader((out / "per_video.csv").open())}
    assert rows["good.mp4"]["status"] == "ok" and int(rows["good.mp4"]["face_frames"]) == FRAMES // EVERY
    assert rows["broken.mp4"]["status"] == "error" and "broken.mp4" in rows["broken.mp4"]["error"]


def test_eval_table_goes_to_stdout(tmp_path, capsys, sample_video):
    out = tmp_path / "eval"
    code = main(["-q", "animate", "eval", str(sample_video.path), "--out", str(out), "--max-frames", "3",
                 "--every", "3"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    l1 = json.loads((out / "metrics.json").read_text())["l1"]
    assert f"{l1:.4f}" in cap.out and "1 video(s), 0 failed" in cap.out and cap.err.strip() == ""


@pytest.mark.parametrize("case", ["out_file", "out_under_file", "too_many_pixels", "bad_device"])
def test_eval_refusals(case, tmp_path, capsys, sample_video):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    out, extra = {"out_file": (blocker, []), "out_under_file": (blocker / "eval", []),
                  "too_many_pixels": (tmp_path / "eval", ["--max-pixels", "1000"]),
                  "bad_device": (tmp_path / "eval", ["--device", "banana"])}[case]
    code = main(["animate", "eval", str(sample_video.path), "--out", str(out), "--max-frames", "2", *extra])
    err = capsys.readouterr().err
    want = {"out_file": (2, f"--out {blocker} is a file"),
            "out_under_file": (2, f"--out {out} lies under the file {blocker}"),
            "too_many_pixels": (1, "1 of 1 items failed"),
            "bad_device": (2, "--device 'banana': unknown device")}[case]
    assert code == want[0] and want[1] in err and "Traceback" not in err, err
    if case == "too_many_pixels":  # an error row naming the limit, before the video was decoded
        rows = list(csv.DictReader((out / "per_video.csv").open()))
        assert "resolution 320x256 is above the limit (1000 pixels)" in rows[0]["error"]
    else:
        assert len(err.strip().splitlines()) == 1 and blocker.read_text() == "x"
