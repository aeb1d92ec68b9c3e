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
from faceexpr_cli.media.audio import AudioCursor
from faceexpr_cli.media.cut import CUT_MODES, keyframe_times
from faceexpr_cli.media.probe import _reason, open_container
from faceexpr_cli.media.reader import _to_rgb
from faceexpr_cli.media.timeline import SAME_FRAME, frame_times, refuse_stream_copy


@dataclass
class SpanFrames:
    """Decoded frames of one requested span, in display order, with their source times."""

    index: int
    frames: list = field(default_factory=list)  # av.VideoFrame
    times: list[float] = field(default_factory=list)  # source seconds
    end: float = 0.0  # when the span's last frame stops being shown (source seconds)
    expected: int = 0  # frames the source's frame times put in the span

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
    audio_coverage: float = 0.0
    fps_mode: str = "source"  # the source's frame times kept, or "constant" (resampled on purpose)

    @property
    def snap(self) -> float:
        return self.actual_start - self.start

    @property
    def duration(self) -> float:
        return self.actual_end - self.actual_start


def _video_clock(container):
    """(stream, time base, start time, nominal fps). The nominal rate is only a hint: phone video's is a guess
    from the time base (120 for 30/24 fps footage at 1/600); timing comes from ``timeline.frame_times``."""
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


def grid_fps(src: str | Path) -> float:
    """The rate windows are planned on: the stream's rate for constant frame rate footage, the average for
    variable (windows are then snapped to real frame times by ``frame_times(src).span``)."""
    table = frame_times(src)
    return table.average_fps if table.is_vfr or not len(table) else nominal_fps(src)


def iter_span_frames(src: str | Path, spans: list[tuple[float, float]], *, threads: int = 0) -> Iterator[SpanFrames]:
    """Yield the frames of each (start, end) span, in order of completion.

    A span holds the frames whose middle (decoded time + half its duration, from the stream's frame times) lies
    in [start, end): the frames shown in it, for constant and variable frame rates alike; spans may overlap (a
    frame then goes to each). A span with no frame is not yielded.
    """
    import av

    keys = keyframe_times(src)
    table = frame_times(src)
    wanted = []
    for i, (s, e) in enumerate(spans):
        a, b = table.span(s, e)
        if b > a:
            wanted.append((float(table.times[a]), float(table.times[b - 1]), table.span_end(a, b), b - a, i))
    with open_container(src) as container:
        vs, tb, t0, _ = _video_clock(container)
        eps = SAME_FRAME
        vs.thread_count = threads
        cc = vs.codec_context
        pending = sorted(wanted, reverse=True)  # pop(): the span that starts next
        active: dict[int, tuple[float, SpanFrames]] = {}  # index -> (last frame time, frames)
        decoded_to = -1e9  # time of the last decoded frame
        sought = -1e9  # key frame of the last seek (the decoder may not have produced a frame yet)
        packets = None
        ranked, rank = table.decode_order, 0
        try:
            while pending or active:
                need_t = pending[-1][0] if (pending and not active) else -1e9
                if ranked:  # times by display rank: one walk from the start, every frame decoded
                    packets = container.demux(vs) if packets is None else packets
                elif not active and pending:
                    k = bisect.bisect_right(keys, need_t + eps) - 1
                    key_t = keys[k] if k >= 0 else 0.0
                    if packets is None or key_t > max(decoded_to, sought) + eps:
                        container.seek(int(round((key_t + t0) / tb)), stream=vs, backward=True)
                        packets = container.demux(vs)
                        sought = key_t
                packet = next(packets, None)
                if packet is None:
                    break
                if packet.pts is not None and packet.size and not ranked:
                    # frames before every pending span are only needed as references
                    cc.skip_frame = "NONREF" if float(packet.pts * tb) - t0 < need_t - eps else "DEFAULT"
                for frame in vs.decode(packet):
                    if frame.pts is None:
                        continue
                    rank += 1
                    t = float(table.times[rank - 1]) if ranked and rank <= len(table) else float(frame.pts * tb) - t0
                    decoded_to = t
                    while pending and pending[-1][0] <= t + eps:
                        first_t, last_t, end_t, n, idx = pending.pop()
                        active[idx] = (last_t, SpanFrames(idx, end=end_t, expected=n))
                    done = []
                    for idx, (last_t, span) in active.items():
                        if t > last_t + eps:
                            done.append(idx)
                        elif not span.times or t > span.times[-1]:
                            span.frames.append(frame)
                            span.times.append(t)
                            if t >= last_t - eps:
                                done.append(idx)
                    for idx in sorted(done, key=lambda i: active[i][0]):
                        span = active.pop(idx)[1]
                        if span.frames:
                            yield span
        except av.error.FFmpegError as exc:
            near = decoded_to if decoded_to > -1e8 else max(sought, 0.0)  # no frame yet: where the walk started
            raise MediaError(src, f"decoding failed near {near:.2f} s ({_reason(exc)})") from exc
        for _, span in sorted(active.values(), key=lambda v: v[0]):  # spans cut short by the end of the video
            if span.frames:
                yield span


