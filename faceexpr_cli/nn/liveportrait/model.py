"""LivePortrait (Guo et al., 2024) as one container of its five parts, built from a ``model_params`` dict laid
out as the original ``models.yaml``. The parts are independent modules (each has its own released state dict);
the container only groups them for builders, ONNX export and devices."""

from __future__ import annotations

from typing import Any

from torch import nn

from faceexpr_cli.nn.liveportrait.appearance import AppearanceFeatureExtractor
from faceexpr_cli.nn.liveportrait.camera import FIELDS, decode
from faceexpr_cli.nn.liveportrait.motion import MotionExtractor
from faceexpr_cli.nn.liveportrait.spade import SPADEDecoder
from faceexpr_cli.nn.liveportrait.stitching import Retargeter, Stitcher
from faceexpr_cli.nn.liveportrait.warping import WarpingNetwork

# part -> the release's file stem (base_models/ and retargeting_models/)
PARTS = {"appearance_feature_extractor": "appearance_feature_extractor", "motion_extractor": "motion_extractor",
         "warping_module": "warping_module", "spade_generator": "spade_generator"}
# retargeting MLP -> the key of its state dict in stitching_retargeting_module.pth
RETARGETING = {"stitching": "retarget_shoulder", "retarget_lip": "retarget_mouth", "retarget_eye": "retarget_eye"}


class LivePortrait(nn.Module):
    def __init__(self, appearance_feature_extractor_params: dict[str, Any],
                 motion_extractor_params: dict[str, Any], warping_module_params: dict[str, Any],
                 spade_generator_params: dict[str, Any],
                 stitching_retargeting_module_params: dict[str, Any] | None = None):
        super().__init__()
        self.appearance_feature_extractor = AppearanceFeatureExtractor(**appearance_feature_extractor_params)
        self.motion_extractor = MotionExtractor(**motion_extractor_params)
        self.warping_module = WarpingNetwork(**warping_module_params)
        self.spade_generator = SPADEDecoder(**spade_generator_params)
        self.num_kp = self.motion_extractor.num_kp
        s = stitching_retargeting_module_params
        self.has_retargeting = s is not None
        if s is not None:
            self.stitching = Stitcher(**s["stitching"])
            self.retarget_lip = Retargeter(**s["lip"])
            self.retarget_eye = Retargeter(**s["eye"])

    def motion(self, image):
        """The motion extractor's outputs decoded: pitch, yaw, roll (B, 1) in degrees, t (B, 3), exp (B, K, 3),
        scale (B, 1), kp (B, K, 3) (one tuple, so the decoding travels inside the exported graph)."""
        info = decode(self.motion_extractor(image), self.num_kp)
        return tuple(info[k] for k in FIELDS)
