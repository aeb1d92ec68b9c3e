"""Cutting many clips out of one source in one process and (mostly) one decode pass.

The naive way runs one ffmpeg per clip: start-up, probe, seek back to a key frame and decode forward to the clip
for every clip. Here one decoder walks the source once: it seeks ahead only when the next clip's key frame lies
beyond what was already decoded, skips decoding non-reference frames that no clip needs, and hands each clip's
frames to an in-process encoder (``exact``). ``fast`` copies packets from the key frame at or before each clip's
start (no decoding at all) and reports how far the start snapped.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from faceexpr_cli.errors import MediaError, UsageError
from faceexpr_cli.media.clip_encode import AudioCursor, encode_clip
from faceexpr_cli.media.cut import CUT_MODES, keyframe_times
from faceexpr_cli.media.probe import _reason, open_container
from faceexpr_cli.media.reader import _to_rgb


@dataclass
class SpanFrames:
    """Decoded frames of one requested span, in display order, with their source times."""

    index: int
    frames: list = field(default_factory=list)  # av.VideoFrame
    times: list[float] = field(default_factory=list)  # source seconds

    @property
    def start(self) -> float:
        return self.times[0]


@dataclass
class ClipCut:
    index: int  # position of the span in the caller's list
    data: bytes  # the mp4
    start: float  # requested span
    end: float
    actual_start: float  # first frame's time in the source
    actual_end: float
    frames: int
    fps: float
    width: int
    height: int
    has_audio: bool

    @property
    def snap(self) -> float:
        return self.actual_start - self.start


def _video_clock(container):
    """(stream, time base, start time, nominal fps). The nominal rate is the stream's frame rate, not the
    average over the file, which drifts on files with a gap or a cut (a looped video averages 29.9 for 30)."""
    vs = container.streams.video[0]
    tb = vs.time_base
    t0 = float(vs.start_time * tb) if vs.start_time is not None else 0.0
    fps = float(vs.guessed_rate or vs.average_rate or vs.base_rate or 25)
    return vs, tb, t0, fps


def nominal_fps(src: str | Path) -> float:
    """The video stream's frame rate (the grid clip windows snap to)."""
    with open_container(src) as container:
        if not container.streams.video:
            raise MediaError(src, "has no video stream")
        return _video_clock(container)[3]


def iter_span_frames(src: str | Path, spans: list[tuple[float, float]], *, threads: int = 0) -> Iterator[SpanFrames]:
    """Yield the frames of each (start, end) span, in order of completion.

    A frame at time t belongs to a span when ``start - h <= t < end - h`` (h = half a frame), i.e. the frames
    nearest to the span's frame-grid times; spans may overlap (a frame then goes to each).
    """
    import av

    keys = keyframe_times(src)
    with open_container(src) as container:
        vs, tb, t0, fps = _video_clock(container)
        h = 0.5 / fps
        vs.thread_count = threads
        cc = vs.codec_context
        pending = sorted(((s - h, e - h, i) for i, (s, e) in enumerate(spans)), reverse=True)  # pop(): next
        active: dict[int, tuple[float, SpanFrames]] = {}  # index -> (end, frames)
        decoded_to = -1e9  # time of the last decoded frame
        sought = -1e9  # key frame of the last seek (the decoder may not have produced a frame yet)
        packets = None
        try:
            while pending or active:
                need_t = pending[-1][0] if (pending and not active) else -1e9
                if not active and pending:
                    k = bisect.bisect_right(keys, need_t + 2 * h) - 1
                    key_t = keys[k] if k >= 0 else 0.0
                    if packets is None or key_t > max(decoded_to, sought) + h:
                        container.seek(int((key_t + t0) / tb), stream=vs, backward=True)
                        packets = container.demux(vs)
                        sought = key_t
                packet = next(packets, None)
                if packet is None:
                    break
                if packet.pts is not None and packet.size:
                    # frames before every pending span are only needed as references
                    cc.skip_frame = "NONREF" if float(packet.pts * tb) - t0 < need_t - h else "DEFAULT"
                for frame in vs.decode(packet):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * tb) - t0
                    decoded_to = t
                    while pending and pending[-1][0] <= t:
                        _, end, idx = pending.pop()
                        active[idx] = (end, SpanFrames(idx))
                    done = []
                    for idx, (end, span) in active.items():
                        if t >= end:
                            done.append(idx)
                        elif not span.times or t > span.times[-1]:
                            span.frames.append(frame)
                            span.times.append(t)
                    for idx in sorted(done, key=lambda i: active[i][0]):
                        span = active.pop(idx)[1]
                        if span.frames:
                            yield span
        except av.error.FFmpegError as exc:
            raise MediaError(src, f"decoding failed near {decoded_to:.2f} s ({_reason(exc)})") from exc
        for _, span in sorted(active.values(), key=lambda v: v[0]):  # spans cut short by the end of the video
            if span.frames:
                yield span


