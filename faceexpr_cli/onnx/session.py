"""The one ONNX Runtime session factory.

ONNX Runtime accepts a provider list and quietly drops the ones it cannot load: ask for CUDA on a CPU-only build (or
with a missing cuDNN) and the session runs on CPU with only a log line, the most common complaint about
insightface. Every session in fx comes from ``create_session``, which compares the providers the session really got
(``session.get_providers()``, not ``get_available_providers()``) with what was asked for and raises
``ProviderFallbackError`` unless the caller allowed the fall-back.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceexpr_cli.console import log
from faceexpr_cli.errors import DependencyError, FxError, UsageError

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
               "all": "ORT_ENABLE_ALL"}


class ProviderFallbackError(DependencyError):
    """A GPU provider was asked for and the session came up without it."""

    def __init__(self, asked: str, got: list[str], available: list[str]):
        wanted = TENSORRT if asked == "tensorrt" else CUDA
        if wanted in available:
            why = f"{wanted} is installed but failed to load (CUDA/cuDNN{'/TensorRT' if asked == 'tensorrt' else ''} " \
                  "libraries missing or not on the library path?)"
        else:
            why = f"this onnxruntime build has no {wanted} (available: {', '.join(available)})"
        super().__init__(
            f"ONNX Runtime fell back to {', '.join(got)} although '{asked}' was asked for: {why}",
            "install onnxruntime-gpu last (pip install --force-reinstall --no-deps onnxruntime-gpu) with CUDA 12/13 "
            "and cuDNN 9, or pass --allow-cpu-fallback / --device cpu",
        )
        self.asked = asked
        self.got = got


class GraphLoadError(FxError):
    """A graph file that ONNX Runtime cannot open (corrupt, or from a newer onnx/opset)."""


@dataclass
class SessionConfig:
    """How to open a session. ``device``: cpu, cuda, cuda:N, tensorrt, tensorrt:N or auto (best available)."""

    device: str = "cpu"
    allow_cpu_fallback: bool = False
    intra_op_threads: int = 0  # 0: ONNX Runtime's default (one per physical core)
    inter_op_threads: int = 0
    optimization: str = "all"  # disable | basic | extended | all
    cudnn_algo_search: str = "EXHAUSTIVE"  # EXHAUSTIVE | HEURISTIC | DEFAULT
    trt_fp16: bool = True
    trt_cache_dir: str | Path | None = None  # engines and timing cache; default <FX_HOME>/trt-cache
    log_severity: int = 3  # ORT's own log: 0 verbose .. 4 fatal; 3 keeps its fall-back chatter quiet
    extra_session_entries: dict[str, str] = field(default_factory=dict)

    def kind(self) -> str:
        return parse_device(self.device)[0]


def parse_device(device: str) -> tuple[str, int]:
    """'cuda:1' -> ('cuda', 1). Unknown names are a usage error naming the choices."""
    name, _, index = (device or "cpu").strip().lower().partition(":")
    if name not in DEVICES or (index and not index.isdigit()):
        raise UsageError(f"unknown ONNX Runtime device '{device}'", f"one of: {', '.join(DEVICES)} (cuda:N too)")
    return name, int(index or 0)


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def provider_chain(cfg: SessionConfig) -> list[tuple[str, dict[str, Any]]]:
    """Providers and their options in priority order for a config; CPU always closes the chain."""
    kind, index = parse_device(cfg.device)
    if kind == "auto":
        avail = available_providers()
        kind = "tensorrt" if TENSORRT in avail else "cuda" if CUDA in avail else "cpu"
    cuda_opts: dict[str, Any] = {"device_id": index, "cudnn_conv_algo_search": cfg.cudnn_algo_search,
                                 "do_copy_in_default_stream": True}
    chain: list[tuple[str, dict[str, Any]]] = []
    if kind == "tensorrt":
        cache = Path(cfg.trt_cache_dir) if cfg.trt_cache_dir else _default_trt_cache()
        chain.append((TENSORRT, {
            "device_id": index,
            "trt_fp16_enable": cfg.trt_fp16,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
        }))
    if kind in ("tensorrt", "cuda"):
        chain.append((CUDA, cuda_opts))
    chain.append((CPU, {}))
    return chain


def _default_trt_cache() -> Path:
    from faceexpr_cli.paths import fx_home

    return fx_home() / "trt-cache"


def session_options(cfg: SessionConfig):
    import onnxruntime as ort

    if cfg.optimization not in _OPT_LEVELS:
        raise UsageError(f"unknown graph optimisation level '{cfg.optimization}'", f"one of: {', '.join(_OPT_LEVELS)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT_LEVELS[cfg.optimization])
    so.log_severity_level = cfg.log_severity
    if cfg.intra_op_threads:
        so.intra_op_num_threads = cfg.intra_op_threads
    if cfg.inter_op_threads:
        so.inter_op_num_threads = cfg.inter_op_threads
    for key, value in cfg.extra_session_entries.items():
        so.add_session_config_entry(key, value)
    return so


def create_session(model: str | Path | bytes, cfg: SessionConfig | None = None, **overrides: Any):
    """Open an ``InferenceSession`` on ``model`` (a path, or serialized bytes) and check its providers.

    ``overrides`` are ``SessionConfig`` fields, e.g. ``create_session(path, device="cuda", intra_op_threads=2)``.
    """
    import onnxruntime as ort

    cfg = cfg or SessionConfig()
    if overrides:
        cfg = SessionConfig(**{**cfg.__dict__, **overrides})
    chain = provider_chain(cfg)
    if chain[0][0] == TENSORRT:
        Path(chain[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    source = str(model) if isinstance(model, (str, Path)) else model
    if isinstance(model, (str, Path)) and not Path(model).is_file():
        from faceexpr_cli.errors import MissingFileError

        raise MissingFileError(model, "ONNX graph")
    try:
        with warnings.catch_warnings():  # ORT's "not in available provider names": check_providers says it better
            warnings.filterwarnings("ignore", message=".*not in available provider names")
            session = ort.InferenceSession(source, sess_options=session_options(cfg),
                                           providers=[name for name, _ in chain],
                                           provider_options=[opts for _, opts in chain])
    except Exception as exc:  # onnxruntime raises its own pybind types for unreadable or unsupported graphs
        where = model if isinstance(model, (str, Path)) else "graph"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphLoadError(f"{where}: ONNX Runtime cannot load the graph ({first[:300]})",
                             "re-export it with `fx export-onnx`, or upgrade onnxruntime") from exc
    check_providers(session, cfg)
    return session


def check_providers(session: Any, cfg: SessionConfig) -> list[str]:
    """Raise when the first provider asked for is not among those the session got (unless fall-back allowed)."""
    kind, _ = parse_device(cfg.device)
    got = list(session.get_providers())
    if kind in ("cuda", "tensorrt"):
        wanted = TENSORRT if kind == "tensorrt" else CUDA
        if wanted not in got:
            if not cfg.allow_cpu_fallback:
                raise ProviderFallbackError(kind, got, available_providers())
            log.warning("ONNX Runtime: '%s' asked for, running on %s (fall-back allowed)", kind, ", ".join(got))
    elif kind == "auto" and (CUDA in available_providers()) and CUDA not in got:
        log.warning("ONNX Runtime: a CUDA provider is installed but the session runs on %s", ", ".join(got))
    return got


def ensure_available(cfg: SessionConfig) -> None:
    """Fail before expensive work (an on-the-fly export) when this onnxruntime build lacks the provider asked for.

    ``check_providers`` still checks every session: a provider that is installed can fail to load.
    """
    kind, _ = parse_device(cfg.device)
    if kind not in ("cuda", "tensorrt") or cfg.allow_cpu_fallback:
        return
    wanted = TENSORRT if kind == "tensorrt" else CUDA
    avail = available_providers()
    if wanted not in avail:
        raise ProviderFallbackError(kind, [p for p in avail if p == CPU] or avail, avail)


def default_threads() -> int:
    """Threads for benchmarks and exports: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
