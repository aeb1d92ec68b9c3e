"""Opening a written clip again before its row may say ``ok``: it decodes, holds the streams the row claims, and
its frame count, duration and audio duration match what the writer meant to write."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from faceexpr_cli.errors import MediaError

AUDIO_TOLERANCE = 0.04  # s: an AAC frame is 21 ms at 48 kHz, 64 ms at 16 kHz minus the priming the muxer trims


@dataclass
class ClipCheck:
    frames: int  # decoded
    duration: float  # last frame's time + its duration, from the first frame (s)
    audio_duration: float | None  # decoded samples / rate; None without an audio stream


def inspect_clip(source: str | Path | bytes, name: str | None = None) -> ClipCheck:
    """Decode every frame and audio sample of a clip (path or mp4 bytes) and measure it; errors name it ``name``
    (default: the path, or "clip" for bytes)."""
    import av

    what = name or ("clip" if isinstance(source, bytes | bytearray) else str(source))
    try:
        target = io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray) else str(source)
        container = av.open(target, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(what, f"the written file does not open ({exc})") from exc
    with container:
        if not container.streams.video:
            raise MediaError(what, "the written file has no video stream")
        vs = container.streams.video[0]
        tb = vs.time_base
        first = last = None
        last_dur = 0.0
        n = 0
        try:
            for frame in container.decode(vs):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                first = t if first is None else min(first, t)
                if last is None or t > last:
                    last, last_dur = t, float(frame.duration * tb) if frame.duration else 0.0
                n += 1
        except av.error.FFmpegError as exc:
            raise MediaError(what, f"the written file does not decode after frame {n} ({exc})") from exc
        if n == 0:
            raise MediaError(what, "the written file has no decodable frames")
        if not last_dur:
            last_dur = 1 / float(vs.average_rate) if vs.average_rate else 0.0
        audio_duration = None
        if container.streams.audio:
            container.seek(0)
            samples, rate = 0, container.streams.audio[0].codec_context.sample_rate or 1
            try:
                for frame in container.decode(container.streams.audio[0]):
                    samples += frame.samples
            except av.error.FFmpegError as exc:
                raise MediaError(what, f"the written file's audio does not decode ({exc})") from exc
            a = container.streams.audio[0]
            # The stream's duration honours the edit list that trims the encoder's padding; decoded samples do not.
            audio_duration = float(a.duration * a.time_base) if a.duration and a.time_base else samples / rate
        return ClipCheck(n, last + last_dur - first, audio_duration)


def verify_clip(source: str | Path | bytes, *, frames: int, duration: float, audio: bool,
                name: str | None = None) -> ClipCheck:
    """Raise ``MediaError`` with the reason when the clip is not what its row will claim.

    Frames and duration must match within one frame; the audio (when ``audio``) within 40 ms of the duration;
    a clip that claims no audio must hold none.
    """
    what = name or ("clip" if isinstance(source, bytes | bytearray) else str(source))
    got = inspect_clip(source, what)
    period = duration / max(frames, 1)
    if abs(got.frames - frames) > 1:
        raise MediaError(what, f"the written file holds {got.frames} frames, not {frames}")
    if abs(got.duration - duration) > period + 1e-3:
        raise MediaError(what, f"the written file lasts {got.duration:.3f} s, not {duration:.3f} s")
    if audio and got.audio_duration is None:
        raise MediaError(what, "the written file has no audio stream although its source span has audio")
    if not audio and got.audio_duration is not None:
        raise MediaError(what, "the written file has an audio stream that its row does not claim")
    if audio and abs(got.audio_duration - duration) > AUDIO_TOLERANCE:
        raise MediaError(what, f"the written audio lasts {got.audio_duration:.3f} s, the video {duration:.3f} s")
    return got
