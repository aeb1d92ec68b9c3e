"""``fx swap``: one pass over the driving video - decode, follow the chosen faces, swap in batches, write.

Each decoded frame goes to the face followers (``swap.faces``), then, in batches of ``--batch`` frames, to the
engine, then to the one video writer (on the driver's own clock, its audio muxed in, a temporary name renamed on
a clean close). A frame without a chosen face is written unchanged and counted. A driving image gives an image.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.animate.inputs import DEFAULT_MAX_PIXELS, check_image, check_out, check_pixels
from faceexpr_cli.console import log
from faceexpr_cli.errors import MediaError, MissingFileError
from faceexpr_cli.swap.engines import SwapOptions, check_options, get_engine

_NOTICES_SHOWN: set[str] = set()


@dataclass
class SwapSettings:
    engine: str = "landmarks"
    driving_face: str = "largest"  # all | largest | INDEX | REF.jpg
    source_face: int | None = None
    side_by_side: bool = False
    max_frames: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    options: SwapOptions = field(default_factory=SwapOptions)
    restore_expression: bool = False  # LivePortrait re-imposes the driver's expression after the swap
    restore_checkpoint: str | None = None  # its release folder (default: the weights cache)
    restore_config: str | None = None  # an original LivePortrait models.yaml (default: the release's card)

    def validate(self) -> SwapSettings:
        from faceexpr_cli.safety import check_number

        check_number(self.max_frames, "--max-frames", minimum=1)
        check_number(self.max_pixels, "--max-pixels", minimum=1)
        check_number(self.source_face, "--source-face", minimum=0)
        check_options(self.engine, self.options)
        return self


@dataclass
class SwapResult:
    out: str
    engine: str
    frames: int
    faces_swapped: int
    frames_without_face: int
    fps: float
    width: int
    height: int
    audio: bool
    seconds: float
    ms_per_frame: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Driver:
    def __init__(self, path: Path, max_frames: int | None, max_pixels: int | None):
        from faceexpr_cli.media.images import is_image_path

        if not path.exists():
            raise MissingFileError(path, "driving video or image")
        self.path, self.max_frames = path, max_frames
        self.is_image = is_image_path(path)
        if self.is_image:
            check_image(path, max_pixels)
            self.fps, self.count, self.has_audio = 25.0, 1, False
            return
        from faceexpr_cli.media import probe

        info = probe(path)
        check_pixels(path, info.width, info.height, max_pixels)
        if not info.frame_count:
            raise MediaError(path, "has no video frames", "pass a video with at least one frame")
        self.fps = info.fps or 25.0
        self.count = min(info.frame_count, max_frames or info.frame_count)
        self.has_audio = bool(info.has_audio)

    def frames(self) -> Iterator[tuple[np.ndarray, float]]:
        if self.is_image:
            from faceexpr_cli.media import read_image

            yield read_image(self.path), 0.0
            return
        from faceexpr_cli.media import iter_frames

        for frame in iter_frames(self.path, max_frames=self.max_frames):
            yield frame.image, frame.time


def _fit(image: np.ndarray, h: int) -> np.ndarray:
    import cv2

    w = max(2, int(round(image.shape[1] * h / image.shape[0])))
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def swap(source: str | Path, driving: str | Path, out: str | Path, settings: SwapSettings | None = None,
         backend=None) -> SwapResult:
    """Swap the identity of ``source`` into ``driving``'s faces; writes ``out`` (mp4 for a video, png for an image)."""
    from faceexpr_cli.face import get_backend
    from faceexpr_cli.media import read_image
    from faceexpr_cli.swap.faces import DrivingFaces, source_face

    settings = (settings or SwapSettings()).validate()
    t0 = time.perf_counter()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise MissingFileError(source, "source face photo")
    drv = _Driver(Path(driving), settings.max_frames, settings.max_pixels)
    check_out(out, drv.is_image)
    check_image(source, settings.max_pixels)
    engine = get_engine(settings.engine, settings.options)
    if engine.notice and engine.name not in _NOTICES_SHOWN:
        _NOTICES_SHOWN.add(engine.name)
        log.warning("%s", engine.notice)
    if backend is None:
        backend = engine.make_face_backend() if hasattr(engine, "make_face_backend") else get_backend(
            settings.options.face_backend)
    engine.face_layer = backend
    restorer = None
    if settings.restore_expression:
        from faceexpr_cli.swap.restore import ExpressionRestorer

        restorer = ExpressionRestorer(settings.restore_checkpoint, settings.restore_config,
                                      device=settings.options.device)
    src_image = read_image(source)
    if engine.uses_source:
        engine.set_source(src_image, source_face(backend, src_image, str(source), settings.source_face), str(source))
    faces = DrivingFaces(backend, settings.driving_face, engine.detect_every, settings.max_pixels)
    counts = {"faces": 0, "empty": 0}

    def swapped() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        step = max(1, settings.options.batch)
        batch: list[tuple[np.ndarray, float]] = []
        found: list = []

        def flush():
            results = engine.swap([b[0] for b in batch], found)
            if restorer is not None:
                results = [restorer.restore(res, frame, fs) if fs else res
                           for (frame, _), res, fs in zip(batch, results, found, strict=True)]
            for (frame, _), res, fs in zip(batch, results, found, strict=True):
                counts["faces"] += len(fs)
                counts["empty"] += not fs
                yield frame, res
            batch.clear()
            found.clear()

        for frame, t in drv.frames():
            batch.append((frame, t))
            found.append(faces.update(frame, t))
            if len(batch) >= step:
                yield from flush()
        if batch:
            yield from flush()

    def composed() -> Iterator[np.ndarray]:
        for frame, result in swapped():
            if settings.side_by_side:
                h = result.shape[0]
                yield np.concatenate([_fit(src_image, h), frame, result], axis=1)
            else:
                yield result

    count, shape = _write(out, composed(), drv)
    if counts["empty"] == count and count:
        log.warning("%s: no chosen face in any of its %d frame(s); written unchanged", drv.path, count)
    elif counts["empty"]:
        log.info("%d of %d frame(s) had no face to swap (passed through unchanged)", counts["empty"], count)
    seconds = time.perf_counter() - t0
    return SwapResult(str(out), engine.name, count, counts["faces"], counts["empty"], drv.fps, shape[1], shape[0],
                      bool(drv.has_audio), round(seconds, 3), round(1000 * seconds / max(count, 1), 2),
                      {**engine.describe(), **(restorer.describe() if restorer else {}),
                       "driving_face": settings.driving_face,
                       "face_backend": getattr(backend, "name", None)})


def _write(out: Path, frames: Iterator[np.ndarray], drv: _Driver) -> tuple[int, tuple[int, ...]]:
    from faceexpr_cli.media import write_image
    from faceexpr_cli.media.writer import write_timed

    if drv.is_image:
        frame = next(iter(frames))
        write_image(out, frame)
        return 1, frame.shape
    from faceexpr_cli.media.timeline import frame_times

    table = frame_times(drv.path)
    times, end = table.times[:drv.count], table.span_end(0, min(drv.count, len(table)))
    return write_timed(out, frames, times, end, drv.fps, audio=drv.path if drv.has_audio else None,
                       label="swap")
