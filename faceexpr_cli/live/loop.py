"""The `fx live` loop: take the newest frame, process it, show / serve / record it, until the source ends.

Latency is measured from the moment the capture thread had the frame to the moment its result was published
(served, shown, recorded), so it includes any wait in the slot. ``fps`` is frames processed per second of wall
time over the last two seconds; the summary gives the whole run's rate too.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.errors import DependencyError, FxError, MediaError, UsageError
from faceexpr_cli.live.process import FrameProcessor, FrameResult, LiveModels
from faceexpr_cli.live.source import Capture, parse_size, parse_source


@dataclass
class LiveOptions:
    source: str
    models: LiveModels = field(default_factory=LiveModels)
    serve: str | None = None  # HOST:PORT
    host: str | None = None
    window: bool = False
    record: str | None = None
    tokens: str | None = None
    max_seconds: float | None = None
    size: str | None = None
    as_fast_as_possible: bool = False
    virtual_cam: bool = False
    linger: float = 0.0  # seconds the page keeps serving after the loop ends
    jpeg_quality: int = 80


@dataclass
class LiveResult:
    source: str
    frames: int
    dropped: int
    captured: int
    seconds: float
    fps: float
    latency_ms: float | None
    latency_p95_ms: float | None
    faces: int
    stop: str  # source-ended | max-seconds | interrupted
    record: str | None = None
    tokens: str | None = None
    url: str | None = None
    models: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Stats:
    def __init__(self, window: float = 2.0):
        self.window = window
        self.started = time.monotonic()
        self.frames = 0
        self.faces = 0
        self.done: deque[float] = deque()
        self.latency: deque[float] = deque(maxlen=200)
        self.all_latency: list[float] = []

    def add(self, captured_at: float, face: bool) -> None:
        now = time.monotonic()
        self.frames += 1
        self.faces += int(face)
        self.done.append(now)
        while self.done and now - self.done[0] > self.window:
            self.done.popleft()
        ms = 1000.0 * (now - captured_at)
        self.latency.append(ms)
        self.all_latency.append(ms)

    def fps(self) -> float | None:
        if len(self.done) < 2:
            return None
        span = self.done[-1] - self.done[0]
        return (len(self.done) - 1) / span if span > 0 else None

    def median_ms(self, values=None) -> float | None:
        values = self.latency if values is None else values
        return round(float(statistics.median(values)), 1) if values else None

    def p95_ms(self) -> float | None:
        return round(float(np.percentile(self.all_latency, 95)), 1) if self.all_latency else None


def _check(opts: LiveOptions) -> None:
    from faceexpr_cli.safety import check_number

    if opts.serve is not None:
        from faceexpr_cli.live.server import parse_address

        parse_address(opts.serve, opts.host)
    if opts.max_seconds is not None:
        check_number(opts.max_seconds, "--max-seconds", minimum=0.1)
    check_number(opts.linger, "--linger", minimum=0)
    for flag, path in (("--record", opts.record), ("--tokens", opts.tokens)):
        if path and not Path(path).parent.exists():
            raise UsageError(f"{flag} {path}: its folder does not exist")
    if opts.record and Path(opts.record).suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise UsageError(f"--record {opts.record}: use a .mp4, .mov or .mkv name")
    if opts.window and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UsageError("--window: no display here (DISPLAY is not set)", "use --serve and open the page")
    if opts.virtual_cam:
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError as exc:
            raise DependencyError("--virtual-cam needs pyvirtualcam", "pip install pyvirtualcam") from exc


class _Outputs:
    """Recording, token lines, the page, the window and the virtual camera: each only when asked for."""

    def __init__(self, opts: LiveOptions, status):
        from faceexpr_cli.live.server import LiveServer, LiveState, parse_address

        self.opts = opts
        self.writer = None
        self.t0: float | None = None
        self.tokens = open(opts.tokens, "w", encoding="utf-8", buffering=1) if opts.tokens else None  # noqa: SIM115
        self.state = LiveState(status)
        self.server = None
        if opts.serve is not None:
            host, port = parse_address(opts.serve, opts.host)
            self.server = LiveServer(self.state, host, port).start()
            log.warning("fx live: open %s", self.server.url)
        self.cam = None

    def emit(self, frame, result: FrameResult, latency_ms: float) -> None:
        import cv2

        shown = result.shown if result.shown is not None else frame.image
        token = None if result.token is None else [round(float(v), 5) for v in result.token]
        if self.t0 is None:
            self.t0 = frame.time
        if self.opts.record:
            self._record(frame, shown)
        if self.tokens is not None:
            self.tokens.write(json.dumps({"frame": frame.index, "time": round(frame.time, 4), "box": result.box,
                                          "token": token, "prediction_error": result.prediction_error,
                                          "emotion": result.emotion, "latency_ms": round(latency_ms, 1)}) + "\n")
        if self.server is not None:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, self.opts.jpeg_quality])
            point = {"time": round(frame.time, 3), "token": token[:3] if token else None,
                     "face": _face_point(result.box, shown.shape),
                     "prediction_error": result.prediction_error, "emotion": result.emotion}
            self.state.publish(jpeg.tobytes() if ok else b"", point)
        if self.opts.window:
            cv2.imshow("fx live", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                raise KeyboardInterrupt
        if self.opts.virtual_cam:
            self._virtual(shown)

    def _record(self, frame, shown: np.ndarray) -> None:
        if self.writer is None:
            from faceexpr_cli.media import VideoWriter

            audio = self.opts.source if Path(self.opts.source).is_file() else None
            self.writer = VideoWriter(self.opts.record, fps=25.0, audio=audio, audio_start=frame.time)
        self.writer.write(shown, time=frame.time - self.t0)

    def _virtual(self, shown: np.ndarray) -> None:
        import pyvirtualcam

        if self.cam is None:
            self.cam = pyvirtualcam.Camera(width=shown.shape[1], height=shown.shape[0], fps=30)
        self.cam.send(np.ascontiguousarray(shown))

    def close(self, end_time: float | None, failed: bool) -> None:
        if self.writer is not None:
            end = None if end_time is None or self.t0 is None else end_time - self.t0
            if failed and self.writer.frames == 0:
                self.writer.abort()
            else:
                self.writer.close(end=end)
        if self.tokens is not None:
            self.tokens.close()
        if self.server is not None:
            self.server.linger(self.opts.linger)
            self.server.stop()
        if self.cam is not None:
            self.cam.close()
        if self.opts.window:
            import cv2

            cv2.destroyAllWindows()


def _face_point(box: list[float] | None, shape: tuple[int, ...]) -> list[float] | None:
    """The face's centre and size as fractions of the frame: what the page plots when there are no tokens."""
    if box is None:
        return None
    h, w = shape[:2]
    x0, y0, x1, y1 = box[:4]
    return [round((x0 + x1) / 2 / w, 4), round((y0 + y1) / 2 / h, 4), round(max(x1 - x0, y1 - y0) / max(w, h), 4)]


