"""The ``liveportrait`` engine: LivePortrait's implicit 3-D key points, warping and SPADE decoder, with stitching
and eye/lip retargeting, in torch or ONNX Runtime.

Per frame the motion extractor gives pose, expression, scale and translation (``animate.liveportrait_motion``
packs them into fx's ``Motion`` rows, so smoothing, references and missing-face policies apply); ``retarget``
maps them onto the source as LivePortrait does (``nn.liveportrait.camera.drive``), then adds retargeting deltas,
stitches and applies ``--driving-multiplier``; ``render`` warps the source's feature volume and decodes it.
Framing defaults (``--crop auto --paste-back``, crop 2.3x the face box, 512 px crop fed at 256 px) are the
engine's class attributes, which the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.animate.engines import ENGINES, Engine, EngineOptions, Motion, to_uint8
from faceexpr_cli.animate.liveportrait_motion import (
    eye_ratios,
    lip_ratio,
    load_template,
    pack,
    smooth_rows,
    unpack,
)
from faceexpr_cli.console import log
from faceexpr_cli.errors import UsageError

DRIVING_OPTIONS = ("pose-friendly", "expression-friendly")
PART_NAMES = ("appearance_feature_extractor", "motion_extractor", "warping_module", "spade_generator",
              "stitching", "retarget_eye", "retarget_lip")


def check_options(extra: dict[str, Any]) -> None:
    """The engine's own options (``EngineOptions.extra``), as usage errors before any work."""
    from faceexpr_cli.nn.liveportrait.camera import REGIONS
    from faceexpr_cli.safety import check_number

    if extra.get("driving_option", "pose-friendly") not in DRIVING_OPTIONS:
        raise UsageError(f"--driving-option {extra['driving_option']}: use {' or '.join(DRIVING_OPTIONS)}")
    if (extra.get("region") or "all") not in REGIONS:
        raise UsageError(f"--region {extra['region']}: use {', '.join(REGIONS)}")
    check_number(extra.get("driving_multiplier", 1.0), "--driving-multiplier", minimum=0, maximum=10)
    for flag in ("eye_retarget", "lip_retarget"):
        value = extra.get(flag)
        if value is None or value == "driver":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"--{flag.replace('_', '-')} {value}: give a ratio (e.g. 0.35) or 'driver'") from None
        check_number(number, f"--{flag.replace('_', '-')}", minimum=0, maximum=1.5)


