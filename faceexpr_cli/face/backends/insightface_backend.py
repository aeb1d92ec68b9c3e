"""insightface: SCRFD detection, 68/106-point landmarks and ArcFace embeddings from a local model directory.

No model ships in any package and insightface's own loader downloads at first use, which fails offline with a
``requests`` traceback. So fx never lets it look for models: it lists the ``.onnx`` files of a directory the
user provides (e.g. an unpacked ``buffalo_l.zip``) and hands each to ``model_zoo.get_model(path)``, whose
router tells detector, landmark and recognition models apart by their input/output contracts. A missing
directory is one clear line that says where to put the files. Licence: the buffalo models are for
non-commercial research only (see the model card).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from faceexpr_cli.errors import DependencyError, MediaError, UsageError, WeightsNotFoundError
from faceexpr_cli.face.backend import BACKENDS, FaceBackend, check_option
from faceexpr_cli.face.types import Face

CARD = "face-insightface-buffalo_l"


def default_model_dirs(pack: str = "buffalo_l") -> list[Path]:
    """Where fx looks for a model pack, in order: the fx weights cache, then insightface's own cache."""
    from faceexpr_cli.paths import weights_dir

    return [weights_dir() / CARD / pack, Path(os.path.expanduser("~/.insightface/models")) / pack]


def resolve_model_dir(model_dir: str | Path | None, pack: str = "buffalo_l") -> Path:
    """The directory holding the pack's ``.onnx`` files; a ``.zip`` next to it is unpacked once."""
    candidates = [Path(model_dir).expanduser()] if model_dir else default_model_dirs(pack)
    for d in candidates:
        archive = d if d.suffix == ".zip" else d.with_suffix(".zip")
        target = d.with_suffix("") if d.suffix == ".zip" else d
        if not target.is_dir() and archive.is_file():
            _unpack(archive, target)
        if target.is_dir() and any(target.rglob("*.onnx")):
            return target
    where = candidates[0]
    fetch = f"run `fx download weights {CARD}` or put" if not model_dir else "put"
    raise WeightsNotFoundError(
        f"insightface models not found in {where}",
        f"{fetch} the {pack} .onnx files (unpacked {pack}.zip) in {where}, or pass --face-opt model_dir=DIR; "
        "fx never lets insightface download")


