"""The liveportrait engine end to end on the parity case's weights: the fixture through `fx animate --crop none`,
a video driver against the modules run by hand, motion templates, retargeting and the options' errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from faceexpr_cli.animate.engines import EngineOptions
from faceexpr_cli.animate.pipeline import AnimateOptions, animate
from tests.liveportrait.conftest import FIXTURE, as_batch, read_rgb

CKPT, CONFIG = str(FIXTURE / "checkpoints"), str(FIXTURE / "models.yaml")
QUANT = 0.5 / 255 + 1e-4  # PNG rounding plus the modules' tolerance


def _opts(**extra) -> AnimateOptions:
    kw = {k: extra.pop(k) for k in ("crop", "smooth", "reference", "relative") if k in extra}
    kw.setdefault("crop", "none")
    kw.setdefault("smooth", 0.0)
    return AnimateOptions(engine="liveportrait", **kw,
                          engine_options=EngineOptions(checkpoint=CKPT, config=CONFIG, extra=extra))


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255


def _decode(path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32) / 255


def test_fixture_through_the_cli_reproduces_prediction(tmp_path):
    out = tmp_path / "r.png"
    cmd = [sys.executable, "-m", "faceexpr_cli", "animate", "-s", str(FIXTURE / "source.png"),
           "-d", str(FIXTURE / "driving.png"), "--reference", str(FIXTURE / "driving_reference.png"), "-o", str(out),
           "--engine", "liveportrait", "--crop", "none", "--config", CONFIG, "--checkpoint", CKPT]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = _png(out)
    want = np.load(FIXTURE / "prediction.npy")[0].transpose(1, 2, 0)
    assert got.shape == (128, 128, 3)
    assert np.abs(got - want).max() <= QUANT
    plain = np.load(FIXTURE / "prediction_no_stitching.npy")[0].transpose(1, 2, 0)
    assert np.abs(got - plain).max() > 0.3  # stitching is on by default


def test_no_stitching_flag_gives_the_unstitched_reference(tmp_path):
    out = tmp_path / "r.png"
    animate(FIXTURE / "source.png", FIXTURE / "driving.png", out,
            _opts(reference=str(FIXTURE / "driving_reference.png"), stitching=False))
    want = np.load(FIXTURE / "prediction_no_stitching.npy")[0].transpose(1, 2, 0)
    assert np.abs(_png(out) - want).max() <= QUANT


@pytest.fixture(scope="module")
def driver_video(tmp_path_factory):
    """8 frames blending the fixture's reference and driving images (64x64, 25 fps)."""
    from faceexpr_cli.media import VideoWriter

    a, b = read_rgb("driving_reference.png").astype(np.float32), read_rgb("driving.png").astype(np.float32)
    path = tmp_path_factory.mktemp("lp") / "driver.mp4"
    with VideoWriter(path, 25.0) as w:
        for k in range(8):
            w.write(np.clip(a + (b - a) * k / 7, 0, 255).astype(np.uint8))
    return path


def _by_hand(model, frames: np.ndarray) -> np.ndarray:
    """Relative motion to frame 0, stitched, rendered: the README's recipe with the modules alone."""
    from faceexpr_cli.nn.liveportrait import decode, drive, transform_keypoint

    with torch.no_grad():
        src = as_batch(read_rgb("source.png"))
        info_s = decode(model.motion_extractor(src), 21)
        drv = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy()).float() / 255
        info_d = decode(model.motion_extractor(drv), 21)
        ref = {k: v[:1] for k, v in info_d.items()}
        x_s = transform_keypoint(info_s).expand(len(frames), -1, -1)
        x_d = model.stitching(x_s, drive(info_s, info_d, ref))
        f = model.appearance_feature_extractor(src).expand(len(frames), -1, -1, -1, -1)
        return model.spade_generator(model.warping_module(f, kp_source=x_s, kp_driving=x_d)[0]).numpy()