def run_live(opts: LiveOptions) -> LiveResult:
    _check(opts)
    spec = parse_source(opts.source, parse_size(opts.size))
    capture = Capture(spec, opts.as_fast_as_possible)
    processor = FrameProcessor(opts.models)  # every model loads before the first frame is taken
    stats = Stats()

    def status() -> dict[str, Any]:
        fps = stats.fps()
        return {"frames": stats.frames, "fps": None if fps is None else round(fps, 2),
                "latency_ms": stats.median_ms(), "dropped": capture.slot.dropped,
                "captured": capture.slot.captured, "faces": stats.faces, "source": opts.source,
                "seconds": round(time.monotonic() - stats.started, 2), "ended": capture.slot.ended}

    outputs = _Outputs(opts, status)
    stop, last, failed = "source-ended", None, False
    capture.start()
    stats.started = time.monotonic()
    deadline = None if opts.max_seconds is None else stats.started + float(opts.max_seconds)
    try:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                stop = "max-seconds"
                break
            frame = capture.slot.get(timeout=0.25)
            if frame is None:
                if capture.slot.ended:
                    break
                continue
            result = processor.process(frame.image, frame.time)
            latency = 1000.0 * (time.monotonic() - frame.captured)
            outputs.emit(frame, result, latency)
            stats.add(frame.captured, result.box is not None)
            last = frame
    except KeyboardInterrupt:
        stop = "interrupted"
    except BaseException:
        failed = True
        raise
    finally:
        seconds = time.monotonic() - stats.started
        capture.stop()
        end_time = None if last is None else last.time + 1.0 / 25.0
        outputs.close(end_time, failed)
    if capture.slot.error is not None and stop == "source-ended":
        err = capture.slot.error
        what = f"after {stats.frames} frames" if stats.frames else "before any frame"
        if isinstance(err, FxError):
            err.message = f"the source broke {what}: {err.message}"
            raise err
        raise MediaError(opts.source, f"the source broke {what}: {err}") from err
    return LiveResult(source=opts.source, frames=stats.frames, dropped=capture.slot.dropped,
                      captured=capture.slot.captured, seconds=round(seconds, 2),
                      fps=round(stats.frames / seconds, 2) if seconds > 0 else 0.0,
                      latency_ms=stats.median_ms(stats.all_latency), latency_p95_ms=stats.p95_ms(),
                      faces=stats.faces, stop=stop, record=opts.record, tokens=opts.tokens,
                      url=outputs.server.url if outputs.server else None, models=processor.describe())
