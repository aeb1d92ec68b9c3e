"""Sequential RGB frame reading: one seek at most, then decode forward (never a seek per frame)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.probe import _reason, open_container


@dataclass
class Frame:
    """One decoded frame: ``index`` counts output frames, ``time`` is seconds from the stream start (the decoded
    timestamp), ``duration`` how long it is shown (from the stream's frame times; 1/fps when resampled)."""

    index: int
    time: float
    image: np.ndarray  # H x W x 3, uint8, RGB, upright (rotation applied)
    duration: float = 0.0


def _to_rgb(frame, size: tuple[int, int] | None, rotation: int) -> np.ndarray:
    if size is None:
        img = frame.to_ndarray(format="rgb24")
    else:
        w, h = size
        if rotation in (90, 270):
            w, h = h, w
        img = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    if rotation:
        # PyAV reports the display matrix's counter-clockwise angle; turn the picture upright.
        img = np.ascontiguousarray(np.rot90(img, k=rotation // 90))
    return img


def iter_frames(
    path: str | Path,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Yield upright RGB frames.

    ``size`` (width, height) resizes with swscale; ``fps`` resamples by holding the latest frame at each output
    time (works for variable frame rate too); ``start``/``end`` in seconds select a range with one seek.
    Times are relative to the stream's first timestamp.
    """
    import av

    from faceexpr_cli.media.timeline import frame_times

    table = frame_times(path)
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream", "pass a video file")
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        t0 = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        ranked = table.decode_order  # times by display rank: decode from the start, never seek
        if start and start > 0 and not ranked:
            container.seek(int((start + t0) / tb), stream=vs, backward=True, any_frame=False)
        count = 0
        decoded = 0
        last_delta = 1.0 / float(vs.average_rate) if vs.average_rate else (1.0 / fps if fps else 0.04)
        prev_t = None
        natural_end = True
        next_out = start or 0.0
        held = None  # (time, av frame) waiting for the next frame's time when resampling
        try:
            for frame in container.decode(vs):
                if frame.pts is None:
                    continue
                decoded += 1
                t = float(table.times[decoded - 1]) if ranked and decoded <= len(table) else float(frame.pts * tb) - t0
                if prev_t is not None and t > prev_t:
                    last_delta = t - prev_t
                prev_t = t
                if end is not None and t >= end:
                    natural_end = False
                    break
                rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                if fps is None:
                    if start is not None and t < start - 1e-6:
                        continue
                    k = table.index_of(t)
                    dur = float(table.durations[k]) if k is not None else last_delta
                    yield Frame(count, t, _to_rgb(frame, size, rotation), dur)
                    count += 1
                    if max_frames is not None and count >= max_frames:
                        return
                    continue
                if held is not None:
                    _, hframe, hrot = held
                    img = None
                    # every output time before the next frame shows the held one: the latest at or before it,
                    # or the first frame for times before it (a stream whose first shown frame comes late)
                    while next_out < t - 1e-9:
                        img = _to_rgb(hframe, size, hrot) if img is None else img
                        yield Frame(count, next_out, img, 1.0 / fps)
                        count += 1
                        if max_frames is not None and count >= max_frames:
                            return
                        next_out = (start or 0.0) + count / fps
                held = (t, frame, rotation)
            # Frames an edit list discards are not in the table, so only a real shortfall is reported.
            if natural_end and table.declared and table.demuxed < table.declared - 1:
                raise MediaError(path, f"is truncated: the stream ends at frame {table.demuxed} of {table.declared}",
                                 "re-download or re-export it")
            if natural_end and not start and decoded < len(table) - 1:
                raise MediaError(path, f"decoding ended at frame {decoded} of {len(table)}", "is the file damaged?")
            if held is not None:
                ht, hframe, hrot = held
                k = table.index_of(ht)
                last_end = ht + (float(table.durations[k]) if k is not None else last_delta)
                limit = min(last_end, end) if end is not None else last_end
                img = None
                while next_out < limit - 1e-9:
                    img = _to_rgb(hframe, size, hrot) if img is None else img
                    yield Frame(count, next_out, img, 1.0 / fps)
                    count += 1
                    if max_frames is not None and count >= max_frames:
                        return
                    next_out = (start or 0.0) + count / fps
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"decoding stopped at frame {count} ({_reason(exc)})", "is it truncated?") from exc


def read_frames(path: str | Path, **kwargs) -> np.ndarray:
    """All selected frames as one (T, H, W, 3) uint8 array."""
    frames = [f.image for f in iter_frames(path, **kwargs)]
    if not frames:
        raise MediaError(path, "no frames in the requested range")
    return np.stack(frames)
