"""Evaluation pictures and videos reach TensorBoard, and what TensorBoard holds is what eval/ holds."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageSequence


def _tb_images(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={IMAGES: 0})
    acc.Reload()
    return {tag: acc.Images(tag) for tag in acc.Tags()["images"]}


def test_eval_video_and_token_plot_go_to_tensorboard(tiny_recipe, tmp_path):
    import av

    from faceexpr_cli.train.runner import run

    res = run(tiny_recipe("trainer.max_steps=2", "trainer.eval_every=2", "trainer.tensorboard=true"), tmp_path / "r")
    images = _tb_images(res.run_dir)
    assert set(images) >= {"eval/tokens", "eval/video"}, images.keys()
    (video_event,) = images["eval/video"]
    assert video_event.step == 2
    gif = Image.open(io.BytesIO(video_event.encoded_image_string))
    gif_frames = [np.asarray(f.convert("RGB"), np.float32) for f in ImageSequence.Iterator(gif)]
    mp4 = res.run_dir / "eval" / "step_000002.mp4"
    with av.open(str(mp4)) as box:
        mp4_frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in box.decode(video=0)]
    assert len(gif_frames) == len(mp4_frames) > 1
    assert gif_frames[0].shape == mp4_frames[0].shape  # small eval videos are not shrunk
    # the GIF shows the eval video's frames (palette quantisation allows some error), in order
    errors = [np.abs(g - m).mean() for g, m in zip(gif_frames, mp4_frames, strict=True)]
    assert max(errors) < 12, errors
    shuffled = np.abs(gif_frames[0] - mp4_frames[-1]).mean()
    assert errors[0] < shuffled or np.allclose(mp4_frames[0], mp4_frames[-1], atol=3)
    (plot_event,) = images["eval/tokens"]
    tb_plot = np.asarray(Image.open(io.BytesIO(plot_event.encoded_image_string)).convert("RGB"), np.float32)
    png = np.asarray(Image.open(res.run_dir / "eval" / "step_000002_tokens.png").convert("RGB"), np.float32)
    assert tb_plot.shape == png.shape and np.abs(tb_plot - png).max() <= 1


def test_no_tensorboard_media_without_tensorboard(tiny_recipe, tmp_path):
    from faceexpr_cli.train.runner import run

    res = run(tiny_recipe("trainer.max_steps=2", "trainer.eval_every=2"), tmp_path / "r")
    assert not (res.run_dir / "tb").exists()
    assert (res.run_dir / "eval" / "step_000002.mp4").is_file()
