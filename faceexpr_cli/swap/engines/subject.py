"""The ``subject`` engine (seed 000): a trained ``fx train joint`` run re-renders each driving face as another
subject of its table.

Per driving face: a square crop (the landmarks' box grown by ``CROP_INCREASE`` on each side, the framing of
``fx crop``) at the run's input size -> tokenizer -> expression transformer (with the driver's subject row,
``--driver-subject``, 0 by default: for an unknown person any row serves) -> the reconstruction model with
the target subject's row (``--target-subject ID_OR_NAME``, a row number or a name of the run's
``subjects.json``) -> the reconstructed face pasted back through the inverse crop with an eroded, blurred mask
(as for inswapper). Works on a run directory (torch) or its ONNX export (``fx export-onnx RUN --all``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceexpr_cli.errors import UsageError
from faceexpr_cli.swap.engines import ENGINES, DrivingFace, SwapEngine, SwapOptions

CROP_INCREASE = 0.3


@ENGINES.register("subject")
class SubjectEngine(SwapEngine):
    name = "subject"
    uses_source = False

    def __init__(self, options: SwapOptions):
        super().__init__(options)
        from faceexpr_cli.extract.model import ExpressionModel, check_model_dir
        from faceexpr_cli.onnx.predictor import ChainPredictor, load_chain

        model = options.extra.get("model")
        if not model:
            raise UsageError("--engine subject needs --model RUN (a `fx train joint` run or its ONNX export)")
        self.path, self.kind = check_model_dir(model, None)
        chain = load_chain(self.kind, self.path, outputs=["image"], device=options.device)
        names = [n for p in chain.predictors for n in p.output_names]
        if "image" not in names or "expression" not in names:
            raise UsageError(f"{self.path} has no reconstruction model (output 'image') after its expression model",
                             "train with a reconstruction model (fx train joint), or export it too (--all)")
        self.decoder = chain.predictors[-1]
        self.encoder = ChainPredictor(chain.predictors[:-1])
        target = options.extra.get("target_subject")
        if target is None:
            raise UsageError("--engine subject needs --target-subject ID_OR_NAME (whose face to render)")
        self.target, self.target_name = ExpressionModel._subject(self.path, self.kind, chain, target)
        self.driver, _ = ExpressionModel._subject(self.path, self.kind, chain, options.extra.get("driver_subject"))
        from faceexpr_cli.onnx.preprocess import contract_size

        self.size = int(contract_size(chain.predictors[0].card.input)[0])

    def set_source(self, image: np.ndarray, face, what: str) -> None:
        """The identity comes from the run's subject table, not from the source photo (checked for a face only)."""

    def _crop(self, points: np.ndarray):
        from faceexpr_cli.animate.crop import make_crop

        box = np.array([*points.min(0), *points.max(0)], np.float64)
        return make_crop(box, self.size, CROP_INCREASE)

    def swap(self, frames: list[np.ndarray], faces: list[list[DrivingFace]]) -> list[np.ndarray]:
        from faceexpr_cli.face.align import invert_affine
        from faceexpr_cli.swap.engines.inswapper import paste_mask

        items = [(i, self._crop(face.points)) for i, fs in enumerate(faces) for face in fs]
        out = [f.copy() for f in frames]
        if not items:
            return out
        crops = np.stack([c.apply(frames[i]) for i, c in items])
        coded = self.encoder.run_frames(crops, batch_size=len(crops), subject_ids=self.driver)  # one positions table
        n = len(crops)
        images = self.decoder.run({"expression": coded["expression"],
                                   "subject_ids": np.full(n, self.target, np.int64),
                                   "positions": coded["positions"]})["image"]
        for (i, crop), image in zip(items, np.asarray(images), strict=True):
            fake = np.clip(image.transpose(1, 2, 0) * 255.0, 0, 255).astype(np.float32)
            back, alpha = paste_mask(fake, invert_affine(crop.matrix.astype(np.float32)), out[i].shape)
            out[i] = np.clip(out[i] * (1 - alpha) + back * alpha + 0.5, 0, 255).astype(np.uint8)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": self.kind, "model": str(self.path), "target_subject": self.target,
                "target_name": self.target_name, "driver_subject": self.driver, "size": self.size}
