"""Single-video prediction (what MAE-DFER users asked for): a video or a frame folder in, the label and the class
probabilities out, with PyTorch or ONNX Runtime. A video that is not a face crop is cropped first by fx's face
layer: the largest face, detected every few frames, one square box per frame (interpolated between detections,
side = the median box side x ``scale``), so the model sees what its training clips showed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.console import log
from faceexpr_cli.dfer.annotations import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from faceexpr_cli.dfer.clips import decode_video, frame_files, read_images, resize_short
from faceexpr_cli.dfer.evaluate import ViewRunner, clip_probabilities, torch_runner
from faceexpr_cli.dfer.models import ROLE, load_classifier
from faceexpr_cli.dfer.sampling import Sampling
from faceexpr_cli.errors import CheckpointError, DataError, MissingFileError, UsageError

CROP_MODES = ("auto", "always", "never")


@dataclass
class Prediction:
    path: str
    label: str
    probabilities: dict[str, float]
    faces: int  # frames in which a face was found (0: used as a face crop as it is)
    cropped: bool

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label, "probabilities": self.probabilities,
                "faces": self.faces, "cropped": self.cropped}


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Videos and frame folders: a folder of images is one clip, any other folder contributes its videos."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise MissingFileError(p, "video or frame folder")
        if p.is_dir():
            if any(c.suffix.lower() in IMAGE_SUFFIXES for c in p.iterdir()):
                out.append(p)
            else:
                vids = sorted(c for c in p.rglob("*") if c.suffix.lower() in VIDEO_SUFFIXES)
                if not vids:
                    raise DataError(f"{p}: no videos or frame images inside")
                out += vids
        else:
            out.append(p)
    return out


def _face_boxes(frames: np.ndarray, backend, every: int) -> tuple[np.ndarray | None, int]:
    """(T, 4) boxes of the largest face (interpolated between detections), and the frames it was found in."""
    idx = list(range(0, len(frames), every))
    if idx[-1] != len(frames) - 1:
        idx.append(len(frames) - 1)
    found_t, found = [], []
    for i in idx:
        faces = backend.detect(frames[i], keypoints=False)
        if faces:
            best = max(faces, key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
            found_t.append(i)
            found.append(best.bbox)
    if not found:
        return None, 0
    boxes = np.asarray(found, dtype=np.float64)
    t = np.arange(len(frames))
    out = np.stack([np.interp(t, found_t, boxes[:, k]) for k in range(4)], axis=1)
    return out, len(found)


def crop_clip(frames: np.ndarray, backend, scale: float = 1.4, every: int = 4,
              mode: str = "auto", name: str = "clip") -> tuple[np.ndarray, int, bool]:
    """Face crops (T, S, S, 3) of a clip, the frames with a face, and whether it was cropped at all."""
    if mode == "never":
        return frames, 0, False
    boxes, hits = _face_boxes(frames, backend, every)
    h, w = frames.shape[1:3]
    if boxes is None:
        if mode == "auto":
            log.info("%s: no face detected; used as a face crop as it is", name)
            return frames, 0, False
        raise DataError(f"{name}: no face found in any sampled frame", "check that the video shows a face")
    side_ratio = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]))) / min(h, w)
    if mode == "auto" and side_ratio >= 0.5:
        return frames, hits, False  # the face already fills the frame: a crop
    side = max(8, int(round(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])) * scale)))
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    crops = np.empty((len(frames), side, side, 3), np.uint8)
    for i, f in enumerate(frames):
        ys = np.clip(np.arange(side) + int(round(cy[i] - side / 2)), 0, h - 1)
        xs = np.clip(np.arange(side) + int(round(cx[i] - side / 2)), 0, w - 1)
        crops[i] = f[ys[:, None], xs[None, :]]
    return crops, hits, True


def read_clip(path: Path) -> np.ndarray:
    return read_images(frame_files(path)) if path.is_dir() else decode_video(path)


def onnx_runner(graph: Path, device: str = "cpu", batch: int = 16) -> ViewRunner:
    from faceexpr_cli.onnx.session import SessionConfig, create_session

    session = create_session(graph, SessionConfig(device=device))

    def run(views: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(["probabilities"], {"video": views[i:i + batch]})[0]
                               for i in range(0, len(views), batch)])

    return run


def export_dir(source: Path) -> Path | None:
    """``source`` itself when it is an export (``classifier.onnx`` + ``card.yaml``), else its ``export/``."""
    for d in (source, source / "export"):
        if (d / f"{ROLE}.onnx").is_file() and (d / "card.yaml").is_file():
            return d
    return None


def export_classifier(source: str | Path, out: str | Path | None = None) -> Path:
    """Export a run's classifier to ONNX with parity checks (dynamic batch) into ``out`` (default RUN/export)."""
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    clf = load_classifier(source)
    if clf.card.preset.get("num_regression"):
        raise UsageError("ONNX export of a classifier with regression outputs is not supported",
                         "use --backend torch")
    run_dir = Path(source) if Path(source).is_dir() else clf.source.parent
    target = Path(out) if out else run_dir / "export"
    opts = ExportOptions(simplify=False, sample_check=True, latency_runs=3)
    export_models([ModelSource(clf.card, model=clf.module)], target, opts, source_label=str(clf.source))
    return target


