"""``--on-missing-face``: what an animation does on driving frames where the driver's face is lost.

The motion measured on a frame without a face (a shape predictor's 68 points on background, a key point network's
guess on an empty crop) is never rendered. Those frames get instead, by policy name:

- ``hold`` (default): the last good frame's motion (before the first good frame: the first good frame's), so the
  portrait freezes in its last expression and moves on when the face comes back;
- ``neutral``: the reference frame's motion, so the portrait rests in its own neutral pose;
- ``error``: nothing is written; the run ends with one line naming the frame ranges.

The policy runs twice: on the raw motion (so smoothing sees no garbage) and after smoothing (so the frames it
replaces carry exactly the held or neutral motion, not a blend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceexpr_cli.animate.engines import Motion
from faceexpr_cli.animate.landmarks import NoFaceError
from faceexpr_cli.console import log
from faceexpr_cli.registry import Registry

Fill = Callable[[Motion, np.ndarray, Motion], Motion]


@dataclass(frozen=True)
class Policy:
    action: str  # what the warning says is done
    fill: Fill | None  # None: stop with an error


POLICIES: Registry[Policy] = Registry("--on-missing-face policy")
DEFAULT_POLICY = "hold"


class FaceLostError(NoFaceError):
    """The driver's face is lost in some frames and ``--on-missing-face error`` was asked for."""


def frame_ranges(found: np.ndarray) -> list[list[int]]:
    """[first, last] (inclusive) of each run of frames where ``found`` is False."""
    missing = np.concatenate([[False], ~np.asarray(found, bool), [False]])
    edges = np.flatnonzero(np.diff(missing.astype(np.int8)))
    return [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass
class MissingFace:
    """Where the driver's face is lost, for the warning, the error and the JSON result."""

    found: np.ndarray  # (T,) bool
    fps: float

    @property
    def frames(self) -> int:
        return int((~self.found).sum())

    @property
    def ranges(self) -> list[list[int]]:
        return frame_ranges(self.found)

    def describe(self, limit: int = 6) -> str:
        """``frames 36-79 (1.44-3.20 s)``; more than ``limit`` ranges end in ``+N more``."""
        def one(a: int, b: int) -> str:
            span = f"{a}" if a == b else f"{a}-{b}"
            return f"{span} ({a / self.fps:.2f}-{(b + 1) / self.fps:.2f} s)"

        ranges = self.ranges
        text = ", ".join(one(a, b) for a, b in ranges[:limit])
        more = f", +{len(ranges) - limit} more" if len(ranges) > limit else ""
        return f"frame{'s' if self.frames > 1 else ''} {text}{more}"


def check_policy(name: str) -> str:
    """The policy name, or UnknownNameError (a usage error) before any work starts."""
    POLICIES.get(name)
    return name


def report_missing(name: str, missing: MissingFace, what: str) -> None:
    """Warn about lost frames, or raise FaceLostError (nothing written yet) for a policy without a fill."""
    if not missing.frames:
        return
    policy = POLICIES.get(name)
    where = f"{what}: the face is lost in {missing.frames} of {len(missing.found)} frames: {missing.describe()}"
    if policy.fill is None:
        raise FaceLostError(where, "use --on-missing-face hold or neutral, or a driver whose face stays in view")
    log.warning("%s; %s", where, policy.action)


def apply_policy(name: str, motion: Motion, found: np.ndarray, reference: Motion) -> Motion:
    """``motion`` with the frames where ``found`` is False replaced by the policy's motion (``reference``: the
    neutral motion, one frame)."""
    fill = POLICIES.get(name).fill
    if found.all() or fill is None:
        return motion
    return fill(motion, found, reference)


def _replace(motion: Motion, found: np.ndarray, source_index: np.ndarray | None, reference: Motion | None) -> Motion:
    points = motion.points.copy()
    jac = None if motion.jacobians is None else motion.jacobians.copy()
    missing = ~found
    if source_index is not None:
        points[missing] = motion.points[source_index[missing]]
        if jac is not None:
            jac[missing] = motion.jacobians[source_index[missing]]
    else:
        points[missing] = reference.points[0]
        if jac is not None:
            jac[missing] = reference.jacobians[0]
    return Motion(points, jac, found)


def hold(motion: Motion, found: np.ndarray, reference: Motion) -> Motion:
    index = np.where(found, np.arange(len(found)), -1)
    index = np.maximum.accumulate(index)  # the last good frame at or before each frame
    index[index < 0] = int(np.flatnonzero(found)[0])  # before the first good frame: that one
    return _replace(motion, found, index, None)


def neutral(motion: Motion, found: np.ndarray, reference: Motion) -> Motion:
    return _replace(motion, found, None, reference)


POLICIES.add("hold", Policy("holding the last good motion", hold))
POLICIES.add("neutral", Policy("using the neutral reference", neutral))
POLICIES.add("error", Policy("stopping", None))
