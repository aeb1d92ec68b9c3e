"""First Order Motion Model (Siarohin et al., 2019) in pure torch, checkpoint-compatible with the original code.

Parameter names, registration order, interpolation modes and BatchNorm handling follow the original so that its
``vox-cpk.pth.tar``-style state dicts load strictly. Export-friendly: closed-form 2x2 inverse, 4-D grid_sample,
tensor-in/tensor-out forwards.
"""

from faceexpr_cli.nn.fomm.blocks import AntiAliasInterpolation2d, coordinate_grid, inverse2x2, kp2gaussian
from faceexpr_cli.nn.fomm.dense_motion import DenseMotionNetwork
from faceexpr_cli.nn.fomm.discriminator import MultiScaleDiscriminator
from faceexpr_cli.nn.fomm.generator import OcclusionAwareGenerator
from faceexpr_cli.nn.fomm.keypoint_detector import KPDetector
from faceexpr_cli.nn.fomm.model import PARTS, FirstOrderModel

__all__ = [
    "PARTS",
    "AntiAliasInterpolation2d",
    "DenseMotionNetwork",
    "FirstOrderModel",
    "KPDetector",
    "MultiScaleDiscriminator",
    "OcclusionAwareGenerator",
    "coordinate_grid",
    "inverse2x2",
    "kp2gaussian",
]
