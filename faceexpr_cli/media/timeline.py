"""The one timing model: the presentation times of the frames a player shows, read from packets (no decoding).

Phone and camera video is not a frame grid. Frame rates vary (an iPhone .mov switches between 30 and 24 fps,
ffmpeg then guesses a 120 fps "nominal" rate from the 1/600 time base), edit lists mark leading packets
discard (they are in the sample table but are not frames), and audio may end before the video. So nothing in fx
derives times from ``nb_frames``, the nominal rate or the average rate: windows, spans, frame matching and
writing use the times here, which are the decoded frames' timestamps (the demuxer's pts, relative to the video
stream's start). The one exception is a container without presentation times (AVI) holding B-frames: its stamps
count packets in decode order, so a frame's time is its rank in display order (``FrameTimes.decode_order``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.probe import check_readable, open_container

# Two timestamps closer than this are the same frame (pts are exact; this only absorbs float rounding).
SAME_FRAME = 1e-4


@dataclass(frozen=True)
class FrameTimes:
    """Shown frames of a video stream: start times and durations in seconds from the stream start."""

    times: np.ndarray  # (N,) float64, strictly increasing
    durations: np.ndarray  # (N,) float64, > 0
    discarded: int = 0  # packets an edit list marks discard (not frames)
    declared: int = 0  # the container's frame count (nb_frames), 0 when it states none
    demuxed: int = 0  # every packet that was read, discarded ones included
    # The stamps are decode-order counters, not presentation times (H.264 with B-frames in AVI, which stores no
    # pts): the decoder still hands frames out in display order, so the k-th frame decoded from the start is
    # shown at ``times[k]``; readers then walk from the start instead of seeking, and stream copies are refused.
    decode_order: bool = False

    def __len__(self) -> int:
        return len(self.times)

    @property
    def end(self) -> float:
        return float(self.times[-1] + self.durations[-1]) if len(self.times) else 0.0

    @property
    def is_vfr(self) -> bool:
        if len(self.durations) < 3:
            return False
        d = self.durations[:-1]
        return bool(d.max() > d.min() * 1.05 and d.max() - d.min() > 1e-3)

    @property
    def average_fps(self) -> float:
        return len(self.times) / self.end if self.end > 0 else 0.0

    def span(self, start: float, end: float) -> tuple[int, int]:
        """[i, j) of the frames a span [start, end) holds: those whose middle lies in it, so a span on a frame
        boundary takes exactly the frames shown in it, and an off-grid span the nearest ones."""
        mid = self.times + self.durations / 2
        return int(np.searchsorted(mid, start, side="right")), int(np.searchsorted(mid, end, side="right"))

    def span_end(self, i: int, j: int) -> float:
        """End time of frames [i, j): the last one's start plus its duration."""
        return float(self.times[j - 1] + self.durations[j - 1])

    def index_of(self, t: float) -> int | None:
        """The frame whose start time is ``t`` (a decoded frame's time), or None."""
        k = int(np.searchsorted(self.times, t - SAME_FRAME))
        return k if k < len(self.times) and abs(self.times[k] - t) <= SAME_FRAME else None


def frame_times(path: str | Path) -> FrameTimes:
    """Demux the first video stream (no decoding) and return its shown frames' times. Cached per file version."""
    p = check_readable(path)
    st = p.stat()
    return _frame_times(str(p), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=64)
def _frame_times(path: str, _mtime: int, _size: int) -> FrameTimes:
    import av

    pts: list[int] = []
    durs: list[int] = []
    discarded = demuxed = 0
    slots: list[int] = []  # AVI: every packet's dts, its index slot
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream", "pass a video file")
        vs = container.streams.video[0]
        tb = vs.time_base
        t0 = vs.start_time or 0
        declared = int(vs.frames or 0)
        avg = vs.average_rate
        avi = container.format.name == "avi"
        try:
            for packet in container.demux(vs):
                if packet.size == 0:
                    continue
                demuxed += 1
                if avi and packet.dts is not None:
                    slots.append(packet.dts)
                if packet.is_discard:
                    discarded += 1
                    continue
                if packet.pts is None:
                    continue
                pts.append(packet.pts - t0)
                durs.append(packet.duration or 0)
        except av.error.FFmpegError:
            pass  # a damaged tail: the caller compares ``demuxed`` with ``declared``
        decode_order = avi and len(pts) > 2 and _out_of_display_order(container, vs)
    if avi and slots:
        # AVI's dts count index slots, and an empty chunk is a dropped frame (the one before stays on screen):
        # the index counts it, the demuxer skips it, so the slots the packets span are present, not missing
        demuxed = max(demuxed, max(slots) - min(slots) + 1)
    if not pts and demuxed > discarded:  # frames, none of them timed: a raw stream; timing would be made up
        raise MediaError(path, "has frames without timestamps (a raw elementary stream)",
                         "put it in a container first: ffmpeg -i IN -c copy OUT.mp4")
    if not pts:
        return FrameTimes(np.zeros(0), np.zeros(0), discarded, declared, demuxed)
    order = np.argsort(pts, kind="stable")
    ticks = np.asarray(pts, np.int64)[order]
    keep = np.concatenate([[True], np.diff(ticks) > 0])  # duplicate timestamps: one shown frame
    ticks = ticks[keep]
    stated = np.asarray(durs, np.int64)[order][keep]
    gaps = np.diff(ticks)
    last = int(stated[-1]) if stated[-1] > 0 else (int(np.median(gaps)) if len(gaps) else 0)
    if last <= 0:  # a single frame without a stated duration
        last = max(1, round(1 / (float(avg) if avg else 25.0) / float(tb)))
    ticks_d = np.concatenate([gaps, [last]])
    f = float(tb)
    return FrameTimes(ticks * f, ticks_d * f, discarded, declared, demuxed, decode_order)


def _out_of_display_order(container, vs, frames: int = 48) -> bool:
    """Whether the first decoded frames' stamps go backwards: the decoder outputs display order, so stamps that
    do are not presentation times."""
    import av

    container.seek(0)
    latest = None
    try:
        for k, frame in enumerate(container.decode(vs)):
            if frame.pts is not None:
                if latest is not None and frame.pts < latest:
                    return True
                latest = frame.pts if latest is None else max(latest, frame.pts)
            if k >= frames:
                break
    except av.error.FFmpegError:
        pass
    return False


def refuse_stream_copy(path: str | Path, table: FrameTimes) -> None:
    """A stream copy keeps the packets' stamps: refuse one whose stamps are not presentation times."""
    if table.decode_order:
        raise MediaError(path, "stamps its frames in decode order (B-frames in AVI): a stream copy would show them "
                               "out of order", "cut it in the exact mode")

