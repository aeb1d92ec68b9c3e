"""fx swap on footage as phones write it: the driver's own clock (VFR), its audio, and a face that leaves the frame
(those frames passed through unchanged and counted), checked against the footage's ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mediacheck import decode_audio

from faceexpr_cli.cli.app import main


@pytest.fixture(scope="module")
def face_exit(tmp_path_factory):
    from faceexpr_cli.samples.footage import make_face_exit

    return make_face_exit(tmp_path_factory.mktemp("swap_exit") / "exit.mp4")


def test_vfr_phone_video_keeps_its_clock_and_audio(phone_vfr, hopper_png, tmp_path, capsys):
    from faceexpr_cli.media.timeline import frame_times

    out = tmp_path / "r.mp4"
    assert main(["swap", "-s", str(hopper_png), "-d", str(phone_vfr.path), "-o", str(out), "--max-frames", "72",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frames"] == 72 and data["faces_swapped"] == 72 and data["audio"]
    got = frame_times(out).times
    assert np.abs(got - phone_vfr.frame_times[:72]).max() < 1e-3  # 30 fps then 24 fps, as the phone wrote it
    wave, rate = decode_audio(out)
    assert wave is not None and abs(len(wave) / rate - phone_vfr.frame_times[72]) < 0.05


def test_frames_where_the_face_is_gone_pass_through(face_exit, hopper_png, tmp_path, capsys):
    from faceexpr_cli.media import read_frames

    out = tmp_path / "r.mp4"
    assert main(["swap", "-s", str(hopper_png), "-d", str(face_exit.path), "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    visible = np.asarray(face_exit.face_visible, bool)
    assert data["frames"] == len(visible)
    assert abs(data["frames_without_face"] - int((~visible).sum())) <= 3  # detector vs ground truth at the edge
    res, src = read_frames(out).astype(float), read_frames(face_exit.path).astype(float)
    change = np.abs(res - src).mean(axis=(1, 2, 3))
    gone = np.flatnonzero(~visible)
    inner = gone[(gone > gone.min() + 2) & (gone < gone.max() - 2)] if len(gone) > 6 else gone
    assert change[inner].max() < 1.5  # no face: the driver's frame, re-encoded
    shown = np.flatnonzero(visible)[3:-3]
    assert np.median(change[shown]) > 3.0
