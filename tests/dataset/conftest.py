"""Small clips whose frames carry their source frame index, written as a dataset once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def coded_video(tmp_path_factory):
    from faceexpr_cli.clip.synthetic import make_coded_video

    return make_coded_video(tmp_path_factory.mktemp("coded") / "coded.mp4", seconds=4.0, fps=25.0)


@pytest.fixture(scope="session")
def clip_bytes(coded_video, tmp_path_factory):
    """Six 0.4 s exact cuts (10 frames each) starting at frames 0, 12, 24, ... as (start frame, mp4 bytes)."""
    from faceexpr_cli.media import cut

    tmp = tmp_path_factory.mktemp("cuts")
    out = []
    for i in range(6):
        first = 12 * i
        res = cut(coded_video.path, tmp / f"c{i}.mp4", first / 25.0, (first + 10) / 25.0, mode="exact")
        out.append((first, Path(res.path).read_bytes()))
    return out
