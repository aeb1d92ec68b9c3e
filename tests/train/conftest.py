"""Fixtures for training tests: a small folder of face clips (two subjects) and a helper to load the tiny recipe."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory):
    """astronaut/ and grace_hopper/, two 1.2 s 56x56 clips each (30 frames), with audio."""
    from faceexpr_cli.train.data import make_sample_clips

    return make_sample_clips(tmp_path_factory.mktemp("clips"), seconds=1.2, size=56)


@pytest.fixture
def tiny_recipe(clip_folder):
    from faceexpr_cli.config.recipes import load_recipe

    def make(*overrides: str, name: str = "joint-tiny"):
        base = [f"data.path={clip_folder}", "data.workers=0", "trainer.tensorboard=false", "trainer.log_every=1"]
        return load_recipe(name, [*base, *overrides])

    return make
