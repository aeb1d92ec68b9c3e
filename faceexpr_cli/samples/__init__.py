"""Embedded sample media: public-domain portraits shipped by installed packages, and test videos built from them."""

from faceexpr_cli.samples.portraits import PORTRAITS, Portrait, load_portrait
from faceexpr_cli.samples.talking_head import TalkingHead, make_talking_head

__all__ = ["PORTRAITS", "Portrait", "TalkingHead", "load_portrait", "make_talking_head"]
