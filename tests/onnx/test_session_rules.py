"""The session factory's rules with faked provider lists (no GPU here): device parsing, exact provider options,
session options, the fall-back checks for each device kind, and the exact messages users see."""

from __future__ import annotations

import logging
import os
import types

import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from faceexpr_cli.errors import UsageError
from faceexpr_cli.onnx.session import (
    CPU,
    CUDA,
    TENSORRT,
    GraphLoadError,
    ProviderFallbackError,
    SessionConfig,
    check_providers,
    create_session,
    default_threads,
    ensure_available,
    parse_device,
    provider_chain,
    session_options,
)


@pytest.fixture
def graph_bytes() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    m = helper.make_model(helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "neg", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    return m.SerializeToString()


@pytest.fixture
def fx_log(caplog):
    log = logging.getLogger("fx")
    log.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="fx")
    yield caplog
    log.removeHandler(caplog.handler)


def test_parse_device():
    assert parse_device("cpu") == ("cpu", 0)
    assert parse_device("") == ("cpu", 0) and parse_device(None) == ("cpu", 0)
    assert parse_device(" CUDA:2 ") == ("cuda", 2)
    assert parse_device("tensorrt:10") == ("tensorrt", 10)
    assert parse_device("auto") == ("auto", 0)
    for bad in ("gpu", "cuda:x", "cuda:-1", "cpu:1.5"):
        with pytest.raises(UsageError, match=f"unknown ONNX Runtime device '{bad}'") as info:
            parse_device(bad)
        assert info.value.hint == "one of: cpu, cuda, tensorrt, auto (cuda:N too)"


def test_session_config_defaults():
    cfg = SessionConfig()
    assert (cfg.device, cfg.allow_cpu_fallback, cfg.intra_op_threads, cfg.inter_op_threads) == ("cpu", False, 0, 0)
    assert (cfg.optimization, cfg.cudnn_algo_search, cfg.trt_fp16, cfg.trt_cache_dir) == ("all", "EXHAUSTIVE", True,
                                                                                           None)
    assert cfg.log_severity == 3 and cfg.extra_session_entries == {}
    assert SessionConfig(device="cuda:3").kind() == "cuda" and cfg.kind() == "cpu"


