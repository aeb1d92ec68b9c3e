"""`fx swap --restore-expression`: the driver's expression re-imposed on the swapped face with LivePortrait.

A swap engine can soften an expression (a warp that misses a wink, a generator that closes a mouth). After any
engine, each swapped face is cut as LivePortrait expects (a square 2.3x the face box, 512 px, fed at the card's
size) from the swapped frame and from the original frame at the same place. The swapped crop is the source: its
appearance, identity and pose. The original crop is the driver, with absolute motion in the ``exp`` region, so
only its expression is taken, and stitching keeps the face aligned with its surroundings. The rendered crop is
pasted back with a soft mask; pixels outside the square are the swap's.
"""

from __future__ import annotations

import numpy as np

from faceexpr_cli.swap.engines import DrivingFace


class ExpressionRestorer:
    def __init__(self, checkpoint: str | None = None, config: str | None = None, backend: str = "torch",
                 device: str = "cpu", allow_cpu_fallback: bool = False):
        from faceexpr_cli.animate.engines import EngineOptions, get_engine

        options = EngineOptions(checkpoint=checkpoint, config=config, backend=backend, device=device, batch=1,
                                allow_cpu_fallback=allow_cpu_fallback, extra={"region": "exp"})
        self.engine = get_engine("liveportrait", options)
        self.crop_size = int(self.engine.crop_size)
        self.increase = float(self.engine.default_crop_increase)

    def crop_of(self, face: DrivingFace):
        from faceexpr_cli.animate.crop import make_crop

        pts = np.asarray(face.points, np.float64)
        box = np.array([*pts.min(axis=0), *pts.max(axis=0)])
        return make_crop(box, self.crop_size, self.increase)

    def restore_face(self, swapped: np.ndarray, original: np.ndarray, face: DrivingFace) -> np.ndarray:
        """``swapped`` with this face's expression taken from ``original`` (both full frames, same size)."""
        crop = self.crop_of(face)
        source = self.engine.set_source(crop.apply(swapped), "swapped face")
        driving = self.engine.driving_motion(iter([crop.apply(original)]), "driving face")
        targets = self.engine.retarget(source, driving, source, relative=False, adapt_scale=False)
        return crop.paste(swapped, self.engine.render(targets)[0])

    def restore(self, swapped: np.ndarray, original: np.ndarray, faces: list[DrivingFace]) -> np.ndarray:
        for face in faces:
            swapped = self.restore_face(swapped, original, face)
        return swapped

    def describe(self) -> dict:
        return {"restore_expression": True, "restore_weights": self.engine.weights,
                "restore_card": self.engine.card.name}
