"""Decoding a short clip (from bytes or a path) into frames and a waveform, for dataset readers.

Dataset shards hold clips as mp4 bytes; opening them from memory avoids temporary files. Frames can be resampled
to a requested rate (holding the latest frame, as ``media.iter_frames`` does) and resized; the audio is resampled
to a requested rate and channel count and cut to exactly the span of the returned frames, so frames and audio
stay aligned sample for sample.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.reader import _to_rgb


@dataclass
class DecodedClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    times: np.ndarray  # (T,) float64 seconds from the clip's first frame
    fps: float  # rate of ``frames`` (the requested rate, or the clip's own)
    audio: np.ndarray | None  # (C, N) float32 in [-1, 1], or None without an audio stream
    sample_rate: int
    source_fps: float  # the rate of the clip's usual frame interval (not lowered by a held frame)


def _open(source: bytes | str | Path, what: str):
    import av

    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return av.open(io.BytesIO(bytes(source)), format="mp4" if bytes(source[4:8]) == b"ftyp" else None,
                           metadata_errors="ignore")
        return av.open(str(source), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(what, f"not a readable clip ({exc})") from exc


def decode_clip(
    source: bytes | str | Path,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    start: float = 0.0,
    num_frames: int | None = None,
    audio: bool = True,
    sample_rate: int = 16000,
    channels: int = 1,
    name: str = "clip",
) -> DecodedClip:
    """Decode a clip. ``start`` (s from the first frame) and ``num_frames`` pick a sub-window (at ``fps``).

    A clip shorter than ``num_frames`` returns what it has; the caller decides whether to pad.
    """
    import av

    with _open(source, name) as container:
        if not container.streams.video:
            raise MediaError(name, "has no video stream")
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        t0 = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        src_fps = float(vs.average_rate) if vs.average_rate else (fps or 25.0)
        decoded: list[tuple[float, object, int]] = []
        shown: dict[float, float] = {}  # frame time -> how long the file says it is shown
        try:
            for frame in container.decode(vs):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb) - t0
                decoded.append((t, frame, int(getattr(frame, "rotation", 0) or 0) % 360))
                shown[t] = float(frame.duration * tb) if frame.duration else 0.0
        except av.error.FFmpegError as exc:
            if not decoded:
                raise MediaError(name, f"cannot decode ({exc})") from exc
        if not decoded:
            raise MediaError(name, "has no decodable frames")
        # The decoder hands frames out in display order; stamps that go backwards are decode-order counters (AVI
        # with B-frames), so the stamps are handed out again in sorted order rather than the frames re-sorted.
        stamps = sorted(d[0] for d in decoded)
        decoded = [(t, frame, rot) for t, (_, frame, rot) in zip(stamps, decoded, strict=True)]
        first = decoded[0][0]
        times = np.array([d[0] - first for d in decoded])
        # the clip's own rate is its usual frame interval (in ticks, so 10 fps is exactly 10): a held frame
        # does not lower it the way it lowers the average rate
        ticks = np.diff(sorted(int(f.pts) for _, f, _ in decoded))
        if len(ticks) and np.median(ticks) > 0:
            src_fps = float(1 / (Fraction(float(np.median(ticks))) * tb))
        rate = fps or src_fps
        # the last frame lasts as long as the file shows it (a held last frame is not cut to one period)
        span_end = times[-1] + (shown[decoded[-1][0]] or 1.0 / src_fps)
        n_out = max(1, int(math.floor((span_end - start) * rate + 1e-6)))
        if num_frames is not None:
            n_out = min(n_out, num_frames)
        out_times = start + np.arange(n_out) / rate
        picks = np.clip(np.searchsorted(times, out_times + 1e-6, side="right") - 1, 0, len(decoded) - 1)
        cache: dict[int, np.ndarray] = {}
        images = []
        for p in picks:
            if p not in cache:
                _, frame, rot = decoded[p]
                cache[p] = _to_rgb(frame, size, rot)
            images.append(cache[p])
        frames = np.stack(images)
        wave = None
        if audio and container.streams.audio:
            wave = _decode_audio(container, t0 + first + start, n_out / rate, sample_rate, channels)
        return DecodedClip(frames, out_times - start, rate, wave, sample_rate, src_fps)


def _decode_audio(container, t_start: float, duration: float, rate: int, channels: int) -> np.ndarray:
    """The first audio stream resampled to ``rate``/``channels``, exactly ``duration`` s from ``t_start``."""
    import av

    astream = container.streams.audio[0]
    container.seek(0)
    layout = "mono" if channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks: list[np.ndarray] = []
    first_time = None
    try:
        for frame in container.decode(astream):
            if first_time is None and frame.pts is not None:
                first_time = float(frame.pts * astream.time_base)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    except av.error.FFmpegError:
        pass  # keep what decoded
    want = int(round(duration * rate))
    if not chunks:
        return np.zeros((channels, want), np.float32)
    wave = np.concatenate(chunks, axis=1).astype(np.float32)
    offset = int(round(((first_time or 0.0) - t_start) * rate))  # > 0: audio starts after the first frame
    if offset > 0:
        wave = np.concatenate([np.zeros((wave.shape[0], offset), np.float32), wave], axis=1)
    elif offset < 0:
        wave = wave[:, -offset:]
    if wave.shape[1] < want:
        wave = np.pad(wave, ((0, 0), (0, want - wave.shape[1])))
    return np.ascontiguousarray(wave[:, :want])
