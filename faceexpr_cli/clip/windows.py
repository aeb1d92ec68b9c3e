"""From hits to clip windows: anchors, offsets with the seed's backwards fallback, frames or pre/post, merging,
clamping to the video, and random windows.

Windows are snapped to the source's frame grid (nearest frame), so a window's start is a frame that the exact
cutter will make the clip's first frame.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from faceexpr_cli.clip.matching import Hit
from faceexpr_cli.errors import UsageError
from faceexpr_cli.registry import Registry
from faceexpr_cli.safety import check_number
from faceexpr_cli.transcripts.timeline import Timeline

AnchorFn = Callable[[Timeline, Hit], float | None]
ANCHORS: Registry[AnchorFn] = Registry("anchor mode")

# Reasons a hit or window is dropped (the index's ``reason`` column and stats.json).
PAST_VIDEO_END = "anchor_past_video_end"  # the transcript's time lies beyond the video
WINDOW_PAST_END = "window_past_end"  # the clip would run past the end (after the fallback)
NO_NEXT_SEGMENT = "no_next_segment"
TOO_SHORT = "too_short"
NO_ROOM = "no_room"  # random mode: fewer windows fit than asked


@ANCHORS.register("word-start")
def _word_start(tl: Timeline, hit: Hit) -> float | None:
    return hit.start


@ANCHORS.register("word-end")
def _word_end(tl: Timeline, hit: Hit) -> float | None:
    return hit.end


@ANCHORS.register("segment-start")
def _segment_start(tl: Timeline, hit: Hit) -> float | None:
    return tl.segments[hit.segment].start


@ANCHORS.register("next-segment")
def _next_segment(tl: Timeline, hit: Hit) -> float | None:
    """The seed's anchor: the instruction is said first, the expression follows in the next segment."""
    seg = tl.segments[tl.words[hit.last_word].segment]
    later = [s.start for s in tl.segments if s.start > seg.start + 1e-6]
    return min(later) if later else None


@dataclass
class WindowSpec:
    anchor: str = "word-start"
    offset: float = 0.0
    fallback: bool = True  # apply the offset backwards when the clip would run past the end
    pre: float = 0.0
    post: float = 1.0
    frames: int | None = None  # fixed length in source frames (replaces ``post``)
    min_duration: float | None = None
    max_duration: float | None = None
    merge: bool = True
    end_margin: float = 0.0  # keep clips this far from the video's end (the seed: 2 s)

    def check(self) -> None:
        ANCHORS.get(self.anchor)
        check_number(self.offset, "--offset")
        check_number(self.pre, "--pre", minimum=0)
        check_number(self.post, "--post", minimum=0)
        check_number(self.frames, "--frames", minimum=1)
        check_number(self.min_duration, "--min-duration", minimum=0)
        check_number(self.max_duration, "--max-duration", above=0)
        check_number(self.end_margin, "--end-margin", minimum=0)
        if self.frames is None and self.pre + self.post <= 0:
            raise UsageError("the window is empty", "give --post (seconds after the anchor) or --frames N")
        if self.min_duration and self.max_duration and self.min_duration > self.max_duration:
            raise UsageError("--min-duration is larger than --max-duration")


@dataclass
class Window:
    start: float
    end: float
    anchor: float
    hits: list[dict] = field(default_factory=list)
    kind: str = "keyword"

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Dropped:
    hit: dict
    reason: str


def hit_info(tl: Timeline, hit: Hit, anchor: float | None) -> dict:
    return {"keyword": hit.keyword, "matched_text": hit.matched_text, "start": round(hit.start, 4),
            "end": round(hit.end, 4), "anchor": None if anchor is None else round(anchor, 4),
            "segment_text": tl.segments[hit.segment].text}


def _snap(t: float, fps: float) -> float:
    return math.floor(t * fps + 0.5 + 1e-9) / fps


def plan_windows(tl: Timeline, hits: list[Hit], spec: WindowSpec, duration: float, fps: float
                 ) -> tuple[list[Window], list[Dropped]]:
    """Windows for the hits of one video (sorted, merged when asked) and the hits dropped, with why."""
    anchor_fn = ANCHORS.get(spec.anchor)
    limit = duration - spec.end_margin
    length = spec.frames / fps if spec.frames else spec.pre + spec.post
    min_dur = spec.min_duration if spec.min_duration is not None else (length if spec.frames else 1.0 / fps)
    windows: list[Window] = []
    dropped: list[Dropped] = []
    for hit in hits:
        anchor = anchor_fn(tl, hit)
        info = hit_info(tl, hit, anchor)
        if anchor is None:
            dropped.append(Dropped(info, NO_NEXT_SEGMENT))
            continue
        if anchor >= duration:
            dropped.append(Dropped(info, PAST_VIDEO_END))
            continue
        start = _snap(max(0.0, anchor + spec.offset - spec.pre), fps)
        if start + length > limit + 1e-6 and spec.fallback and spec.offset:
            start = _snap(max(0.0, anchor - spec.offset - spec.pre), fps)  # the seed's backwards offset
            info["fallback"] = True
        end = min(start + length, limit)
        if spec.max_duration:
            end = min(end, start + spec.max_duration)
        end = _snap(end, fps) if end < duration else duration
        if end - start < min_dur - 1e-6:
            dropped.append(Dropped(info, WINDOW_PAST_END if start + length > limit + 1e-6 else TOO_SHORT))
            continue
        windows.append(Window(start, end, anchor, [info]))
    windows.sort(key=lambda w: (w.start, w.end))
    if spec.merge:
        windows = _merge(windows, spec.max_duration)
    return windows, dropped


def _merge(windows: list[Window], max_duration: float | None) -> list[Window]:
    out: list[Window] = []
    for w in windows:
        if out and w.start < out[-1].end - 1e-6:
            last = out[-1]
            end = max(last.end, w.end)
            if max_duration is None or end - last.start <= max_duration + 1e-6:
                last.end = end
                last.hits.extend(w.hits)
                continue
        out.append(w)
    return out


def random_windows(
    duration: float, fps: float, n: int, length: float, *, seed: int, source: str, min_gap: float = 0.0,
    end_margin: float = 0.0,
) -> tuple[list[Window], int]:
    """``n`` non-overlapping windows placed uniformly at random (seeded per video); returns (windows, missing).

    Works in whole frames: the free frames (total - n * length - gaps) are split at n sorted uniform points, so
    every arrangement that keeps the gaps is equally likely, no retries are needed and snapping never makes two
    windows touch.
    """
    total = int(math.floor(max(0.0, duration - end_margin) * fps + 1e-6))
    size = max(1, int(math.ceil(length * fps - 1e-6)))
    gap = max(0, int(math.ceil(min_gap * fps - 1e-6)))
    k = min(n, (total + gap) // (size + gap))
    if k <= 0:
        return [], n
    rng = np.random.default_rng([seed, zlib.crc32(source.encode())])
    free = total - k * size - (k - 1) * gap
    offsets = np.sort(rng.integers(0, free + 1, size=k))
    out = []
    for i, off in enumerate(offsets):
        first = int(off) + i * (size + gap)
        out.append(Window(first / fps, (first + size) / fps, first / fps, [], kind="random"))
    return out, n - k
