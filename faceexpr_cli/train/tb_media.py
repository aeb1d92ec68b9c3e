"""Evaluation pictures and videos for TensorBoard, beside the files in ``eval/``.

TensorBoard shows a video as an animated GIF inside an image summary (what ``SummaryWriter.add_video`` writes,
except that torch's version needs moviepy 1.x); the GIF is encoded here with Pillow, so nothing more is needed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

MAX_SIDE = 384  # a TensorBoard video stays small: frames are shrunk to this long side
MAX_FRAMES = 96


def _shrink(frames: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = frames.shape[1:3]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale >= 1.0:
        return frames
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])


def gif_summary(tag: str, frames: np.ndarray, fps: float):
    """A TensorBoard ``Summary`` holding ``frames`` (N, H, W, 3) uint8 as an animated GIF at ``fps``."""
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    frames = _shrink(np.asarray(frames[:MAX_FRAMES], dtype=np.uint8))
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, round(1000 / max(fps, 1e-3))))
    h, w = frames.shape[1:3]
    image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=buf.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def log_eval(tb, step: int, result: dict) -> None:
    """Write an evaluation's token plot (an image) and side-by-side video (a GIF) to the SummaryWriter ``tb``."""
    from PIL import Image

    plot = result.get("plot")
    if plot and Path(plot).is_file():
        picture = np.asarray(Image.open(plot).convert("RGB"))
        tb.add_image("eval/tokens", picture, step, dataformats="HWC")
    video = result.get("video")
    if video and Path(video).is_file():
        from faceexpr_cli.media import probe, read_frames

        frames = read_frames(video)
        tb._get_file_writer().add_summary(gif_summary("eval/video", frames, probe(video).fps), step)
    tb.flush()