def _onnx_model(source: Path) -> tuple[Path, list[str], dict]:
    import yaml

    found = export_dir(source)
    if found is None:
        if not source.is_dir() or not (source / "labels.json").is_file() and not (source / "best").is_dir():
            raise CheckpointError(f"{source}: no {ROLE}.onnx with its card.yaml, and not a fine-tuning run",
                                  "pass an export folder or a run (exported on first use)")
        log.info("exporting %s to ONNX (once, into %s)", source, source / "export")
        found = export_classifier(source)
    card = yaml.safe_load((found / "card.yaml").read_text(encoding="utf-8"))
    preset = card.get("preset", {})
    if "labels" not in preset:
        raise CheckpointError(f"{found / 'card.yaml'}: no labels in the card (not an fx finetune-dfer export)")
    return found / f"{ROLE}.onnx", list(preset["labels"]), preset


def load_predictor(model: str | Path, backend: str = "torch", device: str = "cpu"):
    """(view runner, classes, sampling) for a run, a checkpoint file or an export folder."""
    source = Path(model)
    if not source.exists():
        raise MissingFileError(source, "model (a run, a classifier.safetensors or an export folder)")
    if backend == "onnx":
        graph, classes, preset = _onnx_model(source)
        return onnx_runner(graph, device), classes, _sampling(preset)
    if backend != "torch":
        raise UsageError(f"--backend {backend!r}: unknown backend", "torch or onnx")
    clf = load_classifier(source, device)
    return torch_runner(clf.module, device), clf.classes, _sampling(clf.card.preset)


def _sampling(preset: dict) -> Sampling:
    s = preset.get("sampling") or {}
    return Sampling(int(preset["image_size"]), int(preset["frames"]), int(s.get("stride", 4)),
                    int(s.get("temporal_views", 2)), int(s.get("spatial_views", 2)))


def predict(inputs: list[str | Path], model: str | Path, *, backend: str = "torch", device: str = "cpu",
            crop: str = "auto", face_backend: str = "default", on_item=None) -> list[Prediction]:
    from faceexpr_cli.face import get_backend

    if crop not in CROP_MODES:
        raise UsageError(f"--crop {crop!r}: unknown mode", f"one of: {', '.join(CROP_MODES)}")
    paths = expand_inputs(inputs)
    run, classes, sampling = load_predictor(model, backend, device)
    faces = get_backend(face_backend) if crop != "never" else None
    out = []
    for path in paths:
        frames = read_clip(path)
        frames, hits, cropped = crop_clip(frames, faces, mode=crop, name=str(path))
        probs = clip_probabilities(resize_short(frames, sampling.size), sampling, run)
        k = int(probs.argmax())
        out.append(Prediction(str(path), classes[k], {c: round(float(p), 6) for c, p in zip(classes, probs,
                                                                                            strict=True)},
                              hits, cropped))
        if on_item:
            on_item()
    return out


def to_json(preds: list[Prediction]) -> str:
    return json.dumps([p.as_dict() for p in preds], indent=1)