def encode_span(index: int, request: tuple[float, float], span: SpanFrames, frames: list, *, cursor=None,
                constant_fps: float | None = None, size: tuple[int, int] | None = None, crf: int = 18,
                preset: str = "veryfast", threads: int = 0) -> ClipCut:
    """Encode one span's frames (``av.VideoFrame`` or RGB arrays, one per ``span.times``) with their source
    timing and the source audio of exactly the span, check the result by decoding it, and describe it."""
    from faceexpr_cli.media.verify import verify_clip
    from faceexpr_cli.media.writer import VideoWriter

    if len(span.frames) < span.expected - 1:
        raise MediaError("clip", f"the video ended {span.expected - len(span.frames)} frames before "
                                 f"the clip's end at {span.end:.3f} s")
    start = span.start
    length = span.end - start
    buf = io.BytesIO()
    w = VideoWriter(buf, len(frames) / length, audio=cursor, audio_start=start, audio_duration=length,
                    constant_fps=constant_fps, size=size, crf=crf, preset=preset, threads=threads)
    try:
        for frame, t in zip(frames, span.times, strict=True):
            w.write(frame, time=t - start)
        w.close(end=length)
    except BaseException:
        w.abort()
        raise
    data = buf.getvalue()
    verify_clip(data, frames=w.frames, duration=w.duration, audio=w.has_audio,
                name=f"clip {request[0]:.3f}-{request[1]:.3f} s")
    fps = constant_fps or w.frames / w.duration
    width, height = w.size_written
    return ClipCut(index, data, request[0], request[1], start, start + w.duration, w.frames, fps, width, height,
                   w.has_audio, w.audio_coverage, "constant" if constant_fps else "source")


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
    fps: float | None = None,
) -> Iterator[ClipCut]:
    """Cut every span of ``src`` into mp4 bytes; yields ``ClipCut`` (``index`` = position in ``spans``).

    Clips keep the source's frame times (variable frame rate included) unless ``fps`` asks for a constant rate.
    """
    if mode not in CUT_MODES:
        raise UsageError(f"unknown cut mode '{mode}'", f"use one of: {', '.join(CUT_MODES)}")
    if mode == "fast":
        yield from _remux_many(src, spans, audio=audio)
        return
    with open_container(src) as container:
        t0 = _video_clock(container)[2]
    cursor = AudioCursor(src, t0) if audio else None
    if cursor is not None and cursor.stream is None:
        cursor.close()
        cursor = None
    try:
        for span in iter_span_frames(src, spans, threads=threads):
            frames = span.frames
            rotation = int(getattr(frames[0], "rotation", 0) or 0) % 360
            if rotation:  # the encoder writes no display matrix: turn the pictures upright instead
                frames = [_to_rgb(f, None, rotation) for f in frames]
            yield encode_span(span.index, spans[span.index], span, frames, cursor=cursor, constant_fps=fps,
                              size=size, crf=crf, preset=preset, threads=threads)
    finally:
        if cursor is not None:
            cursor.close()


def _remux_many(src: str | Path, spans: list[tuple[float, float]], *, audio: bool) -> Iterator[ClipCut]:
    """Stream-copy each span from the key frame at or before its start (timestamps moved to start at 0)."""
    import av

    keys = keyframe_times(src)
    table = frame_times(src)
    refuse_stream_copy(src, table)
    with open_container(src) as container:
        vs, tb, t0, _ = _video_clock(container)
        fps = table.average_fps or 25.0  # only for half-frame tolerances; the clip's end comes from the table
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
            k = table.index_of(last_video)
            actual_end = last_video + (float(table.durations[k]) if k is not None else 1 / fps)
            yield ClipCut(idx, data, start, end, key_t, actual_end, n_video, n_video / (actual_end - key_t),
                          vs.codec_context.width, vs.codec_context.height, out_a is not None,
                          1.0 if out_a is not None else 0.0)

