"""LivePortrait in pure torch, checkpoint-compatible with the released weights.

Five parts, as released: appearance feature extractor (F), motion extractor (M, ConvNeXtV2), warping module (W,
3-D dense motion with occlusion), SPADE decoder (G, spectral norm stored as ``weight_orig/u/v``), and the
stitching / eye / lip retargeting MLPs (S). Tensor-in, tensor-out forwards, so each part exports to ONNX.
"""

from faceexpr_cli.nn.liveportrait.appearance import AppearanceFeatureExtractor
from faceexpr_cli.nn.liveportrait.camera import (
    FIELDS,
    REGIONS,
    decode,
    drive,
    rotation_matrix,
    transform_keypoint,
)
from faceexpr_cli.nn.liveportrait.convnextv2 import ConvNeXtV2
from faceexpr_cli.nn.liveportrait.dense_motion import DenseMotionNetwork
from faceexpr_cli.nn.liveportrait.model import PARTS, RETARGETING, LivePortrait
from faceexpr_cli.nn.liveportrait.motion import MotionExtractor
from faceexpr_cli.nn.liveportrait.spade import SPADEDecoder
from faceexpr_cli.nn.liveportrait.stitching import Retargeter, Stitcher, StitchingRetargetingNetwork
from faceexpr_cli.nn.liveportrait.warping import WarpingNetwork

__all__ = [
    "FIELDS",
    "PARTS",
    "REGIONS",
    "RETARGETING",
    "AppearanceFeatureExtractor",
    "ConvNeXtV2",
    "DenseMotionNetwork",
    "LivePortrait",
    "MotionExtractor",
    "Retargeter",
    "SPADEDecoder",
    "Stitcher",
    "StitchingRetargetingNetwork",
    "WarpingNetwork",
    "decode",
    "drive",
    "rotation_matrix",
    "transform_keypoint",
]
