"""`fx animate eval`: the reconstruction protocol writes metrics.json and a per-video CSV; bad videos become rows."""

from __future__ import annotations

import csv
import json

from faceexpr_cli.cli.app import main


def test_eval_landmarks_reconstruction(tmp_path, capsys, sample_video):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "good.mp4").symlink_to(sample_video.path)
    (clips / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "eval"
    code = main(["animate", "eval", str(clips), "--out", str(out), "--max-frames", "12", "--every", "6", "--json"])
    cap = capsys.readouterr()
    assert code == 1 and "1 of 2 items failed" in cap.err  # the broken clip is recorded, the run went on
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["videos"] == 2 and metrics["failed"] == 1 and metrics["frames"] == 12
    # Rebuilding a video from its own first frame with the landmarks engine is nearly exact.
    assert metrics["l1"] < 0.03
    assert metrics["akd"] < 3.0
    assert metrics["aed"] < 0.3
    rows = {r["video"].split("/")[-1]: r for r in csv.DictReader((out / "per_video.csv").open())}
    assert rows["good.mp4"]["status"] == "ok" and int(rows["good.mp4"]["face_frames"]) == 2
    assert rows["broken.mp4"]["status"] == "error" and "broken.mp4" in rows["broken.mp4"]["error"]
