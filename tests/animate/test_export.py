"""`--backend onnx` for both engines goes through fx's one ONNX path: the shared exporter (parity within the card's
tolerance, card in every graph), a cache keyed by card + weights, and the session factory's provider check."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from faceexpr_cli.animate.engines import EngineOptions
from faceexpr_cli.onnx import graphs

from .conftest import FOMM_FIXTURES

pytestmark = pytest.mark.usefixtures("shared_onnx_cache")

NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


def _fomm(backend: str, device: str = "cpu", allow_cpu_fallback: bool = False):
    from faceexpr_cli.animate.engines.fomm import FommEngine

    return FommEngine(EngineOptions(backend=backend, device=device, config=str(FOMM_FIXTURES / "tiny_config.yaml"),
                                    checkpoint=str(FOMM_FIXTURES / "tiny_checkpoint.pth"),
                                    allow_cpu_fallback=allow_cpu_fallback))


def _faces(n: int, size: int = 256) -> np.ndarray:
    """Real faces (the portraits, shifted a little each) as uint8 RGB frames."""
    from faceexpr_cli.onnx.preprocess import sample_faces

    faces = sample_faces((size, size), ["astronaut", "grace_hopper"])
    return np.stack([np.roll(faces[i % 2], 6 * i, axis=1) for i in range(n)])


def test_fomm_graphs_come_from_the_shared_exporter_and_match_torch(shared_onnx_cache):
    onnx_engine, torch_engine = _fomm("onnx"), _fomm("torch")
    folder = onnx_engine.onnx_dir
    assert folder.parent.resolve() == shared_onnx_cache.resolve() and folder.name.startswith("fomm-vox256")
    report = json.loads((folder / "report.json").read_text())
    assert report["ok"] and report["models"][0]["prebuilt"]
    card = onnx_engine.card
    for entry, part in zip(report["models"][0]["parts"], card.onnx.parts, strict=True):
        assert entry["name"] == part.name
        checks = {c["check"]: c for c in entry["parity"]}
        assert {"random", "sample", "batch-1", "batch-3"} <= set(checks)
        assert all(c["ok"] and c["atol"] == part.atol for c in checks.values())
        meta = graphs.metadata(onnx.load(str(folder / entry["file"]), load_external_data=False))
        assert meta[graphs.META_PART] == part.name and "name: fomm-vox256@tiny_config" in meta[graphs.META_CARD]
    ops = {n.op_type for n in onnx.load(str(folder / "generator.onnx")).graph.node}
    assert "GridSample" in ops and "Inverse" not in ops
    assert onnx_engine.describe()["providers"] == ["CPUExecutionProvider"]

    # Batch 3 (the export used 2), motion between different faces: ORT against the torch engine.
    frames = _faces(3)
    kp_t, kp_o = torch_engine.keypoints(frames), onnx_engine.keypoints(frames)
    kp_part, gen_part = card.onnx.parts
    for want, got in zip(kp_t, kp_o, strict=True):
        np.testing.assert_allclose(got, want, atol=kp_part.atol, rtol=kp_part.rtol)
    for engine in (torch_engine, onnx_engine):
        engine.set_source(frames[0], "source")
    out_t = torch_engine.generate(kp_t[0][::-1].copy(), kp_t[1][::-1].copy())
    out_o = onnx_engine.generate(kp_t[0][::-1].copy(), kp_t[1][::-1].copy())
    assert out_t.shape == (3, 256, 256, 3) and out_t.std() > 10
    assert np.abs(out_t.astype(int) - out_o.astype(int)).max() <= 1


def test_fomm_export_is_cached_by_card_and_weights(monkeypatch):
    from faceexpr_cli.onnx import cache
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource

    first = _fomm("onnx")

    def no_export(*a, **k):
        raise AssertionError("exported again although the cache holds these graphs")

    monkeypatch.setattr(cache, "export_models", no_export)
    assert _fomm("onnx").onnx_dir == first.onnx_dir
    # Other weights in the same card: another entry.
    opts = ExportOptions(latency_runs=1)
    key = cache.cache_key(ModelSource(first.card, model=first.model), opts)
    with torch.no_grad():
        next(first.model.generator.parameters()).add_(1e-3)
    assert cache.cache_key(ModelSource(first.card, model=first.model), opts) != key


@pytest.mark.skipif(not NO_CUDA, reason="checks the CPU-only behaviour; this onnxruntime has CUDA")
def test_cuda_without_cuda_fails_before_exporting_unless_fallback_allowed(caplog):
    from faceexpr_cli.animate.engines.landmarks import LandmarksEngine
    from faceexpr_cli.onnx.cache import cache_root
    from faceexpr_cli.onnx.session import ProviderFallbackError

    before = sorted(p.name for p in cache_root().iterdir())
    with pytest.raises(ProviderFallbackError, match="'cuda' was asked for"):
        LandmarksEngine(EngineOptions(backend="onnx", device="cuda", tiny=True))
    assert sorted(p.name for p in cache_root().iterdir()) == before  # nothing exported
    from faceexpr_cli.console import log

    log.addHandler(caplog.handler)  # fx's logger does not propagate once the CLI has set it up
    try:
        fomm = _fomm("onnx", device="cuda", allow_cpu_fallback=True)  # the session runs on CPU, with a warning
    finally:
        log.removeHandler(caplog.handler)
    assert fomm.describe()["providers"] == ["CPUExecutionProvider"]
    assert "fall-back allowed" in caplog.text


@pytest.fixture
def cpu_only_ort(monkeypatch):
    """onnxruntime as a CPU-only build looks, on any machine (GPU ones too): no CUDA provider, CPU sessions."""
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", lambda model, sess_options=None, providers=None,
                        provider_options=None, **kw: real(model, sess_options=sess_options,
                                                          providers=["CPUExecutionProvider"]))


def test_cuda_where_no_cuda_provider_exists_fails_before_exporting_on_any_machine(cpu_only_ort, caplog):
    from faceexpr_cli.animate.engines.landmarks import LandmarksEngine
    from faceexpr_cli.onnx.cache import cache_root
    from faceexpr_cli.onnx.session import ProviderFallbackError

    before = sorted(p.name for p in cache_root().iterdir())
    for engine in (lambda: LandmarksEngine(EngineOptions(backend="onnx", device="cuda", tiny=True)),
                   lambda: _fomm("onnx", device="cuda")):
        with pytest.raises(ProviderFallbackError, match="this onnxruntime build has no CUDAExecutionProvider"):
            engine()
    assert sorted(p.name for p in cache_root().iterdir()) == before  # nothing exported
    from faceexpr_cli.console import log

    log.addHandler(caplog.handler)
    try:
        fomm = _fomm("onnx", device="cuda", allow_cpu_fallback=True)
    finally:
        log.removeHandler(caplog.handler)
    assert fomm.describe()["providers"] == ["CPUExecutionProvider"] and "fall-back allowed" in caplog.text


def test_landmarks_warp_graph_takes_any_image_size_and_matches_torch(portrait_png):
    from faceexpr_cli.animate.engines import Motion
    from faceexpr_cli.animate.engines.landmarks import LandmarksEngine
    from faceexpr_cli.media import read_image

    image = read_image(portrait_png)[40:472, 60:460]  # 432x400: not the export's 256x256
    engines = [LandmarksEngine(EngineOptions(backend=b)) for b in ("torch", "onnx")]
    src = [e.set_source(image, "source") for e in engines][0]
    report = json.loads((engines[1].onnx_dir / "report.json").read_text())
    assert report["ok"] and report["models"][0]["card"] == "animate-landmarks"
    io = report["models"][0]["parts"][0]["inputs"][0]
    assert io["name"] == "image" and io["shape"] == ["batch", 3, "height", "width"]
    rng = np.random.default_rng(0)
    targets = Motion((src.points + rng.normal(0, 3.0, (3, 68, 2))).astype(np.float32))
    want, got = (e.render(targets) for e in engines)
    assert want.shape == (3, 432, 400, 3)
    assert np.abs(want.astype(int) - image.astype(int)).mean() > 0.2  # it really warps
    diff = np.abs(want.astype(int) - got.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


@pytest.mark.parametrize("bad", ["../../escaped", "ABS"])
def test_pth_tar_whose_card_names_a_part_with_a_path_is_refused(bad, tmp_path, capsys, portrait_png):
    """An fx animator checkpoint carries its card; ONNX part names become files in the export cache, so
    ``../../x`` or ``/abs/x`` there is refused when the file is read: one line, exit 1, nothing written."""
    import os
    from pathlib import Path

    from faceexpr_cli.builders.fomm import card_for_config
    from faceexpr_cli.cli.app import main

    name = str(tmp_path / "abs-escape") if bad == "ABS" else bad
    data = torch.load(FOMM_FIXTURES / "tiny_checkpoint.pth", map_location="cpu", weights_only=True)
    card = card_for_config(str(FOMM_FIXTURES / "tiny_config.yaml")).model_dump(mode="json")
    card["onnx"]["parts"][0]["name"] = name
    evil = tmp_path / "evil.pth.tar"
    torch.save({**data, "card": card}, evil)

    home = Path(os.environ["FX_HOME"])

    def files() -> set[Path]:
        return {p for root in (tmp_path, home) for p in root.rglob("*") if p.is_file()}

    before = files()
    code = main(["animate", "-s", str(portrait_png), "-d", str(portrait_png), "-o", str(tmp_path / "o.png"),
                 "--engine", "fomm", "--checkpoint", str(evil), "--backend", "onnx"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"refusing ONNX part name {name!r}" in err and "evil.pth.tar" in err
    assert files() - before == set()
    assert not list(tmp_path.parent.glob("*escape*"))
