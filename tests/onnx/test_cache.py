"""Exports of already-built modules, cached by card + weights (what `--backend onnx` commands use), and parts opened
by name with several named inputs each."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceexpr_cli.errors import UsageError
from faceexpr_cli.onnx import cache
from faceexpr_cli.onnx.export import ExportOptions, ModelSource, ParityError, export_models
from faceexpr_cli.onnx.predictor import OnnxPredictor, load_predictors

OPTS = ExportOptions(tiny=True, latency_runs=1, sample_check=False, simplify=False)


def _trained_tokenizer(seed: int = 3):
    """The toy tokenizer with weights a fresh build does not have (as if loaded from a checkpoint)."""
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card

    card = load_card("toy-tokenizer")
    torch.manual_seed(seed)
    model = build_model(card, tiny=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return card, model.eval()


def test_a_built_module_is_exported_as_it_is(toy_cards, tmp_path):
    card, model = _trained_tokenizer()
    report = export_models([ModelSource(card, model=model)], tmp_path, OPTS)
    entry = report["models"][0]
    assert report["ok"] and entry["prebuilt"] and not entry["random_init"]
    x = torch.rand(3, 3, 32, 32)
    got = OnnxPredictor(tmp_path / "tokenizer.onnx").run({"image": x.numpy()})["patch_tokens"]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_a_module_off_the_cpu_is_refused_with_its_device(toy_cards, tmp_path):
    card, model = _trained_tokenizer()
    report = export_models([ModelSource(card, model=model.to("meta"))], tmp_path, OPTS, raise_on_failure=False)
    assert not report["ok"] and "is on meta" in report["models"][0]["error"]


def test_cached_export_reuses_entries_keyed_by_card_and_weights(toy_cards, tmp_path, monkeypatch):
    card, model = _trained_tokenizer()
    first = cache.cached_export(ModelSource(card, model=model), OPTS, root=tmp_path)
    assert first.parent == tmp_path and first.name.startswith("toy-tokenizer-")
    assert (first / "tokenizer.onnx").is_file() and (first / "card.yaml").is_file()
    assert json.loads((first / "report.json").read_text())["ok"]
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary folder left behind

    calls = []
    real = cache.export_models
    monkeypatch.setattr(cache, "export_models", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert cache.cached_export(ModelSource(card, model=model), OPTS, root=tmp_path) == first
    assert calls == []
    # Other weights, or other export options: another entry.
    _, other = _trained_tokenizer(seed=4)
    assert cache.cache_key(ModelSource(card, model=other), OPTS) != first.name.rsplit("-", 1)[1]
    assert cache.cache_key(ModelSource(card, model=model), ExportOptions(tiny=True, fp16=True)) != \
        cache.cache_key(ModelSource(card, model=model), OPTS)
    # A weights file keys by its bytes; nothing to key on is a usage error.
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc")
    assert len(cache.cache_key(ModelSource(card, weights=weights), OPTS)) == 20
    with pytest.raises(UsageError, match="needs the weights"):
        cache.cache_key(ModelSource(card), OPTS)
    # An entry damaged by hand is exported again.
    (first / "tokenizer.onnx").unlink()
    assert cache.cached_export(ModelSource(card, model=model), OPTS, root=tmp_path) == first
    assert (first / "tokenizer.onnx").is_file() and calls == [1]


def test_cached_export_that_fails_parity_leaves_no_entry(toy_cards, tmp_path):
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card

    card = load_card("toy-mismatch")
    with pytest.raises(ParityError, match="toy-mismatch.body: output 'y'") as info:
        cache.cached_export(ModelSource(card, model=build_model(card, tiny=True)), OPTS, root=tmp_path)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].endswith(".failed.json") and left[0] in info.value.hint


def test_cached_predictors_refuse_a_missing_gpu_before_exporting(toy_cards, tmp_path, cpu_only_ort):
    from faceexpr_cli.onnx.session import ProviderFallbackError, SessionConfig

    card, model = _trained_tokenizer()
    with pytest.raises(ProviderFallbackError, match="'cuda' was asked for"):
        cache.cached_predictors(ModelSource(card, model=model), SessionConfig(device="cuda"), OPTS, root=tmp_path)
    assert list(tmp_path.iterdir()) == []
    parts, folder = cache.cached_predictors(ModelSource(card, model=model),
                                            SessionConfig(device="cuda", allow_cpu_fallback=True), OPTS,
                                            root=tmp_path)
    assert parts["tokenizer"].providers == ["CPUExecutionProvider"] and folder.parent == tmp_path


def test_parts_open_by_name_and_take_several_named_inputs(toy_export):
    out, _ = toy_export
    parts = load_predictors(out)
    assert list(parts) == ["tokenizer", "expression"]
    tokens = parts["tokenizer"].run({"image": np.random.default_rng(0).random((2, 3, 40, 40), np.float32)})
    got = parts["expression"].run({"subject": np.array([0, 1]), **tokens, "unused": 1})
    assert got["token"].shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(got["token"], axis=1), 1.0, atol=1e-5)
