"""Writing H.264 mp4 from RGB frames through an ffmpeg pipe, with an optional audio track from a source file.

Frames go to a temporary name that is renamed only when ffmpeg finished cleanly, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError
from faceexpr_cli.media.ffmpeg import find_ffmpeg, last_error_line

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def audio_input_args(audio: str | Path, start: float = 0.0, duration: float | None = None) -> list[str]:
    args = []
    if start > 0:
        args += ["-ss", f"{start:.6f}"]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    return [*args, "-i", str(audio)]


class VideoWriter:
    """``with VideoWriter("out.mp4", fps=25, audio="src.mp4", audio_start=3.0) as w: w.write(frame)``.

    Frames are RGB uint8 (H, W, 3), all the same size; odd sizes are padded to even for yuv420p.
    The audio track (if the source has one) is cut to the same span and muxed as AAC.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        *,
        audio: str | Path | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        codec: str = "libx264",
    ):
        self.path = Path(path)
        if self.path.suffix.lower() not in _FORMATS:
            raise MediaError(self.path, f"unsupported video suffix '{self.path.suffix}'", "use .mp4, .mov or .mkv")
        self.fps = float(fps)
        self.audio = Path(audio) if audio else None
        self.audio_start = audio_start
        self.audio_duration = audio_duration
        self.crf = crf
        self.preset = preset
        self.codec = codec
        self.frames = 0
        self._proc: subprocess.Popen | None = None
        self._size: tuple[int, int] | None = None
        self._tmp = temp_path(self.path)

    def _start(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{self.fps:.6f}", "-i", "pipe:0"]
        maps = ["-map", "0:v:0"]
        if self.audio is not None:
            cmd += audio_input_args(self.audio, self.audio_start, self.audio_duration)
            maps += ["-map", "1:a:0?", "-c:a", "aac", "-b:a", "128k"]
        cmd += maps
        cmd += ["-c:v", self.codec, "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p"]
        if width % 2 or height % 2:
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        if self.audio is not None:
            cmd += ["-shortest"]
        cmd += ["-movflags", "+faststart", "-f", _FORMATS[self.path.suffix.lower()], str(self._tmp)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._size = (width, height)

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be HxWx3 uint8, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif (w, h) != self._size:
            raise ValueError(f"frame size changed from {self._size} to {(w, h)}")
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError as exc:
            err = self._proc.stderr.read() if self._proc.stderr else b""
            self._abort()
            raise MediaError(self.path, f"ffmpeg stopped: {last_error_line(err)}") from exc
        self.frames += 1

    def write_all(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)

    def close(self) -> Path:
        if self._proc is None:
            raise MediaError(self.path, "no frames were written")
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        err = self._proc.stderr.read() if self._proc.stderr else b""
        code = self._proc.wait()
        self._proc = None
        if code != 0:
            self._tmp.unlink(missing_ok=True)
            raise MediaError(self.path, f"ffmpeg failed: {last_error_line(err)}")
        self._tmp.replace(self.path)
        return self.path

    def _abort(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, **kwargs) -> Path:
    with VideoWriter(path, fps, **kwargs) as writer:
        writer.write_all(frames)
    return Path(path)
