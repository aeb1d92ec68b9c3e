"""Fixtures for `fx live`: a one-step joint run (tokens), a three-step predictor run on it, and a sample video."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def joint_run(tmp_path_factory) -> Path:
    from faceexpr_cli.config.recipes import load_recipe
    from faceexpr_cli.train.data import make_sample_clips
    from faceexpr_cli.train.runner import run

    base = tmp_path_factory.mktemp("live-joint")
    clips = make_sample_clips(base / "clips", seconds=0.4, size=56, clips_per_subject=1)
    common = [f"data.path={clips}", "data.workers=0", "trainer.tensorboard=false", "trainer.eval_every=0",
              "trainer.log_every=1", "trainer.save_every=1"]
    run(load_recipe("joint-tiny", [*common, "trainer.max_steps=1"]), base / "run")
    run(load_recipe("expression-tiny", [*common, f"expression.init={base / 'run'}", "trainer.max_steps=2"]),
        base / "pred")
    return base


@pytest.fixture(scope="session")
def live_video(tmp_path_factory):
    """2 s, 320x256, 25 fps talking head with audio, and its ground truth."""
    from faceexpr_cli.samples import make_talking_head

    return make_talking_head(tmp_path_factory.mktemp("live-media") / "talk.mp4", seconds=2.0)
