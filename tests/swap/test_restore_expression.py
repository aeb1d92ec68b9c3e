"""`fx swap --restore-expression`: LivePortrait (the parity fixture's small checkpoints) re-imposes the driver's
expression on the swapped face. Checked against the LivePortrait modules run by hand on the same crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "liveportrait"


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    from faceexpr_cli.media import read_frames, write_image
    from faceexpr_cli.samples import make_talking_head
    from faceexpr_cli.samples.portraits import load_portrait

    tmp = tmp_path_factory.mktemp("restore")
    video = make_talking_head(tmp / "talk.mp4", seconds=0.4).path
    photo, _ = load_portrait("grace_hopper")
    write_image(tmp / "gh.png", photo)
    return tmp, video, read_frames(video)


def _restorer():
    from faceexpr_cli.swap.restore import ExpressionRestorer

    return ExpressionRestorer(str(FIX / "checkpoints"), str(FIX / "models.yaml"))


def _face(frame):
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.face.types import kps5_from_68
    from faceexpr_cli.swap.engines import DrivingFace

    face = get_backend("dlib").analyze(frame, landmarks=True)[0]
    return DrivingFace(0, face.landmarks68.astype(np.float64), kps5_from_68(face.landmarks68))


def test_restored_face_is_liveportrait_on_the_two_crops_and_nothing_else_changes(frames):
    import torch

    from faceexpr_cli.nn.liveportrait.camera import FIELDS, drive

    _, _, video = frames
    original = video[3]
    rng = np.random.default_rng(0)
    swapped = np.clip(original.astype(int) + rng.integers(-30, 30, original.shape), 0, 255).astype(np.uint8)
    face = _face(original)
    restorer = _restorer()
    got = restorer.restore(swapped, original, [face])

    crop = restorer.crop_of(face)
    model = restorer.engine.model

    def tensor(img):
        import cv2

        side = restorer.engine.input_size  # cut at 512 px, fed at the card's size (256)
        small = cv2.resize(crop.apply(img), (side, side), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)

    with torch.no_grad():
        src = dict(zip(FIELDS, model.motion(tensor(swapped)), strict=True))
        drv = dict(zip(FIELDS, model.motion(tensor(original)), strict=True))
        from faceexpr_cli.nn.liveportrait.camera import transform_keypoint

        x_s = transform_keypoint(src)
        x_d = drive(src, drv, None, "exp")  # absolute, expression only: pose and identity stay the swap's
        x_d = model.stitching(x_s, x_d)
        feature = model.appearance_feature_extractor(tensor(swapped))
        warped = model.warping_module(feature, x_s, x_d)[0]
        image = model.spade_generator(warped)
    want_crop = np.clip(image[0].numpy().transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    want = crop.paste(swapped, want_crop)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # outside the LivePortrait square the frame is the swap's, pixel for pixel
    x0, y0, x1, y1 = crop.box
    outside = np.ones(got.shape[:2], bool)
    outside[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = False
    assert outside.any() and np.array_equal(got[outside], swapped[outside])
    assert np.abs(got[~outside].astype(int) - swapped[~outside].astype(int)).mean() > 1.0


def test_cli_restore_expression_runs_after_the_swap(frames, capsys):
    from mediacheck import decode_video_times

    from faceexpr_cli.cli.app import main

    tmp, video, clip = frames
    out = tmp / "restored.mp4"
    capsys.readouterr()
    code = main(["swap", "-s", str(tmp / "gh.png"), "-d", str(video), "-o", str(out), "--restore-checkpoint",
                 str(FIX / "checkpoints"), "--restore-config", str(FIX / "models.yaml"), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0 and res["details"]["restore_expression"] is True
    assert decode_video_times(out)[0] == len(clip) == res["frames"]


def test_restore_without_liveportrait_weights_is_one_line(frames, capsys):
    from faceexpr_cli.cli.app import main

    tmp, video, _ = frames
    out = tmp / "none.mp4"
    capsys.readouterr()
    code = main(["swap", "-s", str(tmp / "gh.png"), "-d", str(video), "-o", str(out), "--restore-expression"])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 1 and len(err) == 1 and "liveportrait" in err[0].lower(), err
    assert not out.exists()
