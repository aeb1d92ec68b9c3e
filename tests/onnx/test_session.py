"""The session factory: real ONNX Runtime sessions, provider options, and no silent fall-back to CPU."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from faceexpr_cli.errors import DependencyError, UsageError
from faceexpr_cli.onnx.session import (
    CPU,
    CUDA,
    TENSORRT,
    GraphLoadError,
    ProviderFallbackError,
    SessionConfig,
    create_session,
    ensure_available,
    provider_chain,
    session_options,
)


@pytest.fixture
def graph(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("Add", ["x", "x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "double", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    path = tmp_path / "double.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_cpu_session_runs(graph):
    sess = create_session(graph, device="cpu", intra_op_threads=1)
    assert sess.get_providers() == [CPU]
    np.testing.assert_array_equal(sess.run(None, {"x": np.ones((2, 3), np.float32)})[0], 2.0)


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this check needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "tensorrt"])
def test_forcing_a_gpu_on_a_cpu_machine_raises(graph, device):
    with pytest.raises(ProviderFallbackError) as info:
        create_session(graph, device=device)
    exc = info.value
    assert isinstance(exc, DependencyError) and exc.exit_code == 1
    assert exc.got == [CPU]
    line = exc.one_line()
    assert "fell back to CPUExecutionProvider" in line and "--allow-cpu-fallback" in line
    assert "onnxruntime-gpu" in line


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this check needs a machine without CUDA")
def test_allowed_fallback_runs_on_cpu_and_says_so(graph, caplog):
    fx_log = logging.getLogger("fx")
    fx_log.addHandler(caplog.handler)
    try:
        sess = create_session(graph, SessionConfig(device="cuda", allow_cpu_fallback=True))
    finally:
        fx_log.removeHandler(caplog.handler)
    assert sess.get_providers() == [CPU]
    assert "running on CPUExecutionProvider (fall-back allowed)" in caplog.text


@pytest.mark.parametrize("installed, chain", [([TENSORRT, CUDA, CPU], [TENSORRT, CUDA, CPU]),
                                              ([CUDA, CPU], [CUDA, CPU]), ([CPU], [CPU]),
                                              (["OpenVINOExecutionProvider", CPU], [CPU])])
def test_auto_asks_for_the_best_installed_provider(installed, chain, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(installed))
    assert [name for name, _ in provider_chain(SessionConfig(device="auto"))] == chain


def test_auto_takes_what_there_is(graph):
    """A real session: on this machine's providers, best first, CPU last; exactly CPU where no GPU provider is."""
    installed = ort.get_available_providers()
    sess = create_session(graph, device="auto")
    got = sess.get_providers()
    if CUDA not in installed and TENSORRT not in installed:
        assert got == [CPU]
    else:  # a GPU build: the best provider that loaded comes first (auto warns rather than refuses)
        best = TENSORRT if TENSORRT in installed else CUDA
        assert got[-1] == CPU and set(got) <= {TENSORRT, CUDA, CPU} and (best in got or got == [CPU])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 2 * x)


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "tensorrt"])
def test_gpu_asked_where_no_gpu_provider_exists_is_refused_on_any_machine(graph, device, cpu_only_ort):
    with pytest.raises(ProviderFallbackError) as info:
        create_session(graph, device=device)
    exc = info.value
    assert exc.exit_code == 1 and exc.asked == device.split(":")[0] and exc.got == [CPU]
    wanted = TENSORRT if device == "tensorrt" else CUDA
    assert f"this onnxruntime build has no {wanted} (available: {CPU})" in exc.one_line()
    assert "--allow-cpu-fallback" in exc.one_line()
    with pytest.raises(ProviderFallbackError):  # and before any session, for commands that export first
        ensure_available(SessionConfig(device=device))
    ensure_available(SessionConfig(device=device, allow_cpu_fallback=True))
    ensure_available(SessionConfig(device="cpu"))


def test_allowed_fallback_on_any_machine_runs_on_cpu_and_warns(graph, cpu_only_ort, caplog):
    fx_log = logging.getLogger("fx")
    fx_log.addHandler(caplog.handler)
    try:
        sess = create_session(graph, SessionConfig(device="cuda", allow_cpu_fallback=True))
    finally:
        fx_log.removeHandler(caplog.handler)
    assert sess.get_providers() == [CPU]
    assert "'cuda' asked for, running on CPUExecutionProvider (fall-back allowed)" in caplog.text


def test_an_installed_gpu_provider_that_does_not_load_is_named(graph, cpu_only_ort, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])  # listed, but sessions get CPU
    with pytest.raises(ProviderFallbackError, match=f"{CUDA} is installed but failed to load"):
        create_session(graph, device="cuda")


def test_provider_options_and_threads(tmp_path):
    trt = provider_chain(SessionConfig(device="tensorrt:1", trt_cache_dir=tmp_path, cudnn_algo_search="HEURISTIC"))
    assert [name for name, _ in trt] == [TENSORRT, CUDA, CPU]
    assert trt[0][1]["trt_fp16_enable"] is True and trt[0][1]["trt_engine_cache_enable"] is True
    assert trt[0][1]["trt_engine_cache_path"] == str(tmp_path) and trt[0][1]["device_id"] == 1
    assert trt[1][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    assert [name for name, _ in provider_chain(SessionConfig(device="cpu"))] == [CPU]
    so = session_options(SessionConfig(intra_op_threads=3, inter_op_threads=1, optimization="basic"))
    assert so.intra_op_num_threads == 3 and so.inter_op_num_threads == 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def test_bad_device_missing_or_broken_graph(tmp_path):
    with pytest.raises(UsageError, match="unknown ONNX Runtime device 'gpu'"):
        provider_chain(SessionConfig(device="gpu"))
    with pytest.raises(UsageError, match="ONNX graph not found"):
        create_session(tmp_path / "missing.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(GraphLoadError, match="broken.onnx: ONNX Runtime cannot load the graph"):
        create_session(tmp_path / "broken.onnx")
