"""The subject engine on a real (one-step) `fx train joint` run: the driver's face region re-rendered as another
subject of the run's table, the rest of the frame kept; a subject the run does not have is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.cli.app import main


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory):
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    base = tmp_path_factory.mktemp("swap_joint")
    clips = make_sample_clips(base / "clips", seconds=0.4, size=56, clips_per_subject=1)
    recipe = load_recipe("joint-tiny", [f"data.path={clips}", "trainer.max_steps=1", "trainer.save_every=1",
                                        "trainer.eval_every=0", "trainer.log_every=1", "trainer.tensorboard=false",
                                        "data.workers=0"])
    run(recipe, base / "run")
    return base / "run"


def test_renders_the_target_subject_into_the_face_region(joint_run, sample_video, hopper_png, tmp_path, capsys):
    from faceexpr_cli.media import read_frames

    names = json.loads((joint_run / "subjects.json").read_text())["subjects"]
    outs = {}
    for target in (names[-1], "0"):
        out = tmp_path / f"r{target}.mp4"
        assert main(["swap", "-s", str(hopper_png), "-d", str(sample_video.path), "-o", str(out), "--engine",
                     "subject", "--model", str(joint_run), "--target-subject", target, "--max-frames", "4",
                     "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["faces_swapped"] == 4 and data["details"]["target_subject"] == (len(names) - 1 if target != "0"
                                                                                    else 0)
        outs[target] = read_frames(out).astype(float)
    drv = read_frames(sample_video.path, max_frames=4).astype(float)
    x0, y0, x1, y1 = (int(v) for v in sample_video.actors[0].face_box[0])
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    inner = (slice(0, 1), slice(cy - 10, cy + 10), slice(cx - 10, cx + 10))
    for frames in outs.values():
        assert np.abs(frames[inner] - drv[inner]).mean() > 10  # the face is the reconstruction
        assert np.abs(frames[:, :20, :20] - drv[:, :20, :20]).max() < 4  # the background is the driver's
    assert np.abs(outs[names[-1]][inner] - outs["0"][inner]).mean() > 0.5  # another subject, another face


def test_unknown_subject_is_one_line(joint_run, sample_video, hopper_png, tmp_path):
    out = tmp_path / "r.mp4"
    assert main(["swap", "-s", str(hopper_png), "-d", str(sample_video.path), "-o", str(out), "--engine", "subject",
                 "--model", str(joint_run), "--target-subject", "nobody"]) == 2
    assert not out.exists()
