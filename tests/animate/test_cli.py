"""`fx animate` through the CLI: both engines, image driving, ONNX backend, and the messages users see."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceexpr_cli.cli.app import main


def _run(capsys, *args):
    code = main(list(map(str, args)))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_help_parses(capsys):
    code, out, _ = _run(capsys, "animate", "--help")
    assert code == 0 and "--driving" in out and "--find-best-frame" in out and "eval" in out
    code, out, _ = _run(capsys, "animate", "eval", "--help")
    assert code == 0 and "AKD" in out
    code, out, _ = _run(capsys, "train", "animator", "--help")
    assert code == 0 and "fomm-tiny" in out


def test_missing_arguments_is_one_line(capsys):
    code, _, err = _run(capsys, "animate", "--source", "a.png")
    assert code == 2 and "needs --driving, --out" in err and "Traceback" not in err


@pytest.mark.usefixtures("shared_onnx_cache")
def test_fomm_engine_original_yaml_onnx_side_by_side(tmp_path, capsys, sample_video, portrait_png, tiny_fomm_args):
    """Original FOMM YAML + original-layout checkpoint, ONNX Runtime backend, source | driving | result."""
    out = tmp_path / "fomm.mp4"
    code, stdout, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", out,
                             *tiny_fomm_args, "--backend", "onnx", "--side-by-side", "--max-frames", 6,
                             "--adapt-scale", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["frames"] == 6 and result["details"]["backend"] == "onnx" and result["audio"]
    assert (result["width"], result["height"]) == (3 * 256, 256)
    from faceexpr_cli.media import probe

    assert probe(out).frame_count == 6


@pytest.mark.usefixtures("shared_onnx_cache")
def test_fomm_torch_and_onnx_agree(tmp_path, sample_video, portrait_png):
    from faceexpr_cli.animate.engines import EngineOptions
    from faceexpr_cli.animate.pipeline import AnimateOptions, animate
    from faceexpr_cli.media import read_image

    from .conftest import FOMM_FIXTURES

    driving = tmp_path / "frame.png"
    from faceexpr_cli.media import read_frames, write_image

    write_image(driving, read_frames(sample_video.path, max_frames=1)[0])
    outs = []
    for backend in ("torch", "onnx"):
        eo = EngineOptions(backend=backend, config=str(FOMM_FIXTURES / "tiny_config.yaml"),
                           checkpoint=str(FOMM_FIXTURES / "tiny_checkpoint.pth"))
        res = animate(portrait_png, driving, tmp_path / f"{backend}.png", AnimateOptions(engine="fomm",
                                                                                         engine_options=eo))
        assert res.frames == 1 and res.reference_frame == 0  # no --reference: frame 0 of the one image
        outs.append(read_image(res.out).astype(int))
    assert outs[0].shape == (256, 256, 3)
    assert np.abs(outs[0] - outs[1]).max() <= 1


def test_landmarks_image_driving_gives_png(tmp_path, capsys, sample_video, portrait_png):
    from faceexpr_cli.media import read_frames, read_image

    frame = read_frames(sample_video.path, start=1.0, max_frames=1)[0]
    rgba = np.concatenate([frame, np.full(frame.shape[:2] + (1,), 255, np.uint8)], axis=2)
    import cv2

    drv = tmp_path / "driver.png"
    cv2.imwrite(str(drv), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))  # an alpha channel: converted on reading
    gray_src = tmp_path / "gray.png"
    cv2.imwrite(str(gray_src), cv2.cvtColor(read_image(portrait_png), cv2.COLOR_RGB2GRAY))
    out = tmp_path / "out.png"
    code, stdout, err = _run(capsys, "animate", "-s", gray_src, "-d", drv, "-o", out)
    assert code == 0, err
    img = read_image(out)
    assert img.shape == (512, 512, 3)
    assert "1 frame(s)" in stdout
    # The driving image as its own reference: no motion, so the result is the source itself.
    code, _, err = _run(capsys, "animate", "-s", gray_src, "-d", drv, "-o", tmp_path / "still.png", "--reference",
                        drv)
    assert code == 0, err
    still = read_image(tmp_path / "still.png").astype(int)
    assert np.abs(still - read_image(gray_src).astype(int)).max() <= 2
    assert np.abs(img.astype(int) - still).mean() > 0.05  # while absolute motion (above) did move the face


@pytest.mark.parametrize("case", ["no_face_source", "wrong_checkpoint", "video_out_for_image", "paste_no_crop"])
def test_bad_input_messages(case, tmp_path, capsys, sample_video, portrait_png, tiny_fomm_args):
    from faceexpr_cli.media import write_image

    blank = write_image(tmp_path / "blank.png", np.full((128, 128, 3), 127, np.uint8))
    args = {
        "no_face_source": ["-s", blank, "-d", sample_video.path, "-o", tmp_path / "o.mp4"],
        # The tiny checkpoint into the vox-256 card: keys fit, shapes do not.
        "wrong_checkpoint": ["-s", portrait_png, "-d", sample_video.path, "-o", tmp_path / "o.mp4", "--engine",
                             "fomm", "--checkpoint", tiny_fomm_args[-1]],
        "video_out_for_image": ["-s", portrait_png, "-d", portrait_png, "-o", tmp_path / "o.mp4"],
        "paste_no_crop": ["-s", portrait_png, "-d", sample_video.path, "-o", tmp_path / "o.mp4", "--paste-back"],
    }[case]
    code, _, err = _run(capsys, "animate", *args)
    want = {"no_face_source": (1, "blank.png: no face found"),
            "wrong_checkpoint": (1, "wrong shape"),
            "video_out_for_image": (2, "use --out result.png"),
            "paste_no_crop": (2, "needs --crop auto")}[case]
    assert code == want[0], err
    assert want[1] in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # the one error line, nothing else
    assert not (tmp_path / "o.mp4").exists()


def test_crop_paste_back_and_find_best_frame(tmp_path, capsys, sample_video, portrait_png):
    """An ordinary photo: face cropped, animated, pasted back into the full image; motion from the best frame."""
    out = tmp_path / "pasted.mp4"
    code, stdout, err = _run(capsys, "animate", "-s", portrait_png, "-d", sample_video.path, "-o", out,
                             "--crop", "auto", "--paste-back", "--find-best-frame", "--max-frames", 8, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert (result["width"], result["height"]) == (512, 512) and result["frames"] == 8
    assert 0 <= result["reference_frame"] < 8
    from faceexpr_cli.media import read_frames, read_image

    first = read_frames(out, max_frames=1)[0].astype(int)
    src = read_image(portrait_png).astype(int)
    assert np.abs(first[400:, :100] - src[400:, :100]).mean() < 6  # outside the face crop: the photo (H.264 noise)
