"""``fx animate extract-motion``: a driving video's LivePortrait motion written once as ``motion.npz``, so the
driver can be reused (``fx animate --driving motion.npz``) without the video.

The frames are framed as ``fx animate`` frames them (``--crop auto``: one 2.3x square around the face over the whole
video, cut at 512 px and fed at 256 px; ``--crop none``: as they are), measured in batches, and stored per frame
with which frames had a face (fx's face follower) and, where one was seen, the eye and lip ratios of its 68
landmarks (for ``--eye-retarget driver``/``--lip-retarget driver``). Written under a temporary name, then renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.animate.engines import EngineOptions, check_engine_options, get_engine
from faceexpr_cli.errors import UsageError


@dataclass
class ExtractOptions:
    crop: str = "auto"
    max_frames: int | None = None
    max_pixels: int | None = None
    engine_options: EngineOptions | None = None


def extract_motion(driving: str | Path, out: str | Path, opts: ExtractOptions) -> dict[str, Any]:
    from faceexpr_cli.animate.crop import tube_crop
    from faceexpr_cli.animate.engines.liveportrait import LivePortraitEngine
    from faceexpr_cli.animate.landmarks import LandmarkFollower, NoFaceError
    from faceexpr_cli.animate.liveportrait_motion import eye_ratios, lip_ratio, save_template
    from faceexpr_cli.animate.pipeline import Driving
    from faceexpr_cli.console import log, progress
    from faceexpr_cli.face import get_backend

    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise UsageError(f"-o {out}: a motion template is written as .npz", "e.g. -o motion.npz")
    if opts.crop not in ("auto", "none"):
        raise UsageError(f"--crop {opts.crop}: use auto or none")
    if out.parent and not out.parent.exists():
        raise UsageError(f"-o {out}: folder {out.parent} does not exist")
    eo = opts.engine_options or EngineOptions()
    eo.extra.setdefault("crop", opts.crop)
    check_engine_options("liveportrait", eo)
    source = Driving(Path(driving), opts.max_frames, opts.max_pixels)
    if source.is_image:
        raise UsageError(f"{driving}: extract-motion reads a driving video", "pass an .mp4/.mov")
    engine = get_engine("liveportrait", eo)
    assert isinstance(engine, LivePortraitEngine)
    backend = get_backend(eo.face_backend)
    if opts.crop == "auto":
        crop = tube_crop(backend, source.raw(fps=2.0), engine.size or 512, str(driving),
                         LivePortraitEngine.default_crop_increase)
        source.transform = crop.apply
    follower = LandmarkFollower(backend, 10)
    with progress(transient=True) as bar:
        task = bar.add_task("motion", total=source.count)

        def frames():
            for frame in source.frames():
                follower.update(frame)
                bar.advance(task)
                yield frame

        motion = engine.driving_motion(frames(), str(driving))
    eyes = lips = None
    try:
        track = follower.track(str(driving))
        found = track.found
        eyes = np.stack([eye_ratios(p) for p in track.points])
        lips = np.array([lip_ratio(p) for p in track.points], np.float32)
    except NoFaceError:
        log.warning("%s: no face found by the face layer; motion kept, no eye/lip ratios", driving)
        found = np.ones(len(motion), bool)
    save_template(out, motion.points, engine.num_kp, source.fps, found, eyes, lips)
    return {"out": str(out), "frames": len(motion), "fps": source.fps, "num_kp": engine.num_kp,
            "face_frames": int(np.sum(found)), "ratios": eyes is not None, "crop": opts.crop,
            "details": engine.describe()}
