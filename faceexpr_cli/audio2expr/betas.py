"""`fx audio2expr betas`: per clip, its expression sequence on a run's basis, for emotion-adding pairs.

Measured: the clip's landmark offsets projected on the run's PCA basis (the training targets). Predicted: the
run's output from the clip's audio (the fork trains emotion adding on predicted neutral expressions). One
``<clip>.npz`` per clip (``expression`` (T, K), ``fps``), named after the clip so that takes pair by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from faceexpr_cli.safety import plain_name


def write_betas(clips_path: str | Path, run: str | Path, out: str | Path, *, predicted: bool = False,
                face_backend: str = "dlib") -> dict:
    from faceexpr_cli.audio2expr.clips import load_clips
    from faceexpr_cli.audio2expr.predict import Audio2ExprModel
    from faceexpr_cli.runlock import ensure_out_dir, output_lock

    model = Audio2ExprModel.load(run)
    out = ensure_out_dir(out, "--out")
    with output_lock(out, "fx audio2expr betas", "--out"):
        clips = load_clips(clips_path, out / ".targets", face_backend=face_backend, min_frames=5, spec=model.spec)
        for clip in clips:
            coeffs = model.basis.project(clip.offsets)
            if predicted:
                coeffs = model.run(clip.windows(model.spec)[None], coeffs[:1], clip.blink[None])[0][0]
            name = plain_name(re.sub(r"[^A-Za-z0-9._-]", "_", Path(clip.key).stem).lstrip(".") or "clip", "clip name")
            tmp = out / f".{name}.tmp.npz"
            np.savez(tmp, expression=coeffs.astype(np.float32), fps=np.float32(clip.fps))
            tmp.replace(out / f"{name}.npz")
    return {"out": str(out), "clips": len(clips), "dim": model.dim, "predicted": predicted}