@ENGINES.register("liveportrait")
class LivePortraitEngine(Engine):
    name = "liveportrait"
    size = 256
    device_backends = ("torch", "onnx")
    default_crop = "auto"  # the pipeline's defaults for this engine: LivePortrait's framing
    default_paste_back = True
    default_crop_increase = 0.65  # square side = (1 + 2 * 0.65) = 2.3 x the face box, LivePortrait's crop scale
    crop_size = 512  # crops are cut at 512 px (pasted back from the 512 px output) and fed at 256 px
    face_optional = True  # motion needs no face detector: a driver where none is found still animates
    source_video = True  # a source video is animated frame by frame (video-to-video)

    check_options = staticmethod(check_options)

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        import torch

        from faceexpr_cli.builders import build_model
        from faceexpr_cli.builders.liveportrait import card_for_config

        extra = options.extra
        check_options(extra)
        self.extra = extra
        self.card = card_for_config(options.config)
        self.model = build_model(self.card, tiny=options.tiny).eval()
        self.weights = self._load_weights(options.checkpoint)
        self.num_kp = self.model.num_kp
        self.crop_mode = extra.get("crop", "auto")
        given = extra.get("size")
        # --crop auto: 512 px crops fed at the card's size; --crop none: the image as it is, or --size
        self.size = int(given) if given else (None if self.crop_mode == "none" else self.crop_size)
        self.input_size = int(given) if given else (None if self.crop_mode == "none" else
                                                   int(self.card.arguments(tiny=options.tiny).get("size", 256)))
        self.device = torch.device(options.device if options.backend == "torch" else "cpu")
        self.model.to(self.device)
        self._onnx: dict[str, Any] | None = None
        self.stitch = bool(extra.get("stitching", True)) and self.model.has_retargeting
        for flag in ("eye_retarget", "lip_retarget"):
            if extra.get(flag) is not None and not self.model.has_retargeting:
                raise UsageError(f"--{flag.replace('_', '-')} needs stitching_retargeting_module.pth",
                                 "put the release's retargeting_models/ next to base_models/")
        self.feature = self.x_s = self.source_info = None
        self.source_frames: list[np.ndarray] | None = None  # video-to-video: the source's frames
        self._cursor = 0  # the next source frame render() uses (the pipeline renders in order)
        self.source_eyes: np.ndarray | None = None
        self.source_lip: float | None = None
        self.driver_eyes: np.ndarray | None = None
        self.driver_lips: np.ndarray | None = None

    # -- weights and backends ---------------------------------------------------------------------------
    def _load_weights(self, checkpoint: str | None) -> str:
        from faceexpr_cli.animate.liveportrait_weights import load_liveportrait
        from faceexpr_cli.weights import find_weights

        if checkpoint == "random":
            log.warning("liveportrait: random weights (--checkpoint random): the output shows the pipeline, "
                        "not a face")
            return "random"
        if checkpoint is None:  # the cache: every released file, each found (or explained) by the card
            from faceexpr_cli.animate.liveportrait_weights import pin_first_use
            from faceexpr_cli.config.cards import load_card

            base = load_card("liveportrait")
            paths = [find_weights(base, source=ws.name) for ws in base.weights]
            pin_first_use([p for p, ws in zip(paths, base.weights, strict=True) if not ws.sha256])
            folder = paths[0].parent
        else:
            folder = Path(checkpoint).expanduser()
            if folder.is_file():
                folder = folder.parent
        load_liveportrait(self.model, folder)
        if not self.model.has_retargeting:
            log.warning("liveportrait: no stitching_retargeting_module.pth in %s: stitching and retargeting off",
                        folder)
        return str(folder)

    def _open_onnx(self, size: int) -> None:
        from faceexpr_cli.builders.liveportrait import implied_sizes
        from faceexpr_cli.onnx.cache import cached_predictors
        from faceexpr_cli.onnx.export import ExportOptions, ModelSource
        from faceexpr_cli.onnx.session import SessionConfig

        args = self.card.arguments(tiny=self.options.tiny)
        sizes = implied_sizes(args, size)
        card = self.card.model_copy(update={"name": f"{self.card.name}@{size}", "tiny": {},
                                            "preset": {**args, **sizes},
                                            "input": self.card.input.model_copy(update={"size": size})})
        # the loaded model is exported as it is; the cache key is the card plus a fingerprint of its weights
        source = ModelSource(card, model=self.model.cpu(), weights=None, derive_shapes=True)
        session = SessionConfig(device=self.options.device, allow_cpu_fallback=self.options.allow_cpu_fallback)
        self._onnx, self.onnx_dir = cached_predictors(source, session, ExportOptions(latency_runs=1))

    def _run(self, part: str, *args):
        """One part in torch or ONNX Runtime: numpy in, a tuple of numpy arrays out."""
        if self._onnx is not None:
            pred = self._onnx[part]
            out = pred.run(dict(zip(pred.input_names, [np.ascontiguousarray(a, np.float32) for a in args],
                                    strict=True)))
            return tuple(out[n] for n in pred.output_names)
        import torch

        fn = self.model.motion if part == "motion_extractor" else getattr(self.model, part)
        with torch.no_grad():
            out = fn(*[torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device) for a in args])
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.cpu().numpy() for o in out)

    def _tensor(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, 3, h, w) float32 in [0, 1] at the engine's input size."""
        if self.input_size and images.shape[1:3] != (self.input_size, self.input_size):
            import cv2

            s = self.input_size
            images = np.stack([cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA if im.shape[0] > s
                                          else cv2.INTER_LINEAR) for im in images])
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0

    def motion_rows(self, images: np.ndarray) -> np.ndarray:
        from faceexpr_cli.nn.liveportrait.camera import FIELDS

        return pack(dict(zip(FIELDS, self._run("motion_extractor", self._tensor(images)), strict=True)))

    # -- the engine interface ----------------------------------------------------------------------------
    def set_source(self, image: np.ndarray, what: str) -> Motion:
        x = self._tensor(image[None])
        if self.options.backend == "onnx" and self._onnx is None:
            self._open_onnx(x.shape[-1])
        (self.feature,) = self._run("appearance_feature_extractor", x)
        rows = self.motion_rows(image[None])
        self.source_info = unpack(rows, self.num_kp)
        self.x_s = self._keypoints(self.source_info)
        if self.extra.get("eye_retarget") is not None or self.extra.get("lip_retarget") is not None:
            from faceexpr_cli.animate.landmarks import image_landmarks
            from faceexpr_cli.face import get_backend

            points = image_landmarks(get_backend(self.options.face_backend), image, what).landmarks68
            self.source_eyes, self.source_lip = eye_ratios(points), lip_ratio(points)
        return Motion(rows)

    def set_source_video(self, frames: list[np.ndarray], what: str) -> Motion:
        """Video-to-video: every source frame's motion (features are computed as frames are rendered). Frame i
        of the result animates source frame i; the result is as long as the shorter of source and driver."""
        motion = self.set_source(frames[0], what)
        if len(frames) == 1:
            return motion
        rows = self.driving_motion(iter(frames), what).points
        self.source_frames, self._cursor = list(frames), 0
        self.x_s = self._keypoints(unpack(rows, self.num_kp))
        if self.extra.get("region") is None:  # LivePortrait's default for video editing: the source keeps its pose
            self.extra["region"] = "exp"
        return Motion(rows)

    def driving_motion(self, frames: Iterable[np.ndarray], what: str) -> Motion:
        rows, batch = [], []
        for frame in frames:
            batch.append(frame)
            if len(batch) == max(1, self.options.batch):
                rows.append(self.motion_rows(np.stack(batch)))
                batch = []
        if batch:
            rows.append(self.motion_rows(np.stack(batch)))
        if not rows:
            raise UsageError(f"{what}: has no frames")
        return Motion(np.concatenate(rows))

    def load_motion(self, path: str | Path) -> tuple[Motion, float]:
        """A ``motion.npz`` template as the driving motion (and its fps); its ratios feed 'driver' retargeting."""
        data = load_template(path)
        if data["num_kp"] != self.num_kp:
            raise UsageError(f"{path}: {data['num_kp']} key points; this model has {self.num_kp}")
        self.driver_eyes = data["eye_ratio"].mean(axis=1) if "eye_ratio" in data else None
        self.driver_lips = data.get("lip_ratio")
        return Motion(data["rows"], None, np.asarray(data["found"], bool)), float(data["fps"])

    def set_driver_landmarks(self, points: np.ndarray, found: np.ndarray) -> None:
        """The driver's 68 landmarks per frame (the pipeline's face follower): ratios for 'driver' retargeting."""
        self.driver_eyes = np.array([eye_ratios(p).mean() for p in points], np.float32)
        self.driver_lips = np.array([lip_ratio(p) for p in points], np.float32)

    def smooth(self, motion: Motion, fps: float, cutoff: float) -> Motion:
        return smooth_rows(motion, fps, cutoff)

    def _keypoints(self, info: dict[str, np.ndarray]):
        import torch

        from faceexpr_cli.nn.liveportrait.camera import transform_keypoint

        return transform_keypoint({k: torch.from_numpy(v) for k, v in info.items()}).numpy()

    def _ratio_target(self, flag: str, count: int, start: int) -> np.ndarray | None:
        value = self.extra.get(flag)
        if value is None:
            return None
        if value != "driver":
            return np.full(count, float(value), np.float32)
        series = self.driver_eyes if flag == "eye_retarget" else self.driver_lips
        if series is None:
            raise UsageError(f"--{flag.replace('_', '-')} driver: the driver's landmarks are not known",
                             "drive with a video (or a template written with landmarks) or give a ratio")
        return np.asarray(series[start:start + count], np.float32)

    def retarget(self, source: Motion, driving: Motion, reference: Motion, relative: bool,
                 adapt_scale: bool) -> Motion:
        import torch

        from faceexpr_cli.animate.motion import hull_area
        from faceexpr_cli.nn.liveportrait.camera import drive, transform_keypoint

        def info(m: Motion) -> dict[str, torch.Tensor]:
            return {k: torch.from_numpy(v) for k, v in unpack(m.points, self.num_kp).items()}

        if len(source) > 1:  # video-to-video: frame i on source frame i, as long as the shorter of the two
            count = min(len(source), len(driving))
            source = Motion(source.points[:count])
            driving = Motion(driving.points[:count], None, None if driving.found is None else driving.found[:count])
        src, ref = info(source), info(reference)
        x_s = transform_keypoint(src)
        x_d = drive(src, info(driving), ref if relative else None, self.extra.get("region") or "all")
        if self.extra.get("driving_option") == "expression-friendly" or adapt_scale:
            # motion scaled by the face sizes of source and the driver's reference frame (its key points' hull)
            x_r = transform_keypoint(ref)
            a_s, a_r = hull_area(x_s[0, :, :2]), hull_area(x_r[0, :, :2])
            if a_s > 0 and a_r > 0:
                x_d = x_s + (x_d - x_s) * float(np.sqrt(a_s / a_r))
        count = len(x_d)
        xs = np.broadcast_to(x_s.numpy(), x_d.shape).copy()
        with torch.no_grad():
            for flag, part, own in (("eye_retarget", "retarget_eye", self.source_eyes),
                                    ("lip_retarget", "retarget_lip", self.source_lip)):
                target = self._ratio_target(flag, count, 0)
                if target is None:
                    continue
                ratios = np.concatenate([np.tile(np.atleast_1d(own).astype(np.float32), (count, 1)),
                                         target[:, None]], axis=1)
                (delta,) = self._run(part, xs, ratios)
                x_d = x_d + torch.from_numpy(delta)
        out = x_d.numpy()
        if self.stitch:
            (out,) = self._run("stitching", xs, out)
        multiplier = float(self.extra.get("driving_multiplier", 1.0))
        if multiplier != 1.0:
            out = xs + (out - xs) * multiplier
        return Motion(out.astype(np.float32), None, driving.found)

    def render(self, targets: Motion) -> np.ndarray:
        assert self.feature is not None and self.x_s is not None
        b = len(targets.points)
        if self.source_frames is not None:  # video-to-video: this batch's own source frames
            idx = [min(i, len(self.source_frames) - 1) for i in range(self._cursor, self._cursor + b)]
            self._cursor += b
            (feature,) = self._run("appearance_feature_extractor",
                                   self._tensor(np.stack([self.source_frames[i] for i in idx])))
            x_s = self.x_s[idx]
        else:
            feature, x_s = np.repeat(self.feature, b, 0), np.repeat(self.x_s, b, 0)
        warped, _, _ = self._run("warping_module", feature, x_s, targets.points)
        (image,) = self._run("spade_generator", warped)
        return to_uint8(image)

    def describe(self) -> dict:
        info = {**super().describe(), "card": self.card.name, "weights": self.weights,
                "input_size": self.input_size, "stitching": self.stitch,
                **{k: self.extra.get(k) for k in ("driving_option", "region", "driving_multiplier",
                                                  "eye_retarget", "lip_retarget") if k in self.extra}}
        if self._onnx is not None:
            first = self._onnx["warping_module"]
            info.update(onnx_graphs=str(self.onnx_dir), providers=getattr(first, "providers", None))
        return info
