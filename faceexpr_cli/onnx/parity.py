"""Comparing ONNX Runtime with PyTorch, and timing both.

An output passes when every element satisfies ``|ort - torch| <= atol + rtol * |torch|`` (numpy's ``allclose``
rule); the report gives the largest absolute and relative differences so a near miss is visible before it fails.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class OutputDiff:
    name: str
    shape: list[int]
    max_abs: float
    max_rel: float
    worst_excess: float  # max of |d| - (atol + rtol |ref|); > 0 fails
    ok: bool


@dataclass
class ParityCheck:
    check: str  # random | sample | batch-1 | batch-3 | fp16-...
    batch: int
    atol: float
    rtol: float
    inputs_from: dict[str, str] = field(default_factory=dict)
    outputs: list[OutputDiff] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)

    def worst(self) -> OutputDiff | None:
        bad = [o for o in self.outputs if not o.ok] or self.outputs
        return max(bad, key=lambda o: o.worst_excess) if bad else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def compare(reference: dict[str, np.ndarray], got: dict[str, np.ndarray], atol: float, rtol: float) -> list[OutputDiff]:
    diffs = []
    for name, ref in reference.items():
        ref = np.asarray(ref, dtype=np.float64)
        out = np.asarray(got[name], dtype=np.float64)
        if ref.shape != out.shape:
            diffs.append(OutputDiff(name, list(out.shape), float("inf"), float("inf"), float("inf"), False))
            continue
        if ref.size == 0:
            diffs.append(OutputDiff(name, list(ref.shape), 0.0, 0.0, 0.0, True))
            continue
        d = np.abs(out - ref)
        finite = bool(np.isfinite(out).all() and np.isfinite(ref).all())  # numpy bools go to JSON as "False"
        excess = float(np.max(d - (atol + rtol * np.abs(ref)))) if finite else float("inf")
        rel = float(np.max(d / (np.abs(ref) + 1e-6))) if finite else float("inf")
        diffs.append(OutputDiff(name, list(ref.shape), float(np.max(d)) if finite else float("inf"), rel,
                                excess, finite and excess <= 0.0))
    return diffs


def to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def time_call(fn: Callable[[], Any], runs: int = 10, warmup: int = 2, budget_s: float = 20.0) -> dict[str, float]:
    """Median and best wall time of ``fn`` in milliseconds; stops early once ``budget_s`` is spent."""
    for _ in range(min(warmup, max(1, runs - 1))):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
        if time.perf_counter() - start > budget_s:
            break
    return {"median_ms": round(statistics.median(times), 3), "best_ms": round(min(times), 3), "runs": len(times)}
