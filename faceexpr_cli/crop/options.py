"""Everything that decides what ``fx crop`` writes. Plain data, so worker processes receive it by pickling."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from faceexpr_cli.crop.geometry import FILLS
from faceexpr_cli.errors import UnknownNameError, UsageError
from faceexpr_cli.safety import check_number

MODES = ("union", "follow", "align")
OUT_OF_FRAME = ("pad", "drop")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
# options that decide what a video's clips and rows hold; a resume must match them (see crop/runinfo.py)
NOT_OUTPUT_SHAPING = ("max_pixels",)


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
    backend: str = "default"  # resolved by validate(): auto when the MediaPipe weights are cached, else dlib
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
        """Every value checked before any work: NaN, infinity and out-of-range numbers are usage errors, so no
        row can say ``no_face`` or ``error`` because of an option."""
        if self.mode not in MODES:
            raise UsageError(f"unknown crop mode '{self.mode}'", f"use one of: {', '.join(MODES)}")
        if self.out_of_frame not in OUT_OF_FRAME:
            raise UsageError(f"unknown out-of-frame rule '{self.out_of_frame}'", "use pad or drop")
        if self.fill not in FILLS:
            raise UsageError(f"unknown --fill '{self.fill}'", f"use one of: {', '.join(FILLS.names())}")
        if self.preset not in X264_PRESETS:
            raise UnknownNameError("x264 --preset", str(self.preset), X264_PRESETS)
        _int(self.size, "--size", minimum=16, maximum=4096, hint="use 16..4096, e.g. 256 or 518")
        check_number(self.margin, "--margin", minimum=0, maximum=10, hint="e.g. 0.3 (30% of the box on each side)")
        check_number(self.fps, "--fps", above=0, maximum=1000,
                     hint="use a rate such as 25 or 30, or leave it out")
        _int(self.stride, "--stride", minimum=1, maximum=1000)
        _int(self.detect_size, "--detect-size", minimum=64, maximum=8192,
             hint="e.g. 480; 0 detects on the full frame")
        _int(self.analysis_side, "analysis_side", minimum=64, maximum=8192)
        check_number(self.score_threshold, "--score-threshold", hint="a detector score, e.g. 0.5, or leave it out")
        check_number(self.min_face, "--min-face", minimum=0, hint="a face size in source pixels, e.g. 32")
        check_number(self.min_duration, "--min-duration", minimum=0, hint="seconds, e.g. 1")
        check_number(self.max_duration, "--max-duration", above=0, hint="seconds, e.g. 30, or leave it out")
        if self.max_duration is not None and self.max_duration < max(self.min_duration, 0.1):
            raise UsageError("--max-duration must be at least --min-duration")
        _int(self.max_pixels, "--max-pixels", minimum=1, hint="pixels per frame, e.g. 16777216 (4096x4096)")
        _int(self.crf, "crf", minimum=0, maximum=51)
        if not isinstance(self.backend_options, dict):
            raise UsageError("backend options must be key=value pairs")
        from faceexpr_cli.face.backend import resolve_backend_name

        self.backend = resolve_backend_name(self.backend)  # run.json and the manifest record the real backend
        return self

    def settings(self) -> dict[str, Any]:
        """What a resume into the same folder must match: everything that shapes the clips and their rows."""
        d = self.to_dict()
        for k in NOT_OUTPUT_SHAPING:
            d.pop(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value, flag: str, *, minimum=None, maximum=None, hint=None):
    """A whole number in range (``None`` passes); 1.5 or "abc" is a usage error, never a silent truncation."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{flag} must be a whole number, got {value!r}", hint)
    return check_number(value, flag, minimum=minimum, maximum=maximum, hint=hint)
