"""The one video writer: H.264 (+ AAC) through PyAV in process, with a timestamp per frame.

crop, clip, animate and the sample builders all write through ``VideoWriter``:

- Every frame carries its presentation time (seconds from the clip's first frame), so a clip cut from variable
  frame rate footage keeps the source's timing; ``constant_fps`` resamples to a constant rate on purpose
  (holding the latest frame at each output time). Without times, frames are ``1/fps`` apart.
- The audio track is the source's audio over exactly the clip's span, encoded as the video goes, and padded with
  silence where the source has none (never cut short, never cutting the video short). ``audio_coverage`` says
  which part of the span had real audio; a span that lies wholly outside the source audio gets no audio stream.
- A file target is written under a temporary name unique to the process and renamed only after a clean close,
  so a crash never leaves a half-written file under the final name. A ``BytesIO`` target is written in memory.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
TIME_BASE = Fraction(1, 90000)  # exact for 24/25/30/60 fps, 1001-based NTSC rates and the 1/600 of phones


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process (two runs never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def rate_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """``with VideoWriter("out.mp4", fps=25, audio="src.mp4", audio_start=3.0) as w: w.write(frame, time=t)``.

    ``path``: a ``.mp4``/``.mov``/``.mkv`` path or an ``io.BytesIO`` (mp4). ``fps``: the rate of frames written
    without a time, and the encoder's rate hint. ``audio``: a file whose first audio stream supplies the track, or
    an ``AudioCursor`` over one (shared by many clips of one source); ``audio_start`` is the source time (s, on
    the source's video clock) of the clip's first frame. Frames are RGB uint8 (H, W, 3) arrays or
    ``av.VideoFrame``; odd sizes are padded to even for yuv420p.
    """

    def __init__(
        self,
        path: str | Path | io.BytesIO,
        fps: float | None = None,
        *,
        audio=None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        constant_fps: float | None = None,
        size: tuple[int, int] | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        codec: str = "libx264",
        threads: int = 0,
    ):
        self.buffer = path if isinstance(path, io.BytesIO) else None
        self.path = Path("clip.mp4") if self.buffer is not None else Path(path)
        if self.buffer is None and self.path.suffix.lower() not in _FORMATS:
            raise MediaError(self.path, f"unsupported video suffix '{self.path.suffix}'", "use .mp4, .mov or .mkv")
        self.fps = float(constant_fps or fps or 25.0)
        self.constant_fps = float(constant_fps) if constant_fps else None
        self.audio_source = audio
        self.audio_start = float(audio_start)
        self.audio_duration = audio_duration
        self.size = size
        self.crf, self.preset, self.codec, self.threads = crf, preset, codec, threads
        self.frames = 0  # frames in the file
        self.duration = 0.0  # seconds, after close
        self.has_audio = False
        self.audio_coverage = 0.0
        self._out = None
        self._vs = None
        self._as = None
        self._cursor = None
        self._own_cursor = False
        self._wh: tuple[int, int] | None = None  # encoded size (even)
        self._in_size: tuple[int, int] | None = None  # size of the frames handed in
        self._last_t: float | None = None  # time of the last frame handed to the encoder
        self._durations: dict[int, int] = {}  # pts -> duration of frames inside the encoder
        self._pending = None  # (frame, time) encoded once the next frame's time gives its duration
        self._held = None  # constant rate: (time, frame) waiting for the next input time
        self._next_out = 0.0
        self._audio_done = 0  # samples written
        self._audio_real = 0  # of which from the source (not silence)
        self._tmp = temp_path(self.path) if self.buffer is None else None

    # -- set-up -------------------------------------------------------------------------------------------
    def _open_audio(self) -> None:
        from faceexpr_cli.media.audio import AudioCursor

        src = self.audio_source
        if src is None:
            return
        if isinstance(src, AudioCursor):
            cursor = src
        else:
            cursor, self._own_cursor = AudioCursor(src), True
        if cursor.stream is None:
            self._close_cursor(cursor)
            return
        lo, hi = cursor.extent
        span_end = self.audio_start + (self.audio_duration if self.audio_duration is not None else float("inf"))
        if hi is not None and (self.audio_start >= hi - 1e-3 or span_end <= lo + 1e-3):
            self._close_cursor(cursor)  # the clip lies wholly outside the source's audio: no track at all
            return
        self._cursor = cursor

    def _close_cursor(self, cursor) -> None:
        if self._own_cursor:
            cursor.close()
        self._own_cursor = False

    def _start(self, width: int, height: int) -> None:
        import av

        self._open_audio()
        asked = self.size or (width, height)
        w, h = asked[0] + asked[0] % 2, asked[1] + asked[1] % 2  # yuv420p needs even sizes: odd ones are padded
        if w < 2 or h < 2:
            raise MediaError(self.path, f"frame size {asked[0]}x{asked[1]} is too small to encode")
        if self.buffer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, fmt = str(self._tmp), _FORMATS[self.path.suffix.lower()]
        else:
            target, fmt = self.buffer, "mp4"
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") and self.buffer is None else {}
        try:
            self._out = av.open(target, "w", format=fmt, options=options)
            vs = self._out.add_stream(self.codec, rate=rate_fraction(self.fps))
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.time_base = TIME_BASE
            vs.codec_context.time_base = TIME_BASE
            vs.codec_context.thread_count = self.threads
            # no B-frames: decode order is display order, so the container keeps each frame's own duration (the
            # last one included, which mp4 takes from the last packet in decode order)
            vs.options = {"crf": str(self.crf), "preset": self.preset, "bf": "0"}
            self._vs = vs
            if self._cursor is not None:
                a = self._out.add_stream("aac", rate=self._cursor.rate)
                a.layout = self._cursor.layout
                a.bit_rate = 128000
                a.options = {"aac_coder": "fast"}
                self._as = a
        except (av.error.FFmpegError, ValueError) as exc:
            self._abort()
            raise MediaError(self.path, f"cannot start the encoder ({exc})") from exc
        self._wh = (w, h)

    # -- frames ---------------------------------------------------------------------------------------------
    def write(self, frame, time: float | None = None) -> None:
        """Add a frame shown from ``time`` (s from the clip's first frame; default: ``frames / fps``)."""
        import av

        if isinstance(frame, av.VideoFrame):
            w, h = frame.width, frame.height
        else:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be HxWx3 uint8, got {frame.shape} {frame.dtype}")
            h, w = frame.shape[:2]
        if self._out is None:
            self._start(w, h)
            self._in_size = (w, h)
        elif (w, h) != self._in_size:
            raise ValueError(f"frame size changed from {self._in_size} to {(w, h)}")
        if time is None:
            time = (self._held[0] + 1 / self.fps) if self._held is not None else (
                0.0 if self._last_t is None else self._last_t + 1 / self.fps)
        if self._last_t is not None and time <= self._last_t + 1e-6 and self.constant_fps is None:
            raise ValueError(f"frame times must increase ({time:.6f} after {self._last_t:.6f})")
        if self.constant_fps is None:
            self._encode(frame, time)
            return
        if self._held is not None:
            self._emit_held(until=time)
        self._held = (time, frame)

    def _emit_held(self, until: float) -> None:
        """Constant rate: the held frame (the latest at or before each output time) fills the slots up to
        ``until``; the first frame also fills any slot before it."""
        frame = self._held[1]
        while self._next_out < until - 1e-9:
            self._encode(frame, self._next_out)
            self._next_out = self.frames / self.constant_fps

    def _encode(self, frame, time: float) -> None:
        """Queue a frame; the previous one is encoded now that its duration is known."""
        import av

        w, h = self._wh
        if not isinstance(frame, av.VideoFrame):
            ph, pw = (h - frame.shape[0], w - frame.shape[1]) if self.size is None else (0, 0)
            if ph or pw:
                frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if frame.width != w or frame.height != h or frame.format.name != "yuv420p":
            frame = frame.reformat(width=w, height=h, format="yuv420p")
        else:
            frame = frame.reformat(format="yuv420p")  # a copy: the source's frame may be reused by its decoder
        self._flush_pending(until=time)
        self._pending = (frame, time)
        self._last_t = time
        self.frames += 1

    def _flush_pending(self, until: float) -> None:
        import av

        if self._pending is None:
            return
        frame, t = self._pending
        self._pending = None
        self._write_audio(until=t)
        frame.pts = round(t / TIME_BASE)
        frame.duration = max(1, round(until / TIME_BASE) - frame.pts)
        frame.time_base = TIME_BASE
        frame.pict_type = av.video.frame.PictureType.NONE  # do not force the source's key frames
        self._durations[frame.pts] = frame.duration
        self._mux_video(self._vs.encode(frame))

    def _mux_video(self, packets) -> None:
        """libx264 gives packets the duration of its nominal rate: restore each frame's own, so the container
        shows the last frame for as long as the source did."""
        for packet in packets:
            d = self._durations.pop(packet.pts, None)
            if d is not None:
                packet.duration = d
            self._mux(packet)

    @property
    def size_written(self) -> tuple[int, int]:
        """(width, height) of the encoded frames (even)."""
        return self._wh or (0, 0)

    def _mux(self, packets) -> None:
        import av

        try:
            self._out.mux(packets)
        except av.error.FFmpegError as exc:
            raise MediaError(self.path, f"writing failed ({exc})") from exc

    # -- audio ----------------------------------------------------------------------------------------------
    def _write_audio(self, until: float, final: bool = False) -> None:
        """Encode the source audio of the clip's [0, until) not written yet: whole AAC frames as the video goes,
        the rest when ``final``."""
        import av

        if self._as is None:
            return
        rate = self._cursor.rate
        n = int(round(until * rate)) - self._audio_done
        if not final:
            n -= n % 1024
        if n <= 0:
            return
        wave = self._cursor.read(self.audio_start + self._audio_done / rate, n / rate)
        self._audio_real += self._cursor.last_real
        data = np.ascontiguousarray(wave[:, :n], dtype=np.float32)
        for s in range(0, data.shape[1], 1024):
            chunk = np.ascontiguousarray(data[:, s:s + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._as.layout.name)
            af.sample_rate = rate
            af.pts = self._audio_done + s
            af.time_base = Fraction(1, rate)
            self._mux(self._as.encode(af))
        self._audio_done += data.shape[1]

    # -- the end --------------------------------------------------------------------------------------------
    def close(self, end: float | None = None) -> Path:
        """Finish the file. ``end``: when the last frame stops being shown (s from the clip's first frame)."""
        if self._out is None:
            raise MediaError(self.path, "no frames were written")
        try:
            if self.constant_fps is not None and self._held is not None:
                stop = end if end is not None else self._held[0] + 1 / self.constant_fps
                self._emit_held(until=stop)
                end = self.frames / self.constant_fps
            last = self._last_t or 0.0
            if end is None or end <= last + 1e-6:
                end = last + 1 / self.fps
            self.duration = end
            self._flush_pending(until=end)
            self._mux_video(self._vs.encode(None))
            if self._as is not None:
                self._write_audio(until=end, final=True)
                self._mux(self._as.encode(None))
                total = self._audio_done
                self.audio_coverage = round(min(1.0, self._audio_real / total), 4) if total else 0.0
                self.has_audio = True  # the track exists; audio_coverage says how much of it is the source
            self._out.close()
        except BaseException:
            self._abort()
            raise
        finally:
            if self._cursor is not None:
                self._close_cursor(self._cursor)
        self._out = None
        if self.buffer is not None:
            return self.path
        self._tmp.replace(self.path)
        return self.path

    def _abort(self) -> None:
        if self._out is not None:
            with contextlib.suppress(Exception):  # tearing down a failed file
                self._out.close()
            self._out = None
        if self._cursor is not None:
            self._close_cursor(self._cursor)
            self._cursor = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop the file (nothing is left under either name)."""
        self._abort()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, **kwargs) -> Path:
    with VideoWriter(path, fps, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def write_timed(out: str | Path, frames: Iterable[np.ndarray], times, end: float, fps: float, *, audio=None,
                label: str = "write") -> tuple[int, tuple[int, ...]]:
    """Frames that play on another video's clock: frame k at ``times[k]`` (frames past the table get none), the
    file ending at ``end`` when every timed frame came, ``audio`` copied over that span; progress on stderr. An
    error or Ctrl-C leaves no file. Returns (frames written, shape of the last frame)."""
    from faceexpr_cli.console import progress

    shape: tuple[int, ...] = ()
    writer = VideoWriter(out, fps, audio=audio, audio_duration=end)
    try:
        with progress(transient=True) as bar:
            task = bar.add_task(label, total=len(times))
            for k, frame in enumerate(frames):
                writer.write(frame, time=float(times[k]) if k < len(times) else None)
                shape = frame.shape
                bar.advance(task)
        writer.close(end=end if writer.frames == len(times) else None)
    except BaseException:
        writer.abort()
        raise
    return writer.frames, shape
