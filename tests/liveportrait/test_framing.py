"""LivePortrait framing by default: a full photo is cut 2.3x around fx's face box (512 px, fed at 256 px) and the
result pasted back, so everything outside the crop square is the photo itself."""

from __future__ import annotations

import numpy as np

from faceexpr_cli.animate.engines import EngineOptions
from faceexpr_cli.animate.pipeline import AnimateOptions, animate
from tests.liveportrait.conftest import FIXTURE


def test_crop_auto_and_paste_back_are_the_default(tmp_path):
    from PIL import Image

    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import load_portrait

    image, _ = load_portrait("astronaut")
    src = write_image(tmp_path / "astronaut.png", image)
    opts = AnimateOptions(engine="liveportrait", engine_options=EngineOptions(
        checkpoint=str(FIXTURE / "checkpoints"), config=str(FIXTURE / "models.yaml"), face_backend="dlib"))
    res = animate(src, src, tmp_path / "out.png", opts)
    assert res.details["input_size"] == 256
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == image.shape  # pasted back into the full photo

    faces = get_backend("dlib").detect(image, keypoints=False)
    x0, y0, x1, y1 = max(faces, key=lambda f: f.size).bbox
    half = 2.3 * max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    outside = (np.abs(xx - cx) > half + 1) | (np.abs(yy - cy) > half + 1)
    assert outside.mean() > 0.05
    assert np.array_equal(out[outside], image[outside])  # untouched outside the crop square
    centre = (np.abs(xx - cx) < half / 3) & (np.abs(yy - cy) < half / 3)
    assert np.abs(out[centre].astype(int) - image[centre]).mean() > 10  # the (random-weight) model drew there
