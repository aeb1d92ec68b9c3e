"""Shared fixtures: generated media only, nothing from the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # mediacheck.py: independent measurements of written media

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


# Footage that behaves like what phones and cameras write (faceexpr_cli.samples.footage), built once per session.
@pytest.fixture(scope="session")
def footage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("footage")


@pytest.fixture(scope="session")
def phone_vfr(footage_dir):
    """iPhone-style HEVC .mov: 30 fps for 2 s then 24 fps for 2 s, 1/600 time base, rotation 90, 48 kHz stereo."""
    from faceexpr_cli.samples.footage import make_phone_vfr

    return make_phone_vfr(footage_dir / "IMG_0001.MOV")


@pytest.fixture(scope="session")
def edit_list_video(footage_dir):
    """An MP4 whose first 3 packets an edit list marks discard (stream copy from between key frames)."""
    from faceexpr_cli.samples.footage import make_edit_list

    return make_edit_list(footage_dir / "edit_list.mp4")


@pytest.fixture(scope="session")
def short_audio_video(footage_dir):
    """4 s of video whose audio ends at 1.6 s."""
    from faceexpr_cli.samples.footage import make_short_audio

    return make_short_audio(footage_dir / "short_audio.mp4")
