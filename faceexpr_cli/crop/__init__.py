"""``fx crop``: face tracks in videos become square face clips with their audio, a manifest and run stats."""

from faceexpr_cli.crop.inputs import Item, expand_inputs
from faceexpr_cli.crop.manifest import read_manifest
from faceexpr_cli.crop.options import CropOptions
from faceexpr_cli.crop.process import plan_clips, process_video
from faceexpr_cli.crop.run import CropResult, crop_videos

__all__ = ["CropOptions", "CropResult", "Item", "crop_videos", "expand_inputs", "plan_clips", "process_video",
           "read_manifest"]