def test_video_driver_matches_the_modules_and_a_motion_template_replays_it(tmp_path, capsys, driver_video,
                                                                          tiny_model):
    from faceexpr_cli.animate.liveportrait_motion import load_template
    from faceexpr_cli.animate.liveportrait_template import ExtractOptions, extract_motion
    from faceexpr_cli.errors import UsageError
    from faceexpr_cli.media import read_frames

    out = tmp_path / "video.mp4"
    res = animate(FIXTURE / "source.png", driver_video, out, _opts())
    assert res.frames == 8 and (res.width, res.height) == (128, 128)
    got = _decode(out)
    want = _by_hand(tiny_model, read_frames(driver_video)).transpose(0, 2, 3, 1)
    assert got.shape == want.shape
    # the fixture's frames are noise-like, so H.264 alone costs ~0.06: compare with the by-hand frames encoded
    # by the same writer
    from faceexpr_cli.media import VideoWriter

    with VideoWriter(tmp_path / "want.mp4", 25.0) as w:
        for f in want:
            w.write(np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8))
    assert np.abs(got - _decode(tmp_path / "want.mp4")).mean() < 2e-3
    assert np.abs(got[7] - got[0]).mean() > 0.01  # the motion shows

    import json

    from faceexpr_cli.cli.app import main

    npz = tmp_path / "motion.npz"
    code = main(["animate", "extract-motion", str(driver_video), "-o", str(npz), "--crop", "none",
                 "--checkpoint", CKPT, "--config", CONFIG, "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code in (0, None) and info["frames"] == 8 and info["ratios"] is False  # no face in the fixture
    with pytest.raises(UsageError, match="written as .npz"):
        extract_motion(driver_video, tmp_path / "m.pkl", ExtractOptions(crop="none"))
    data = load_template(npz)
    assert data["kp"].shape == (8, 21, 3) and data["pitch"].shape == (8, 1) and float(data["fps"]) == 25.0
    with np.load(npz, allow_pickle=False) as raw:  # plain arrays, no pickle
        assert {"pitch", "yaw", "roll", "t", "exp", "scale", "kp", "found"} <= set(raw.files)
    replay = tmp_path / "replay.mp4"
    animate(FIXTURE / "source.png", npz, replay, _opts())
    assert np.abs(_decode(replay) - got).mean() < 1e-3


def test_regions_move_only_their_part(case):
    """region exp keeps the source pose; lip moves only LivePortrait's lip points; pose keeps the expression."""
    from faceexpr_cli.nn.liveportrait.camera import EYE_POINTS, LIP_POINTS, compose, drive, rotation_matrix

    info = {k: {f: torch.tensor(v, dtype=torch.float32) for f, v in d.items()}
            for k, d in case["keypoint_info"].items()}
    s, d, d0 = info["source"], info["driving"], info["driving_reference"]
    rot_s = rotation_matrix(s["pitch"], s["yaw"], s["roll"])
    t_s = s["t"].clone()
    exp_rel = s["exp"] + d["exp"] - d0["exp"]
    torch.testing.assert_close(drive(s, d, d0, "exp"), compose(s["kp"], rot_s, exp_rel, s["scale"], t_s))
    lip = s["exp"].clone()
    lip[:, list(LIP_POINTS)] = exp_rel[:, list(LIP_POINTS)]
    torch.testing.assert_close(drive(s, d, d0, "lip"), compose(s["kp"], rot_s, lip, s["scale"], t_s))
    eyes = drive(s, d, d0, "eyes") - compose(s["kp"], rot_s, s["exp"], s["scale"], t_s)
    moved = {i for i in range(21) if eyes[0, i].abs().max() > 0}
    assert moved == set(EYE_POINTS)
    rot_new = rotation_matrix(d["pitch"], d["yaw"], d["roll"]) @ rotation_matrix(
        d0["pitch"], d0["yaw"], d0["roll"]).transpose(1, 2) @ rot_s
    torch.testing.assert_close(drive(s, d, d0, "pose"), compose(s["kp"], rot_new, s["exp"], s["scale"], t_s))
    absolute = drive(s, d, None, "all")
    rot_d = rotation_matrix(d["pitch"], d["yaw"], d["roll"])
    torch.testing.assert_close(absolute, compose(s["kp"], rot_d, d["exp"], d["scale"], d["t"]))


def test_eye_retarget_and_multiplier_on_a_real_face(tmp_path, tiny_model):
    """On the astronaut (dlib finds the face): x_d = stitch(x_d_new + eye MLP(x_s, [left, right, target])),
    then the multiplier, from the 68-point ratios; computed here with the modules."""
    import cv2

    from faceexpr_cli.animate.engines import get_engine
    from faceexpr_cli.animate.landmarks import image_landmarks
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.nn.liveportrait import decode, drive, transform_keypoint
    from faceexpr_cli.samples import load_portrait

    full, portrait = load_portrait("astronaut")
    (cx, cy), half = portrait.face_center, int(portrait.face_size)
    face = full[max(0, int(cy) - half):int(cy) + half, max(0, int(cx) - half):int(cx) + half]
    image = cv2.resize(face, (160, 160), interpolation=cv2.INTER_AREA)
    extra = {"crop": "none", "eye_retarget": "0.05", "driving_multiplier": 1.5}
    engine = get_engine("liveportrait", EngineOptions(checkpoint=CKPT, config=CONFIG, extra=extra))
    src = engine.set_source(image, "astronaut")
    drv = engine.driving_motion(iter([image[::-1].copy(), image]), "driver")
    got = engine.retarget(src, drv, drv.frame(1), relative=True, adapt_scale=False).points

    pts = image_landmarks(get_backend("dlib"), image, "astronaut").landmarks68
    left = (np.linalg.norm(pts[37] - pts[41]) + np.linalg.norm(pts[38] - pts[40])) / (2 * np.linalg.norm(pts[36] - pts[39]))
    right = (np.linalg.norm(pts[43] - pts[47]) + np.linalg.norm(pts[44] - pts[46])) / (2 * np.linalg.norm(pts[42] - pts[45]))
    assert 0.1 < left < 0.6 and 0.1 < right < 0.6
    with torch.no_grad():
        x = torch.from_numpy(np.stack([image[::-1].copy(), image]).transpose(0, 3, 1, 2).copy()).float() / 255
        info_d = decode(tiny_model.motion_extractor(x), 21)
        info_s = decode(tiny_model.motion_extractor(x[1:]), 21)
        x_s = transform_keypoint(info_s).expand(2, -1, -1)
        x_new = drive(info_s, info_d, {k: v[1:] for k, v in info_d.items()})
        ratio = torch.tensor([[left, right, 0.05]] * 2, dtype=torch.float32)
        x_d = tiny_model.stitching(x_s, x_new + tiny_model.retarget_eye(x_s, ratio))
        want = (x_s + (x_d - x_s) * 1.5).numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got[1] - x_s[1].numpy()).max() > 1e-4  # the eye delta moves the reference frame too


@pytest.mark.parametrize("args, words", [
    (["--region", "nose"], "--region nose"),
    (["--eye-retarget", "wide"], "--eye-retarget wide"),
    (["--driving-multiplier", "nan"], "--driving-multiplier"),
    (["--driving-option", "fast"], "--driving-option fast"),
])
def test_bad_options_are_one_line_usage_errors(tmp_path, capsys, args, words):
    from faceexpr_cli.cli.app import main

    code = main(["animate", "-s", str(FIXTURE / "source.png"), "-d", str(FIXTURE / "driving.png"),
                 "-o", str(tmp_path / "r.png"), "--engine", "liveportrait", "--crop", "none", "--config", CONFIG,
                 "--checkpoint", CKPT, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert words in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.png").exists()


def test_bad_templates_and_engines_are_refused(tmp_path):
    from faceexpr_cli.errors import MediaError, UsageError

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(MediaError, match="motion template"):
        animate(FIXTURE / "source.png", junk, tmp_path / "a.mp4", _opts())
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(MediaError, match="not an fx LivePortrait motion template"):
        animate(FIXTURE / "source.png", other, tmp_path / "b.mp4", _opts())
    with pytest.raises(UsageError, match="drive the liveportrait engine"):
        animate(FIXTURE / "source.png", other, tmp_path / "c.mp4", AnimateOptions(engine="landmarks"))
    assert not list(tmp_path.glob("*.mp4"))


def test_defaults_are_livePortrait_framing():
    opts = AnimateOptions(engine="liveportrait", engine_options=EngineOptions(checkpoint=CKPT, config=CONFIG))
    opts.validate()
    assert (opts.crop, opts.paste_back, opts.crop_increase) == ("auto", True, 0.65)
    fomm = AnimateOptions(engine="fomm").validate()
    assert (fomm.crop, fomm.paste_back, fomm.crop_increase) == ("none", False, 0.4)


def test_eval_runs_with_the_engine_through_the_cli(tmp_path, capsys, driver_video):
    import json

    from faceexpr_cli.cli.app import main

    code = main(["animate", "eval", str(driver_video), "--engine", "liveportrait", "--checkpoint", CKPT,
                 "--config", CONFIG, "--size", "64", "--out", str(tmp_path / "eval"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code in (0, None) and summary["failed"] == 0 and summary["frames"] == 8
    assert 0 < summary["l1"] < 0.5
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["l1"] == summary["l1"]


def test_cached_weights_are_the_default(tmp_path, monkeypatch):
    """Without --checkpoint the engine reads the card's cache ($FX_HOME/weights/liveportrait/), or says which
    download to run."""
    import shutil

    from faceexpr_cli.animate.engines import get_engine
    from faceexpr_cli.errors import WeightsNotFoundError
    from faceexpr_cli.paths import weights_dir

    monkeypatch.setenv("FX_HOME", str(tmp_path / "home"))
    opts = EngineOptions(config=CONFIG, extra={"crop": "none"})
    with pytest.raises(WeightsNotFoundError) as err:
        get_engine("liveportrait", opts)
    assert "fx download weights liveportrait" in err.value.one_line()
    cache = weights_dir() / "liveportrait"
    cache.mkdir(parents=True)
    for f in FIXTURE.glob("checkpoints/*.pth"):
        shutil.copy(f, cache / f.name)
    engine = get_engine("liveportrait", opts)
    assert engine.weights == str(cache) and engine.stitch
    import hashlib

    pin = cache / "warping_module.pth.fx-first-sha256"  # no published sha256: the first use pins each file
    assert pin.read_text() == hashlib.sha256((cache / "warping_module.pth").read_bytes()).hexdigest()
    with open(cache / "warping_module.pth", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(WeightsNotFoundError) as err:
        get_engine("liveportrait", opts)
    assert "changed since their first use" in err.value.one_line()


def test_source_video_animates_each_source_frame(tmp_path, driver_video, tiny_model):
    """Video-to-video: frame i = source frame i with the driver's expression change (region exp by default: the
    source keeps its pose), as long as the shorter video; checked against the modules by hand."""
    from faceexpr_cli.media import VideoWriter, read_frames
    from faceexpr_cli.nn.liveportrait import decode, drive, transform_keypoint

    src = read_rgb("source.png").astype(np.float32)
    other = read_rgb("driving.png").astype(np.float32)
    src_path = tmp_path / "source.mp4"
    with VideoWriter(src_path, 25.0) as w:
        for k in range(5):
            w.write(np.clip(src + (other - src) * k / 8, 0, 255).astype(np.uint8))
    out = tmp_path / "v2v.mp4"
    res = animate(src_path, driver_video, out, _opts())
    assert res.frames == 5 and res.details["region"] == "exp"

    s_frames, d_frames = read_frames(src_path), read_frames(driver_video)[:5]
    with torch.no_grad():
        def batch(a):
            return torch.from_numpy(a.transpose(0, 3, 1, 2).copy()).float() / 255

        info_s = decode(tiny_model.motion_extractor(batch(s_frames)), 21)
        info_d = decode(tiny_model.motion_extractor(batch(d_frames)), 21)
        x_s = transform_keypoint(info_s)
        x_d = tiny_model.stitching(x_s, drive(info_s, info_d, {k: v[:1] for k, v in info_d.items()}, "exp"))
        f = tiny_model.appearance_feature_extractor(batch(s_frames))
        want = tiny_model.spade_generator(tiny_model.warping_module(f, kp_source=x_s, kp_driving=x_d)[0])
    with VideoWriter(tmp_path / "want.mp4", 25.0) as w:
        for frame in want.numpy().transpose(0, 2, 3, 1):
            w.write(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
    assert np.abs(_decode(out) - _decode(tmp_path / "want.mp4")).mean() < 2e-3
