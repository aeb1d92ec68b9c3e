"""Cutting a time range out of a video (exact re-encode or fast stream copy) and extracting audio."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from faceexpr_cli.errors import MediaError, UsageError
from faceexpr_cli.media.ffmpeg import run_ffmpeg
from faceexpr_cli.media.probe import check_readable, open_container
from faceexpr_cli.media.timeline import frame_times, refuse_stream_copy
from faceexpr_cli.media.writer import temp_path

CUT_MODES = ("exact", "fast")


@dataclass
class CutResult:
    path: str
    mode: str
    start: float  # requested
    end: float
    actual_start: float  # where the clip really starts in the source (the key frame, for fast cuts)
    snap: float  # actual_start - start (<= 0 for fast cuts, 0 for exact)

    @property
    def duration(self) -> float:
        return self.end - self.actual_start


def keyframe_times(path: str | Path) -> list[float]:
    """Times (s, relative to the stream start) of the video's key frames, from packets (no decoding)."""
    p = check_readable(path)
    return list(_keyframes(str(p), p.stat().st_mtime_ns))


@lru_cache(maxsize=32)
def _keyframes(path: str, _mtime: int) -> tuple[float, ...]:
    with open_container(path) as container:
        if not container.streams.video:
            raise MediaError(path, "has no video stream")
        vs = container.streams.video[0]
        tb = vs.time_base
        t0 = vs.start_time or 0
        times = sorted(float((p.pts - t0) * tb) for p in container.demux(vs) if p.is_keyframe and p.pts is not None)
    return tuple(times)


def cut(
    src: str | Path,
    dst: str | Path,
    start: float,
    end: float,
    mode: str = "exact",
    *,
    audio: bool = True,
    crf: int = 18,
    preset: str = "veryfast",
    size: tuple[int, int] | None = None,
) -> CutResult:
    """Cut [start, end) seconds of ``src`` into ``dst`` (written atomically).

    exact: frame-accurate, re-encoded H.264/AAC (optionally resized). fast: stream copy starting at the key
    frame at or before ``start``; the result says how far it snapped.
    """
    src = check_readable(src)
    dst = Path(dst)
    if mode not in CUT_MODES:
        raise UsageError(f"unknown cut mode '{mode}'", f"use one of: {', '.join(CUT_MODES)}")
    if end <= start:
        raise UsageError(f"empty time range {start:.3f}-{end:.3f} s for {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dst)
    audio_map = ["-map", "0:a:0?"] if audio else ["-an"]
    fmt = ["-f", "mp4"] if dst.suffix.lower() in (".mp4", ".m4v") else []
    if mode == "exact":
        if dst.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise UsageError(f"exact cuts are written as MP4, not '{dst.suffix}'", "name the output .mp4")
        # One timing model: the frames shown in [start, end) from the stream's frame times, encoded by the one
        # writer with their own timestamps and the span's audio (the same path as fx clip).
        from faceexpr_cli.media.clipping import cut_many

        clip = next(cut_many(src, [(start, end)], "exact", audio=audio, size=size, crf=crf, preset=preset), None)
        if clip is None:
            raise MediaError(src, f"no frames between {start:.3f} and {end:.3f} s")
        try:
            tmp.write_bytes(clip.data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dst)
        return CutResult(str(dst), mode, start, end, clip.actual_start, clip.actual_start - start)
    # fast: stream copy from the key frame at or before the start
    refuse_stream_copy(src, frame_times(src))
    keys = keyframe_times(src)
    i = bisect.bisect_right(keys, start + 1e-6) - 1
    actual = keys[i] if i >= 0 else 0.0
    args = ["-ss", f"{actual:.6f}", "-i", str(src), "-t", f"{end - actual:.6f}", "-map", "0:v:0", *audio_map]
    args += ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    args += ["-movflags", "+faststart", *fmt, str(tmp)]
    try:
        run_ffmpeg(args, src)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)
    return CutResult(str(dst), mode, start, end, actual, actual - start)


def extract_audio(
    src: str | Path,
    dst: str | Path,
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    start: float | None = None,
    end: float | None = None,
) -> Path:
    """Write the first audio stream of ``src`` (optionally a time range) as 16-bit PCM WAV."""
    src = check_readable(src)
    with open_container(src) as container:
        if not container.streams.audio:
            raise MediaError(src, "has no audio stream")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dst)
    args = []
    if start:
        args += ["-ss", f"{start:.6f}"]
    args += ["-i", str(src)]
    if end is not None:
        args += ["-t", f"{end - (start or 0):.6f}"]
    args += ["-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "wav"]
    try:
        run_ffmpeg([*args, str(tmp)], src)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)
    return dst
