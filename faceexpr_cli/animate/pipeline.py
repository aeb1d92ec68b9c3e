"""``fx animate``: the frame loop around an engine - decode, crop, motion, smoothing, reference, render, write.

Two passes over the driving video: the first measures motion per frame (the engine's key points or landmarks) and
where the driver's face is (landmark engines say so themselves; for the others a landmark follower watches the same
frames), so lost frames get the ``--on-missing-face`` policy (``animate.face_lost``), smoothing can run forwards
and backwards and the reference frame can be chosen anywhere in the video; the second renders in batches and, for ``--side-by-side``, decodes the driver again beside it. Output frames stream into
the video writer (temporary name, renamed when complete) with the driving audio muxed in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.animate.engines import Engine, EngineOptions, Motion, check_engine_options, get_engine
from faceexpr_cli.animate.inputs import DEFAULT_MAX_PIXELS, check_image, check_out, check_pixels
from faceexpr_cli.animate.landmarks import LandmarkTrack
from faceexpr_cli.console import log, progress
from faceexpr_cli.errors import MediaError, UsageError


@dataclass
class AnimateOptions:
    engine: str = "landmarks"
    relative: bool = True
    adapt_scale: bool = False
    reference: str | None = None  # a driving frame index or an image path
    find_best_frame: bool = False
    crop: str | None = None  # none | auto; None: the engine's default (liveportrait: auto, others: none)
    crop_increase: float | None = None  # None: the engine's default (0.4; liveportrait 0.65, a 2.3x square)
    paste_back: bool | None = None  # None: on where the engine says so and the crop is auto
    smooth: float = 1.5  # One-Euro min cutoff (Hz) on the driving motion; 0 turns smoothing off
    side_by_side: bool = False
    max_frames: int | None = None
    on_missing_face: str = "hold"  # hold | neutral | error (animate.face_lost.POLICIES)
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # larger sources and drivers are refused before decoding
    engine_options: EngineOptions = field(default_factory=EngineOptions)

    def validate(self) -> AnimateOptions:
        """NaN, infinite and out-of-range numbers, and a bad engine/backend/device: usage errors before any work."""
        from faceexpr_cli.animate.crop import DEFAULT_INCREASE
        from faceexpr_cli.animate.engines import ENGINES
        from faceexpr_cli.animate.face_lost import check_policy
        from faceexpr_cli.safety import check_number

        cls = ENGINES.get(self.engine)  # engine defaults for the framing options left unset
        if self.crop is None:
            self.crop = getattr(cls, "default_crop", "none")
        if self.crop_increase is None:
            self.crop_increase = getattr(cls, "default_crop_increase", DEFAULT_INCREASE)
        if self.paste_back is None:
            self.paste_back = self.crop == "auto" and getattr(cls, "default_paste_back", False)
        self.engine_options.extra.setdefault("crop", self.crop)
        if hasattr(cls, "check_options"):  # the engine's own options (liveportrait: region, ratios, ...)
            cls.check_options(self.engine_options.extra)
        check_number(self.smooth, "--smooth", minimum=0)
        check_number(self.crop_increase, "--crop-increase", minimum=0, maximum=10)
        check_number(self.max_frames, "--max-frames", minimum=1)
        check_number(self.max_pixels, "--max-pixels", minimum=1)
        if self.crop not in ("none", "auto"):
            raise UsageError(f"--crop {self.crop}: use auto or none")
        if self.paste_back and self.crop != "auto":
            raise UsageError("--paste-back needs --crop auto", "add --crop auto")
        check_policy(self.on_missing_face)
        check_engine_options(self.engine, self.engine_options)
        check_size(self.engine, self.engine_options)
        return self


def check_size(engine: str, options) -> None:
    """``--size`` (``options.extra["size"]``): a number in range, for an engine that works at one square size."""
    from faceexpr_cli.animate.engines import ENGINES
    from faceexpr_cli.safety import check_number

    size = options.extra.get("size")
    if size is None:
        return
    check_number(size, "--size", minimum=32, maximum=4096)
    if ENGINES.get(engine).size is None:
        raise UsageError(f"--size applies to engines that work at one square size (fomm), not '{engine}'",
                         "leave --size out: this engine works at the image's own size")


@dataclass
class AnimateResult:
    out: str
    engine: str
    frames: int
    fps: float
    width: int
    height: int
    reference_frame: int | None
    audio: bool
    seconds: float
    ms_per_frame: float
    details: dict[str, Any] = field(default_factory=dict)
    on_missing_face: str = "hold"
    missing_face_frames: int = 0  # driving frames without a face (their motion replaced by the policy's)
    missing_face_ranges: list[list[int]] = field(default_factory=list)  # [first, last] frame indices

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


class Driving:
    """The driving input (video or one image) as frames in the engine's working space."""

    def __init__(self, path: Path, max_frames: int | None, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        from faceexpr_cli.media.images import is_image_path

        if not path.exists():
            from faceexpr_cli.errors import MissingFileError

            raise MissingFileError(path, "driving video or image")
        self.path = path
        self.is_image = is_image_path(path)
        self.max_frames = max_frames
        self.transform = lambda im: im
        if self.is_image:
            from faceexpr_cli.media import read_image

            check_image(path, max_pixels)
            self.image = read_image(path)
            self.fps, self.count, self.has_audio = 25.0, 1, False
        else:
            from faceexpr_cli.media import probe

            info = probe(path)
            check_pixels(path, info.width, info.height, max_pixels)
            if not info.frame_count:
                raise MediaError(path, "has no video frames", "pass a video with at least one frame")
            self.fps = info.fps or 25.0
            self.count = min(info.frame_count, max_frames or info.frame_count)
            self.has_audio = info.has_audio

    def raw(self, fps: float | None = None) -> Iterator[np.ndarray]:
        if self.is_image:
            yield self.image
            return
        from faceexpr_cli.media import iter_frames

        for frame in iter_frames(self.path, fps=fps, max_frames=None if fps else self.max_frames):
            yield frame.image

    def frames(self) -> Iterator[np.ndarray]:
        for image in self.raw():
            yield self.transform(image)


class TemplateDriving:
    """A motion template (``.npz`` from ``fx animate extract-motion``) in place of a driving video: no frames,
    the motion and fps it holds."""

    is_image = False
    has_audio = False

    def __init__(self, path: Path, opts: AnimateOptions):
        if not path.is_file():
            from faceexpr_cli.errors import MissingFileError

            raise MissingFileError(path, "motion template")
        for flag, on in (("--side-by-side", opts.side_by_side), ("--find-best-frame", opts.find_best_frame)):
            if on:
                raise UsageError(f"{flag} needs the driving video, not a motion template")
        self.path, self.max_frames = path, opts.max_frames
        self.transform = lambda im: im
        self.motion: Motion | None = None
        self.fps, self.count = 25.0, 0

    def load(self, engine: Engine) -> None:
        if not hasattr(engine, "load_motion"):
            raise UsageError(f"--driving {self.path.name}: motion templates drive the liveportrait engine",
                             "add --engine liveportrait")
        motion, self.fps = engine.load_motion(self.path)
        if self.max_frames:
            motion = Motion(motion.points[:self.max_frames], None, motion.found[:self.max_frames])
        self.motion, self.count = motion, len(motion)

    def raw(self, fps: float | None = None) -> Iterator[np.ndarray]:
        return iter(())

    def frames(self) -> Iterator[np.ndarray]:
        return iter(())


def _one_euro(values: np.ndarray, times: np.ndarray, cutoff: float, beta: float) -> np.ndarray:
    """Zero-phase One-Euro filtering of a (T, D) series: forwards and backwards, averaged (no lag)."""
    from faceexpr_cli.face.smoothing import OneEuroFilter

    def run(v: np.ndarray, t: np.ndarray) -> np.ndarray:
        f = OneEuroFilter(cutoff, beta, 1.0)
        return np.stack([f(x, float(ti)) for x, ti in zip(v, t, strict=True)])

    return (run(values, times) + run(values[::-1], -times[::-1])[::-1]) / 2


def smooth_motion(motion: Motion, fps: float, cutoff: float, beta: float = 1.0) -> Motion:
    """One-Euro smoothing of points (and Jacobians) over time, in units of the face's size, so one ``cutoff`` (Hz
    at rest) and ``beta`` work for pixel landmarks and normalised key points alike."""
    if cutoff <= 0 or len(motion) < 3:
        return motion
    from faceexpr_cli.animate.motion import hull_area

    times = np.arange(len(motion)) / fps
    unit = max(float(np.sqrt(hull_area(motion.points[0]))), 1e-6)
    flat = motion.points.reshape(len(motion), -1).astype(np.float64) / unit
    points = (_one_euro(flat, times, cutoff, beta) * unit).reshape(motion.points.shape).astype(np.float32)
    jac = motion.jacobians
    if jac is not None:
        jac = _one_euro(jac.reshape(len(motion), -1).astype(np.float64), times, cutoff, beta)
        jac = jac.reshape(motion.jacobians.shape).astype(np.float32)
    return Motion(points, jac, motion.found)


def _nearest_found(index: int, found: np.ndarray, why: str) -> int:
    if found[index]:
        return index
    good = np.flatnonzero(found)
    near = int(good[np.abs(good - index).argmin()])
    log.warning("%s %d has no face: measuring motion from frame %d", why, index, near)
    return near


def _reference(engine: Engine, opts: AnimateOptions, driving: Driving, motion: Motion, track: LandmarkTrack | None,
               source_image: np.ndarray) -> tuple[int | None, Motion | None]:
    """The driver's neutral frame that motion is measured from: its index (always a frame with a face), or for
    an external ``--reference`` image its motion."""
    from faceexpr_cli.animate.landmarks import best_frame, follow_landmarks, image_landmarks

    found = motion.found if motion.found is not None else np.ones(len(motion), bool)
    if opts.find_best_frame:
        backend = _face_backend(opts)
        src_pts = image_landmarks(backend, source_image, "source").landmarks68
        if track is None and not engine.landmark_motion:
            track = follow_landmarks(backend, driving.frames(), str(driving.path))
        drv_pts = motion.points if track is None else track.points
        index = best_frame(src_pts, drv_pts, usable=found)
        log.info("best frame: %d", index)
        return index, None
    ref = opts.reference
    if ref is None:
        return _nearest_found(0, found, "reference frame"), None
    if ref.strip().lstrip("-").isdigit():
        index = int(ref)
        if not -len(motion) <= index < len(motion):
            raise UsageError(f"--reference {index}: the driving input has {len(motion)} frames")
        return _nearest_found(index % len(motion), found, "--reference"), None
    from faceexpr_cli.media import read_image

    check_image(ref, opts.max_pixels)
    image = driving.transform(read_image(ref))
    return None, engine.driving_motion(iter([image]), ref)


def _pick(external: Motion | None, motion: Motion, index: int | None) -> Motion:
    return external if external is not None else motion.frame(index)


def _face_backend(opts: AnimateOptions):
    from faceexpr_cli.face import get_backend

    return get_backend(opts.engine_options.face_backend)


def animate(source: str | Path, driving_path: str | Path, out: str | Path,
            opts: AnimateOptions | None = None) -> AnimateResult:
    """Animate the face in ``source`` with the motion of ``driving_path``; writes ``out`` (mp4 or png)."""
    from faceexpr_cli.animate.crop import image_crop, tube_crop
    from faceexpr_cli.animate.face_lost import MissingFace, apply_policy, report_missing
    from faceexpr_cli.media import read_image

    opts = (opts or AnimateOptions()).validate()
    t0 = time.perf_counter()
    source, out = Path(source), Path(out)
    template = Path(driving_path).suffix.lower() == ".npz"  # a motion template (fx animate extract-motion)
    driving = (TemplateDriving(Path(driving_path), opts) if template
               else Driving(Path(driving_path), opts.max_frames, opts.max_pixels))
    check_out(out, driving.is_image)
    src_frames = _source_video(source, opts)  # a source video, for engines that animate one (liveportrait)
    if src_frames is None:
        check_image(source, opts.max_pixels)  # from its header, before the pixels are decoded
        full_source = read_image(source)
    else:
        full_source = src_frames[0]
    engine = get_engine(opts.engine, opts.engine_options)
    size = engine.size
    if template:
        driving.load(engine)

    src_crop = None
    if opts.crop == "auto":
        backend = _face_backend(opts)
        work = size or 256
        src_crop = (image_crop(backend, full_source, work, str(source), opts.crop_increase) if src_frames is None
                    else tube_crop(backend, iter(src_frames), work, str(source), opts.crop_increase))
        src_image = src_crop.apply(full_source)
        if not template:  # a template's motion was measured on the driver's own crop
            drv_crop = tube_crop(backend, driving.raw(fps=None if driving.is_image else 2.0), work,
                                 str(driving.path), opts.crop_increase)
            driving.transform = drv_crop.apply
    elif size:
        src_image = _resize(full_source, size)
        driving.transform = lambda im: _resize(im, size)
    else:
        src_image = full_source

    if src_frames is None:
        source_motion = engine.set_source(src_image, str(source))
    else:
        to_work = src_crop.apply if src_crop is not None else (lambda im: _resize(im, size)) if size else None
        source_motion = engine.set_source_video([to_work(f) if to_work else f for f in src_frames], str(source))
    motion, track = _measure(engine, opts, driving)
    found = motion.found
    missing = MissingFace(found, driving.fps)
    report_missing(opts.on_missing_face, missing, str(driving.path))
    relative = opts.relative
    if driving.is_image and relative and opts.reference is None and not opts.find_best_frame:
        log.info("one driving image and no --reference: using absolute motion")
        relative = False
    ref_index, ref_motion = _reference(engine, opts, driving, motion, track, src_image)
    # Lost frames get the policy's motion before smoothing (no garbage smeared into good frames) and again after
    # (exactly the held / neutral motion, not a blend).
    motion = apply_policy(opts.on_missing_face, motion, found, _pick(ref_motion, motion, ref_index))
    smoother = getattr(engine, "smooth", None)  # an engine whose motion is not points smooths its own
    motion = (smoother or smooth_motion)(motion, driving.fps, opts.smooth)
    reference = _pick(ref_motion, motion, ref_index)
    motion = apply_policy(opts.on_missing_face, motion, found, reference)
    targets = engine.retarget(source_motion, motion, reference, relative, opts.adapt_scale)

    def rendered() -> Iterator[np.ndarray]:
        step = max(1, opts.engine_options.batch)
        k = 0
        for i in range(0, len(targets), step):
            for frame in engine.render(targets.slice(i, i + step)):
                base = full_source if src_frames is None else src_frames[min(k, len(src_frames) - 1)]
                k += 1
                yield src_crop.paste(base, frame) if (src_crop is not None and opts.paste_back) else frame

    frames = rendered()
    if opts.side_by_side:
        frames = _side_by_side(frames, src_image if not opts.paste_back else full_source, driving)
    count, shape = _write(out, frames, driving, len(targets))
    seconds = time.perf_counter() - t0
    return AnimateResult(str(out), engine.name, count, driving.fps, shape[1], shape[0], ref_index,
                         bool(driving.has_audio and not driving.is_image), round(seconds, 3),
                         round(1000 * seconds / max(count, 1), 1), engine.describe(),
                         on_missing_face=opts.on_missing_face, missing_face_frames=missing.frames,
                         missing_face_ranges=missing.ranges)


def _source_video(source: Path, opts: AnimateOptions) -> np.ndarray | None:
    """The frames of a source video (``--max-frames`` of them) when the engine animates videos, else None."""
    from faceexpr_cli.animate.engines import ENGINES
    from faceexpr_cli.media.images import is_image_path

    if is_image_path(source) or not getattr(ENGINES.get(opts.engine), "source_video", False):
        return None
    from faceexpr_cli.media import probe, read_frames

    if not source.exists():
        from faceexpr_cli.errors import MissingFileError

        raise MissingFileError(source, "source image or video")
    info = probe(source)
    check_pixels(source, info.width, info.height, opts.max_pixels)
    if not info.frame_count:
        raise MediaError(source, "has no video frames", "pass a portrait image or a video with frames")
    return read_frames(source, max_frames=opts.max_frames)


def _measure(engine: Engine, opts: AnimateOptions, driving: Driving) -> tuple[Motion, LandmarkTrack | None]:
    """The engine's motion of every driving frame, with ``found`` (the frames where the face was seen with
    confidence): the landmark engines report it, for the others a landmark follower watches the same frames."""
    from faceexpr_cli.animate.landmarks import LandmarkFollower, NoFaceError

    if getattr(driving, "motion", None) is not None:  # a motion template
        return driving.motion, None
    follower = None
    if not engine.landmark_motion:
        follower = LandmarkFollower(_face_backend(opts), int(opts.engine_options.extra.get("detect_every", 10)))
    with progress(transient=True) as bar:
        task = bar.add_task("motion", total=driving.count)

        def counted():
            for frame in driving.frames():
                if follower is not None:
                    follower.update(frame)
                bar.advance(task)
                yield frame

        motion = engine.driving_motion(counted(), str(driving.path))
    try:
        track = follower.track(str(driving.path)) if follower is not None else None
    except NoFaceError:
        if not getattr(engine, "face_optional", False):
            raise
        log.warning("%s: no face found by the face layer; animating every frame", driving.path)
        track = None
    if track is not None and hasattr(engine, "set_driver_landmarks"):
        engine.set_driver_landmarks(track.points, track.found)
    found = track.found if track is not None else motion.found
    if found is None:
        found = np.ones(len(motion), bool)
    return Motion(motion.points, motion.jacobians, np.asarray(found, bool)), track


def _side_by_side(frames: Iterator[np.ndarray], source: np.ndarray, driving: Driving) -> Iterator[np.ndarray]:
    import cv2

    def fit(im: np.ndarray, h: int) -> np.ndarray:
        w = max(2, int(round(im.shape[1] * h / im.shape[0])))
        return cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)

    for result, drv in zip(frames, driving.frames(), strict=False):
        h = result.shape[0]
        yield np.concatenate([fit(source, h), fit(drv, h), result], axis=1)


def _write(out: Path, frames: Iterator[np.ndarray], driving: Driving, total: int) -> tuple[int, tuple[int, ...]]:
    from faceexpr_cli.media import write_image
    from faceexpr_cli.media.writer import write_timed

    if driving.is_image:
        frame = next(iter(frames))
        write_image(out, frame)
        return 1, frame.shape
    from faceexpr_cli.media.timeline import frame_times

    if getattr(driving, "motion", None) is not None:  # a template: its own constant rate
        times, end = np.arange(total) / driving.fps, total / driving.fps
    else:  # the result plays on the driver's own clock: each frame at its driving frame's time (VFR video too)
        table = frame_times(driving.path)
        times, end = table.times[:total], table.span_end(0, min(total, len(table)))
    return write_timed(out, frames, times, end, driving.fps, audio=driving.path if driving.has_audio else None,
                       label="render")
