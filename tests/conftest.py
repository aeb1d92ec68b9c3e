"""Shared fixtures: generated media only, nothing from the network."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("FX_HOME", "/tmp/fx-test-home-unused")  # replaced per test below


@pytest.fixture(autouse=True)
def _isolated_fx_home(tmp_path_factory, monkeypatch):
    """Every test gets an empty weights cache, so no test depends on what this machine has downloaded."""
    monkeypatch.setenv("FX_HOME", str(tmp_path_factory.mktemp("fx_home")))


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory):
    """4 s, 320x256, 25 fps talking head (astronaut) with audio; returns the TalkingHead ground truth."""
    from faceexpr_cli.samples import make_talking_head

    return make_talking_head(tmp_path_factory.mktemp("media") / "talking_head.mp4", seconds=4.0)


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory):
    """3 s, 640x360, two people side by side (astronaut, Grace Hopper), with audio."""
    from faceexpr_cli.samples import make_talking_head

    return make_talking_head(
        tmp_path_factory.mktemp("media") / "two_faces.mp4",
        portraits=("astronaut", "grace_hopper"),
        seconds=3.0,
        width=640,
        height=360,
    )
