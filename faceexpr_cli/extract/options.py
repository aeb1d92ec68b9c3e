"""What `fx extract-feats` does per video, as one validated record (also the basis of the resume fingerprint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from faceexpr_cli.safety import check_number


@dataclass
class ExtractOptions:
    stride: int = 1  # tokens for every Nth frame (frame index % stride == 0); tracking still sees every frame
    smooth: bool = False  # zero-phase low-pass of the tokens along each trajectory
    smooth_hz: float = 3.0  # cutoff of that filter; expressions change at a few Hz, frame noise faster
    margin: float = 0.3  # crop square = face box side x (1 + 2 margin), as `fx crop` frames training clips
    batch_size: int = 32  # face crops per model call
    face_backend: str | None = None  # None: dlib, or mediapipe when `mesh` is asked for (see resolve())
    face_options: dict[str, Any] = field(default_factory=dict)
    detect_every: int = 10  # the tracker's detection stride (optical flow in between)
    detect_size: int | None = 480  # long side of the detector's input
    analysis_side: int = 480  # tracking decode size (long side)
    min_face: float = 0.0  # drop trajectories whose mean face side (source pixels) is smaller
    subject: str | int | None = None  # subject row (or name in the run's subjects.json) for the expression model
    json_floats: bool = False  # tokens inside the per-video JSON too (the seed's `feats`); .npz and .parquet have them
    max_pixels: int = 4096 * 4096
    features: tuple[str, ...] | str | None = None  # tokens, mesh, emotion, landmarks; None: the default for --model

    def feature_names(self, has_model: bool) -> tuple[str, ...]:
        from faceexpr_cli.extract.features import parse_features

        return parse_features(self.features, has_model)

    def resolve(self, has_model: bool) -> ExtractOptions:
        """Features in canonical order and the face backend they need, fixed before any work (and the fingerprint)."""
        from faceexpr_cli.extract.features import resolve_backend

        self.features = self.feature_names(has_model)
        self.face_backend = resolve_backend(self.features, self.face_backend)
        return self

    def validate(self) -> ExtractOptions:
        """NaN, infinite and out-of-range numbers are usage errors (exit 2) before any work."""
        for name in ("stride", "batch_size", "detect_every", "analysis_side", "max_pixels"):
            check_number(getattr(self, name), f"--{name.replace('_', '-')}", minimum=1)
        check_number(self.detect_size, "--detect-size", minimum=1)
        check_number(self.margin, "--margin", minimum=0, maximum=10)
        check_number(self.smooth_hz, "--smooth-hz", above=0)
        check_number(self.min_face, "--min-face", minimum=0)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self, model_identity: str) -> str:
        """Everything that changes a video's outputs; a re-run redoes videos made with another fingerprint."""
        keep = {k: v for k, v in self.to_dict().items() if k not in ("batch_size", "max_pixels")}
        text = json.dumps({"options": keep, "model": model_identity}, sort_keys=True, default=str)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