def test_cuda_chain_has_the_exact_cuda_options():
    assert provider_chain(SessionConfig(device="cuda:1")) == [
        (CUDA, {"device_id": 1, "cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True}),
        (CPU, {})]


def test_tensorrt_chain_defaults_to_the_cache_under_fx_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FX_HOME", str(tmp_path))
    chain = provider_chain(SessionConfig(device="tensorrt", trt_fp16=False))
    cache = str(tmp_path / "trt-cache")
    assert chain[0] == (TENSORRT, {"device_id": 0, "trt_fp16_enable": False, "trt_engine_cache_enable": True,
                                   "trt_engine_cache_path": cache, "trt_timing_cache_enable": True,
                                   "trt_timing_cache_path": cache})
    assert [n for n, _ in chain] == [TENSORRT, CUDA, CPU] and chain[1][1]["device_id"] == 0 and chain[2] == (CPU, {})


def test_auto_keeps_the_device_index(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    assert provider_chain(SessionConfig(device="auto:2"))[0] == (CUDA, {
        "device_id": 2, "cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True})


def test_session_options():
    so = session_options(SessionConfig())
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.log_severity_level == 3
    assert so.intra_op_num_threads == 0 and so.inter_op_num_threads == 0  # 0: left to ONNX Runtime
    levels = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}
    for name, level in levels.items():
        assert session_options(SessionConfig(optimization=name)).graph_optimization_level == getattr(
            ort.GraphOptimizationLevel, level)
    so = session_options(SessionConfig(intra_op_threads=2, log_severity=1,
                                       extra_session_entries={"session.use_env_allocators": "1"}))
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 0 and so.log_severity_level == 1
    assert so.get_session_config_entry("session.use_env_allocators") == "1"
    with pytest.raises(UsageError, match="unknown graph optimisation level 'max'") as info:
        session_options(SessionConfig(optimization="max"))
    assert info.value.hint == "one of: disable, basic, extended, all"


def test_create_session_from_bytes_with_overrides_over_a_config(graph_bytes):
    import numpy as np

    sess = create_session(graph_bytes, SessionConfig(device="cuda"), device="cpu", intra_op_threads=1)
    assert sess.get_providers() == [CPU]
    assert sess.run(None, {"x": np.array([2.0], np.float32)})[0].tolist() == [-2.0]
    with pytest.raises(GraphLoadError, match=r"^graph: ONNX Runtime cannot load the graph \(") as info:
        create_session(b"not a graph")
    assert info.value.hint == "re-export it with `fx export-onnx`, or upgrade onnxruntime"


def test_tensorrt_makes_its_engine_cache_folder_before_the_session(graph_bytes, tmp_path, cpu_only_ort):
    cache = tmp_path / "a" / "b"
    with pytest.raises(ProviderFallbackError):
        create_session(graph_bytes, SessionConfig(device="tensorrt", trt_cache_dir=cache))
    assert cache.is_dir()
    assert not (tmp_path / "cuda").exists()
    create_session(graph_bytes, SessionConfig(device="cuda", allow_cpu_fallback=True, trt_cache_dir=tmp_path / "cuda"))
    assert not (tmp_path / "cuda").exists()  # only TensorRT has an engine cache


def _session(*got):
    return types.SimpleNamespace(get_providers=lambda: list(got))


def test_check_providers_for_each_kind(monkeypatch, fx_log):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    assert check_providers(_session(CUDA, CPU), SessionConfig(device="cuda")) == [CUDA, CPU]
    assert check_providers(_session(TENSORRT, CUDA, CPU), SessionConfig(device="tensorrt:1")) == [TENSORRT, CUDA, CPU]
    with pytest.raises(ProviderFallbackError) as info:  # TensorRT asked, CUDA is not enough
        check_providers(_session(CUDA, CPU), SessionConfig(device="tensorrt"))
    assert info.value.asked == "tensorrt" and info.value.got == [CUDA, CPU]
    assert check_providers(_session(CPU), SessionConfig(device="cpu")) == [CPU]
    assert fx_log.text == ""
    assert check_providers(_session(CPU), SessionConfig(device="auto")) == [CPU]
    assert "ONNX Runtime: a CUDA provider is installed but the session runs on CPUExecutionProvider" in fx_log.text
    fx_log.clear()
    assert check_providers(_session(CUDA, CPU), SessionConfig(device="auto")) == [CUDA, CPU]
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    assert check_providers(_session(CPU), SessionConfig(device="auto")) == [CPU]
    assert fx_log.text == ""  # nothing installed, nothing to warn about
    check_providers(_session(CPU), SessionConfig(device="tensorrt", allow_cpu_fallback=True))
    assert "ONNX Runtime: 'tensorrt' asked for, running on CPUExecutionProvider (fall-back allowed)" in fx_log.text


def test_fallback_messages_name_the_provider_and_the_cause():
    trt = ProviderFallbackError("tensorrt", [CPU], [TENSORRT, CUDA, CPU])
    assert trt.message == (f"ONNX Runtime fell back to {CPU} although 'tensorrt' was asked for: {TENSORRT} is "
                           "installed but failed to load (CUDA/cuDNN/TensorRT libraries missing or not on the "
                           "library path?)")
    cuda = ProviderFallbackError("cuda", [CPU, "X"], [CUDA, CPU])
    assert cuda.message.endswith(f"{CUDA} is installed but failed to load (CUDA/cuDNN libraries missing or not on "
                                 "the library path?)")
    assert cuda.message.startswith(f"ONNX Runtime fell back to {CPU}, X although 'cuda' was asked for")
    none = ProviderFallbackError("tensorrt", [CPU], [CUDA, CPU])
    assert none.message.endswith(f"this onnxruntime build has no {TENSORRT} (available: {CUDA}, {CPU})")
    assert cuda.hint == ("install onnxruntime-gpu last (pip install --force-reinstall --no-deps onnxruntime-gpu) with "
                         "CUDA 12/13 and cuDNN 9, or pass --allow-cpu-fallback / --device cpu")


def test_ensure_available(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    ensure_available(SessionConfig(device="cuda:1"))
    with pytest.raises(ProviderFallbackError) as info:
        ensure_available(SessionConfig(device="tensorrt"))
    assert info.value.asked == "tensorrt" and info.value.got == [CPU]
    assert f"{TENSORRT}" in info.value.message and "(available: " in info.value.message
    ensure_available(SessionConfig(device="tensorrt", allow_cpu_fallback=True))
    ensure_available(SessionConfig(device="auto"))
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider"])
    with pytest.raises(ProviderFallbackError) as info:  # no CPU in the list: what there is
        ensure_available(SessionConfig(device="cuda"))
    assert info.value.got == ["AzureExecutionProvider"]
    ensure_available(SessionConfig(device="cpu"))


def test_default_threads_are_the_cores_this_process_may_use():
    assert default_threads() == len(os.sched_getaffinity(0)) >= 1
