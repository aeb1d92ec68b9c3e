"""Where `fx live` gets its frames: a camera, a network stream or a file, read on a capture thread.

The capture thread hands frames to the loop through a one-frame slot. At real pace (cameras, streams, and files
played at their own timestamps) a new frame replaces one that the loop has not taken yet, and that frame counts
as dropped: under load fx drops frames rather than letting latency grow. ``--as-fast-as-possible`` (files only)
makes the slot blocking instead, so every frame is processed and none is dropped.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceexpr_cli.errors import MediaError, MissingFileError, UsageError
from faceexpr_cli.registry import Registry

_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp|srt)://", re.IGNORECASE)


@dataclass
class Captured:
    index: int  # frame number at the source
    time: float  # source time (s) from the first frame
    captured: float  # time.monotonic() when the capture thread had it
    image: np.ndarray  # H x W x 3 RGB uint8


@dataclass
class SourceSpec:
    kind: str  # camera | stream | file
    target: str  # device path, URL or file path
    size: tuple[int, int] | None = None  # (width, height) to scale frames to


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``640x480`` -> (640, 480); None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m[1]) < 16 or int(m[2]) < 16 or int(m[1]) > 7680 or int(m[2]) > 4320:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT between 16x16 and 7680x4320, e.g. 640x480")
    return int(m[1]), int(m[2])


def parse_source(text: str, size: tuple[int, int] | None = None) -> SourceSpec:
    """``0`` or ``/dev/video0`` -> camera, ``rtsp://...``/``http://...`` -> stream, anything else -> a file."""
    text = str(text).strip()
    if text.isdigit():
        return SourceSpec("camera", f"/dev/video{int(text)}", size)
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, size)
    if _URL.match(text):
        return SourceSpec("stream", text, size)
    path = Path(text).expanduser()
    if not path.is_file():
        raise MissingFileError(path, "live source", "give a camera index (0), /dev/videoN, a stream URL or a file")
    return SourceSpec("file", str(path), size)


# -- readers: each yields (time, image) until the source ends ---------------------------------------------------
READERS: Registry = Registry("live source kind")


def _decode(container, size: tuple[int, int] | None) -> Iterator[tuple[float, np.ndarray]]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    t0 = None
    for frame in container.decode(stream):
        t = float(frame.time) if frame.time is not None else None
        if t is None:
            t = 0.0 if t0 is None else time.monotonic() - t0
        t0 = t if t0 is None else t0
        image = (frame.to_ndarray(format="rgb24") if size is None
                 else frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
        yield t - t0, image


@READERS.register("camera")
def _camera(spec: SourceSpec) -> Iterator[tuple[float, np.ndarray]]:
    import av

    w, h = spec.size or (640, 480)
    if not Path(spec.target).exists():
        raise MediaError(spec.target, "no such camera", "list cameras with `v4l2-ctl --list-devices`")
    try:
        container = av.open(spec.target, format="v4l2", options={"video_size": f"{w}x{h}", "framerate": "30"})
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(spec.target, f"cannot open the camera: {exc}", "is another program using it?") from exc
    with container:
        yield from _decode(container, spec.size)


@READERS.register("stream")
def _stream(spec: SourceSpec) -> Iterator[tuple[float, np.ndarray]]:
    import av

    options = {"rw_timeout": "5000000"}  # microseconds: a stalled stream ends the loop instead of hanging it
    if spec.target.lower().startswith("rtsp"):
        options["rtsp_transport"] = "tcp"
    try:
        container = av.open(spec.target, options=options, timeout=10.0)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(spec.target, f"cannot open the stream: {exc}", "check the URL and that it is live") from exc
    with container:
        if not container.streams.video:
            raise MediaError(spec.target, "the stream has no video")
        yield from _decode(container, spec.size)


@READERS.register("file")
def _file(spec: SourceSpec) -> Iterator[tuple[float, np.ndarray]]:
    from faceexpr_cli.media import iter_frames

    for frame in iter_frames(spec.target, size=spec.size):
        yield frame.time, frame.image


# -- the capture thread ------------------------------------------------------------------------------------------
class FrameSlot:
    """Newest-frame hand-over between the capture thread and the loop (see the module docstring)."""

    def __init__(self, blocking: bool):
        self.blocking = blocking
        self._cond = threading.Condition()
        self._frame: Captured | None = None
        self.dropped = 0
        self.captured = 0
        self.ended = False
        self.error: Exception | None = None
        self.stopping = False

    def put(self, frame: Captured) -> None:
        with self._cond:
            while self.blocking and self._frame is not None and not self.stopping:
                self._cond.wait(0.1)
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.captured += 1
            self._cond.notify_all()

    def end(self, error: Exception | None = None) -> None:
        with self._cond:
            self.ended, self.error = True, error
            self._cond.notify_all()

    def get(self, timeout: float = 0.5) -> Captured | None:
        """The newest frame; None when the source has ended (or nothing came within ``timeout``; see ``ended``)."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while self._frame is None and not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame


class Capture:
    """Reads ``spec`` on a daemon thread into a ``FrameSlot``; files are paced by their timestamps unless
    ``as_fast_as_possible``."""

    def __init__(self, spec: SourceSpec, as_fast_as_possible: bool = False):
        if as_fast_as_possible and spec.kind != "file":
            raise UsageError("--as-fast-as-possible is for file sources", "cameras and streams run at their own pace")
        self.spec = spec
        self.paced = spec.kind == "file" and not as_fast_as_possible
        self.slot = FrameSlot(blocking=as_fast_as_possible)
        self._thread = threading.Thread(target=self._run, name="fx-live-capture", daemon=True)
        self.started = 0.0

    def start(self) -> Capture:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for index, (t, image) in enumerate(READERS.get(self.spec.kind)(self.spec)):
                if self.slot.stopping:
                    break
                if self.paced:
                    wait = self.started + t - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                self.slot.put(Captured(index, float(t), time.monotonic(), np.ascontiguousarray(image)))
            self.slot.end()
        except Exception as exc:  # noqa: BLE001 - any reader failure ends the loop with its one line
            self.slot.end(exc)

    def stop(self) -> None:
        self.slot.stopping = True
        self._thread.join(timeout=2.0)