def _unpack(archive: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.part")
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
    except zipfile.BadZipFile as exc:
        raise MediaError(archive, "is not a valid zip archive", "download it again") from exc
    inner = [p for p in tmp.iterdir() if p.is_dir()]
    src = inner[0] if len(inner) == 1 and not any(tmp.glob("*.onnx")) else tmp
    src.replace(target)
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _to_if_face(face: Face):
    from insightface.app.common import Face as IFFace

    return IFFace(bbox=face.bbox.astype(np.float32), kps=face.kps5, det_score=face.score)


@BACKENDS.register("insightface")
class InsightFaceBackend(FaceBackend):
    """``model_dir``: a directory of insightface ONNX models (default: the fx cache, then ~/.insightface);
    ``det_size``: the SCRFD input size (square); ``providers``: ONNX Runtime providers."""

    name = "insightface"
    card = CARD
    embedding_dim: ClassVar[int | None] = 512
    same_person_similarity: ClassVar[float] = 0.3  # ArcFace cosine; insightface's own examples use 0.2-0.4
    has_landmarks = True

    def __init__(self, *, model_dir: str | Path | None = None, pack: str = "buffalo_l", det_size: int = 640,
                 det_thresh: float = 0.5, providers: list[str] | None = None, **opts: Any):
        super().__init__(**opts)
        self.model_dir = model_dir
        self.pack = pack
        self.det_size = check_option(self.name, "det_size", det_size, integer=True, minimum=32, maximum=4096,
                                     hint="a multiple of 32, e.g. 640")
        if self.det_size % 32:
            raise UsageError(f"--face-opt det_size must be a multiple of 32, got {det_size}", "e.g. 640")
        self.det_thresh = float(check_option(self.name, "det_thresh", det_thresh, minimum=0, maximum=1))
        self.providers = providers or ["CPUExecutionProvider"]
        self._models: dict[str, Any] | None = None

    def models(self) -> dict[str, Any]:
        """Load every model of the directory once, keyed by role: detection, landmark_3d_68, landmark_2d_106,
        recognition (others, e.g. gender/age, are kept under their own task names)."""
        if self._models is not None:
            return self._models
        root = resolve_model_dir(self.model_dir, self.pack)
        try:
            from insightface.model_zoo import model_zoo
        except ImportError as exc:
            raise DependencyError("the insightface backend needs the insightface package",
                                  "pip install insightface onnxruntime") from exc
        found: dict[str, Any] = {}
        for path in sorted(root.rglob("*.onnx")):
            try:
                model = model_zoo.get_model(str(path), providers=self.providers)
            except Exception as exc:  # a broken file is named, not a traceback from deep inside onnx
                raise MediaError(path, f"insightface cannot load this model ({type(exc).__name__}: {exc})",
                                 "replace the file") from exc
            if model is None:
                continue
            task = getattr(model, "taskname", "")
            found.setdefault(task, model)
        if "detection" not in found:
            raise WeightsNotFoundError(f"no face detector (SCRFD .onnx) in {root}",
                                       f"add the {self.pack} detector (e.g. det_10g.onnx) to {root}")
        found["detection"].prepare(-1, input_size=(self.det_size, self.det_size), det_thresh=self.det_thresh)
        for task, model in found.items():
            if task != "detection":
                model.prepare(-1)
        self._models = found
        return found

    def prepare(self) -> InsightFaceBackend:
        self.models()
        return self

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self._models is not None:
            d["models"] = {k: Path(getattr(m, "model_file", "")).name for k, m in self._models.items()}
        return d

    def _detect(self, image: np.ndarray, *, keypoints: bool) -> list[Face]:
        det = self.models()["detection"]
        bgr = np.ascontiguousarray(image[..., ::-1])
        boxes, kpss = det.detect(bgr, input_size=(self.det_size, self.det_size))
        faces = []
        for i, row in enumerate(np.asarray(boxes).reshape(-1, 5)):
            kps = kpss[i] if kpss is not None else None  # SCRFD's key points come free: always keep them
            faces.append(Face(row[:4], float(row[4]), kps5=kps))
        return faces

    def _landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        models = self.models()
        lm68, lm106 = models.get("landmark_3d_68"), models.get("landmark_2d_106")
        if lm68 is None and lm106 is None:
            return super()._landmarks(image, faces)
        bgr = np.ascontiguousarray(image[..., ::-1])
        for face in faces:
            iff = _to_if_face(face)
            if lm106 is not None:
                face.extra["landmarks106"] = np.asarray(lm106.get(bgr, iff), dtype=np.float32)[:, :2]
            if lm68 is not None:
                face.landmarks68 = np.asarray(lm68.get(bgr, iff), dtype=np.float32)[:, :2]
                if iff.pose is not None:
                    face.extra["pose"] = np.asarray(iff.pose, dtype=np.float32)  # pitch, yaw, roll
                if face.kps5 is None:
                    face.__post_init__()
        return faces

    def _embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        rec = self.models().get("recognition")
        if rec is None:
            return super()._embed(image, faces)
        bgr = np.ascontiguousarray(image[..., ::-1])
        for face in faces:
            if face.kps5 is None:
                self._landmarks(image, [face])
            if face.kps5 is None:
                raise WeightsNotFoundError("insightface embeddings need 5 key points",
                                           "use a detector with key points (SCRFD *_kps / det_10g)")
            vec = np.asarray(rec.get(bgr, _to_if_face(face)), dtype=np.float32).reshape(-1)
            norm = float(np.linalg.norm(vec))
            face.embedding = vec / max(norm, 1e-12)
            face.extra["embedding_norm"] = norm
        return faces
