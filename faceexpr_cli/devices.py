"""``--device`` values, checked once before any work.

``cpu``, ``cuda``, ``cuda:N`` and ``auto`` for PyTorch; ONNX Runtime also takes ``tensorrt`` and ``tensorrt:N``.
A misspelt name (``banana``) or a GPU index this machine does not have (``cuda:99``) is a usage error (exit 2)
naming the flag. A well-formed ``cuda`` on a machine without CUDA is left to the backend: PyTorch refuses it here
with one line (exit 1), ONNX Runtime's session factory refuses it or falls back to CPU (``--allow-cpu-fallback``).
The count of devices comes from ``torch.cuda.device_count()``, read at call time (tests fake it).
"""

from __future__ import annotations

from faceexpr_cli.errors import DependencyError, UsageError

KINDS = {"torch": ("cpu", "cuda", "auto"), "onnx": ("cpu", "cuda", "tensorrt", "auto")}
GPU_KINDS = ("cuda", "tensorrt")


def cuda_device_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - a broken CUDA install counts as no device
        return 0


def parse_device(value: str | None, flag: str = "--device", backend: str = "torch") -> tuple[str, int | None]:
    """``'cuda:1'`` -> ``('cuda', 1)``, ``'cpu'`` -> ``('cpu', None)``; syntax only (no device is counted)."""
    kinds = KINDS.get(backend, KINDS["torch"])
    text = "cpu" if value is None else str(value).strip().lower()
    name, colon, index = text.partition(":")
    choices = ", ".join(k + (f", {k}:N" if k in GPU_KINDS else "") for k in kinds)
    if name not in kinds or (colon and (name not in GPU_KINDS or not index.isdigit())):
        raise UsageError(f"{flag} {value!r}: unknown device", f"one of: {choices}")
    return name, int(index) if colon else None


def check_device(value: str | None, flag: str = "--device", backend: str = "torch") -> str:
    """The device string to use (``auto`` resolved for PyTorch), or a one-line error naming ``flag``."""
    name, index = parse_device(value, flag, backend)
    if name not in GPU_KINDS and name != "auto":
        return name
    count = cuda_device_count()
    if index is not None and index >= max(count, 1):
        have = f"this machine has {count} (cuda:0..cuda:{count - 1})" if count else "this machine has none"
        raise UsageError(f"{flag} {value}: no such CUDA device ({have})",
                         "pick an index below the count, or use --device cpu")
    if backend == "torch":
        if name == "auto":
            return "cuda" if count else "cpu"
        if not count:
            raise DependencyError(f"{flag} {value}: PyTorch sees no CUDA device on this machine",
                                  "use --device cpu (or auto), or install a CUDA build of PyTorch")
    return name if index is None else f"{name}:{index}"
