"""Everything that decides what ``fx crop`` writes. Plain data, so worker processes receive it by pickling."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from faceexpr_cli.crop.geometry import FILLS
from faceexpr_cli.errors import UsageError

MODES = ("union", "follow", "align")
OUT_OF_FRAME = ("pad", "drop")


@dataclass
class CropOptions:
    size: int = 256  # output side in pixels (518 for the expression models)
    mode: str = "union"  # union (one fixed square per clip), follow (moving square), align (rotated, FFHQ-style)
    margin: float = 0.3  # added on each side, as a fraction of the face box (or union) side
    out_of_frame: str = "pad"  # fill what a crop shifted inside the frame still leaves outside, or drop the clip
    fill: str = "blur"  # what fills that part: black, replicate, reflect or blur (geometry.FILLS)
    min_face: float = 32.0  # minimum mean face size (sqrt of box area, source pixels)
    min_duration: float = 1.0  # seconds; shorter tracks make no clip
    max_duration: float | None = None  # seconds; longer tracks are split into pieces
    single_face: bool = False  # the seed's rule: keep only spans where every frame has exactly one face
    score_threshold: float | None = None  # detector score below which a detection is ignored
    backend: str = "dlib"
    backend_options: dict[str, Any] = field(default_factory=dict)
    stride: int = 10  # detect every N frames; track in between
    detect_size: int | None = 480  # long side of the detector's input
    analysis_side: int = 480  # decode at most this long side for tracking (clips are cut from full frames)
    embed: bool = True  # an identity embedding per clip (dlib: 128-d, insightface: 512-d)
    max_pixels: int = 4096 * 4096  # larger videos are refused with a clear status
    audio: bool = True
    fps: float | None = None  # resample clips to this constant rate; None keeps the source's frame times
    crf: int = 18
    preset: str = "superfast"  # x264 preset: encoding is a third of the work at 256 px; veryfast is 2x slower

    def validate(self) -> CropOptions:
        if self.mode not in MODES:
            raise UsageError(f"unknown crop mode '{self.mode}'", f"use one of: {', '.join(MODES)}")
        if self.out_of_frame not in OUT_OF_FRAME:
            raise UsageError(f"unknown out-of-frame rule '{self.out_of_frame}'", "use pad or drop")
        if self.fill not in FILLS:
            raise UsageError(f"unknown --fill '{self.fill}'", f"use one of: {', '.join(FILLS.names())}")
        if not 16 <= self.size <= 4096:
            raise UsageError(f"--size {self.size} is out of range", "use 16..4096, e.g. 256 or 518")
        if self.margin < 0:
            raise UsageError("--margin must be >= 0")
        if self.fps is not None and not (0 < self.fps <= 1000):  # also refuses NaN
            raise UsageError(f"--fps {self.fps} is out of range", "use a rate such as 25 or 30, or leave it out")
        if self.stride < 1:
            raise UsageError("--stride must be >= 1")
        if self.max_duration is not None and self.max_duration < max(self.min_duration, 0.1):
            raise UsageError("--max-duration must be at least --min-duration")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
