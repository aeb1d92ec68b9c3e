"""Fixtures for the ONNX tests: test-only cards in a temporary models dir, a fake training run, one export of it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def _load_toy():
    if "fx_onnx_toy" in sys.modules:
        return sys.modules["fx_onnx_toy"]
    spec = importlib.util.spec_from_file_location("fx_onnx_toy", _HERE / "toy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fx_onnx_toy"] = module
    spec.loader.exec_module(module)
    module.register()
    return module


@pytest.fixture(scope="session")
def toy():
    return _load_toy()


@pytest.fixture(scope="session")
def toy_models_dir(tmp_path_factory, toy) -> Path:
    d = tmp_path_factory.mktemp("models")
    for name, text in toy.CARDS.items():
        (d / f"{name}.yaml").write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def toy_cards(toy_models_dir, monkeypatch) -> Path:
    """Point FX_MODELS_DIR at the test-only cards for one test."""
    monkeypatch.setenv("FX_MODELS_DIR", str(toy_models_dir))
    return toy_models_dir


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory, toy_models_dir) -> Path:
    """A run directory written the way `fx train joint` writes it (``faceexpr_cli.train.checkpoint``)."""
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.train.checkpoint import resolved_card, save_model

    run = tmp_path_factory.mktemp("run")
    ckpt = run / "checkpoints" / "step_000002"
    ckpt.mkdir(parents=True)
    torch.manual_seed(7)
    for role, name in (("tokenizer", "toy-tokenizer"), ("expression", "toy-expression")):
        card = load_card(toy_models_dir / f"{name}.yaml")
        model = build_model(card, tiny=True)
        with torch.no_grad():  # trained-looking weights, not the init
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        # the random tokenizer sits in the run folder, the trained models in the checkpoint, as in fx train joint
        where = run if role == "tokenizer" else ckpt
        save_model(where / f"{role}.safetensors", model, resolved_card(card, card.arguments(tiny=True)), role, 2)
    (ckpt / "meta.json").write_text(json.dumps({"step": 2, "models": {"expression": "toy-expression"}}))
    (ckpt / "recipe.yaml").write_text("kind: train-joint\ndata: {size: 40}\n", encoding="utf-8")
    (run / "checkpoints" / "latest").write_text(ckpt.name)
    return run


@pytest.fixture(scope="session")
def toy_export(tmp_path_factory, toy_run, toy_models_dir):
    """`fx export-onnx RUN --all --fp16 --json`, run once: (output dir, report)."""
    from faceexpr_cli.cli.app import main

    out = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FX_MODELS_DIR", str(toy_models_dir))
        report_file = out / "report.json"
        code = main(["export-onnx", str(toy_run), "--all", "--fp16", "--out", str(out), "--latency-runs", "2",
                     "--json"])
    assert code == 0, report_file.read_text() if report_file.exists() else "no report"
    return out, json.loads(report_file.read_text())


@pytest.fixture
def cpu_only_ort(monkeypatch):
    """onnxruntime as a CPU-only build looks, on any machine: no CUDA/TensorRT provider is listed and every session
    runs on CPU whatever it asks for (what ORT does when it drops a provider it cannot load)."""
    import onnxruntime

    from faceexpr_cli.onnx import session

    real = onnxruntime.InferenceSession

    def cpu_session(model, sess_options=None, providers=None, provider_options=None, **kw):
        return real(model, sess_options=sess_options, providers=[session.CPU])

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [session.CPU])
    monkeypatch.setattr(onnxruntime, "InferenceSession", cpu_session)
    return session.CPU