def cut_many(
    src: str | Path,
    spans: list[tuple[float, float]],
    mode: str = "exact",
    *,
    audio: bool = True,
    size: tuple[int, int] | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    threads: int = 0,
) -> Iterator[ClipCut]:
    """Cut every span of ``src`` into mp4 bytes; yields ``ClipCut`` (``index`` = position in ``spans``)."""
    if mode not in CUT_MODES:
        raise UsageError(f"unknown cut mode '{mode}'", f"use one of: {', '.join(CUT_MODES)}")
    if mode == "fast":
        yield from _remux_many(src, spans, audio=audio)
        return
    with open_container(src) as container:
        _, _, t0, fps = _video_clock(container)
    cursor = AudioCursor(src, t0) if audio else None
    has_audio = cursor is not None and cursor.stream is not None
    try:
        for span in iter_span_frames(src, spans, threads=threads):
            n = len(span.frames)
            start = span.start
            frames = span.frames
            rotation = int(getattr(frames[0], "rotation", 0) or 0) % 360
            if rotation:  # the encoder writes no display matrix: turn the pictures upright instead
                frames = [_to_rgb(f, None, rotation) for f in frames]
            wave = cursor.read(start, n / fps) if has_audio else None
            data = encode_clip(frames, fps, audio=wave, sample_rate=cursor.rate if has_audio else None,
                               layout=cursor.layout if has_audio else None, size=size, crf=crf, preset=preset,
                               threads=threads)
            w, h = size or ((frames[0].shape[1], frames[0].shape[0]) if rotation
                            else (frames[0].width, frames[0].height))
            s, e = spans[span.index]
            yield ClipCut(span.index, data, s, e, start, start + n / fps, n, fps, w - w % 2, h - h % 2, has_audio)
    finally:
        if cursor is not None:
            cursor.close()


def _remux_many(src: str | Path, spans: list[tuple[float, float]], *, audio: bool) -> Iterator[ClipCut]:
    """Stream-copy each span from the key frame at or before its start (timestamps moved to start at 0)."""
    import av

    keys = keyframe_times(src)
    with open_container(src) as container:
        vs, tb, t0, fps = _video_clock(container)
        astream = container.streams.audio[0] if (audio and container.streams.audio) else None
        streams = [vs] + ([astream] if astream is not None else [])
        for idx in sorted(range(len(spans)), key=lambda i: spans[i][0]):
            start, end = spans[idx]
            k = bisect.bisect_right(keys, start + 0.5 / fps) - 1
            key_t = keys[k] if k >= 0 else 0.0
            container.seek(int((key_t + t0) / tb), stream=vs, backward=True)
            buf = io.BytesIO()
            n_video, last_video = 0, key_t
            with av.open(buf, "w", format="mp4") as out:
                out_v = out.add_stream_from_template(vs)
                out_a = out.add_stream_from_template(astream) if astream is not None else None
                v_done = a_done = False
                for packet in container.demux(*streams):
                    if packet.dts is None or not packet.size:
                        continue
                    stb = packet.stream.time_base
                    t = float(packet.pts * stb) - t0 if packet.pts is not None else float(packet.dts * stb) - t0
                    shift = int(round((key_t + t0) / stb))
                    if packet.stream is vs:
                        if float(packet.dts * stb) - t0 >= end - 0.5 / fps:
                            v_done = True
                        elif t >= key_t - 0.5 / fps or n_video:
                            packet.pts = packet.pts - shift if packet.pts is not None else None
                            packet.dts -= shift
                            packet.stream = out_v
                            out.mux(packet)
                            n_video += 1
                            last_video = max(last_video, t)
                    elif out_a is not None:
                        if t >= end:
                            a_done = True
                        elif t >= key_t - 1e-6:
                            packet.pts -= shift
                            packet.dts -= shift
                            packet.stream = out_a
                            out.mux(packet)
                    if v_done and (a_done or out_a is None):
                        break
            if n_video == 0:
                raise MediaError(src, f"no frames between {start:.3f} and {end:.3f} s")
            data = buf.getvalue()
            yield ClipCut(idx, data, start, end, key_t, last_video + 1 / fps, n_video, fps,
                          vs.codec_context.width, vs.codec_context.height, out_a is not None)

