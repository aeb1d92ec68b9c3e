"""`fx export-onnx` on a training run: graphs, checks, dynamic batch, sidecar card, report, failures."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml

from faceexpr_cli.cli.app import main


def _parts(report):
    return {f"{m['card']}.{p['name']}": (m, p) for m in report["models"] for p in m["parts"]}


def test_run_export_writes_checked_graphs_card_and_report(toy_export):
    out, report = toy_export
    assert report["ok"] and report["source"].startswith("run ")
    parts = _parts(report)
    assert list(parts) == ["toy-tokenizer.tokenizer", "toy-expression.expression"]  # tokenizer first
    for key, (m, p) in parts.items():
        folder = out / m["folder"]
        for graph in (p, p["fp16"]):
            path = folder / graph["file"]
            onnx.checker.check_model(str(path), full_check=True)
            assert graph["opset"] == 18 and graph["bytes"] == path.stat().st_size
            assert graph["latency"]["median_ms"] > 0 and graph["providers"] == ["CPUExecutionProvider"]
            assert {c["check"] for c in graph["parity"]} >= {"random", "batch-1", "batch-3"}, key
            for check in graph["parity"]:
                assert check["ok"] and all(o["ok"] and o["worst_excess"] <= 0 for o in check["outputs"])
        card = yaml.safe_load((folder / "card.yaml").read_text())
        assert card["name"] == m["card"] and m["weights"].endswith(f"{m['folder']}.safetensors")
        meta = {e.key: e.value for e in onnx.load(str(folder / p["file"])).metadata_props}
        assert yaml.safe_load(meta["fx.card"])["name"] == m["card"] and meta["fx.part"] == p["name"]


def test_expression_is_checked_on_real_faces_through_the_tokenizer(toy_export):
    _, report = toy_export
    tok = _parts(report)["toy-tokenizer.tokenizer"][1]
    expr = _parts(report)["toy-expression.expression"][1]
    sample = {c["check"]: c for c in tok["parity"]}["sample"]
    assert sample["inputs_from"] == {"image": "sample images"}
    checks = {c["check"]: c for c in expr["parity"]}
    assert checks["sample"]["inputs_from"]["patch_tokens"] == "toy-tokenizer.tokenizer.patch_tokens"
    # the fp16 graph passes its own, looser tolerance and is really less exact than fp32
    fp32 = max(o["max_abs"] for c in expr["parity"] for o in c["outputs"])
    fp16 = max(o["max_abs"] for c in expr["fp16"]["parity"] for o in c["outputs"])
    assert fp16 > fp32 and expr["fp16"]["parity"][0]["atol"] == pytest.approx(1e-2)


def test_dynamic_batch_runs_batch_1_and_3_on_one_graph(toy_export, toy_run):
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.train.checkpoint import read_model_file

    out, _ = toy_export
    folder = out / "tokenizer"
    assert yaml.safe_load((folder / "card.yaml").read_text())["input"]["size"] == 40  # the run's data.size
    sess = ort.InferenceSession(str(folder / "tokenizer.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    state, card, _ = read_model_file(toy_run / "tokenizer.safetensors")
    model = build_model(card).eval()
    model.load_state_dict(state)
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 3, 40, 40)).astype(np.float32)
        got = sess.run(None, {"image": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == (batch, 25, 16)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


def test_static_export_fixes_every_size(toy_cards, tmp_path):
    code = main(["export-onnx", "toy-tokenizer", "--tiny", "--static", "--no-simplify", "--out", str(tmp_path),
                 "--latency-runs", "1"])
    assert code == 0
    sess = ort.InferenceSession(str(tmp_path / "tokenizer.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [2, 3, 32, 32]
    report = json.loads((tmp_path / "report.json").read_text())
    checks = [c["check"] for c in report["models"][0]["parts"][0]["parity"]]
    assert checks == ["random", "sample"]  # no other batch on a static graph
    with pytest.raises(Exception, match="dimension|Got invalid"):
        sess.run(None, {"image": np.zeros((3, 3, 32, 32), np.float32)})


def test_parity_failure_exits_1_naming_card_part_output_and_writes_report(toy_cards, tmp_path, capsys):
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, ParityError, export_models

    code = main(["export-onnx", "toy-mismatch", "--tiny", "--no-simplify", "--out", str(tmp_path / "cli"),
                 "--latency-runs", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "toy-mismatch.body: output 'y'" in err and "max abs 1 " in err and "report.failed.json" in err
    assert not (tmp_path / "cli" / "report.json").exists() and not list((tmp_path / "cli").glob("*.onnx"))
    report = json.loads((tmp_path / "cli" / "report.failed.json").read_text())
    assert report["ok"] is False and report["models"][0]["parts"][0]["parity_ok"] is False
    # large-weights path: everything goes to <part>.onnx.data, which ONNX Runtime still finds
    opts = ExportOptions(tiny=True, simplify=False, external_over_mb=0, latency_runs=1, dynamic_batch=False)
    with pytest.raises(ParityError):
        export_models([ModelSource(load_card("toy-mismatch"))], tmp_path / "ext", opts)
    assert not list((tmp_path / "ext").glob(".*"))  # no temporary leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli", "ext"]  # nor beside the output


def test_bad_targets_are_one_line_usage_errors(toy_run, toy_cards, tmp_path, capsys):
    assert main(["export-onnx", str(toy_run), "--out", str(tmp_path)]) == 2
    assert "holds 2 models (expression, tokenizer)" in capsys.readouterr().err
    assert main(["export-onnx", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path)]) == 2
    assert main(["export-onnx", "toy-tokenizer", "--out", str(tmp_path)]) == 1  # no weights: says how
    assert "--random-init" in capsys.readouterr().err
    assert main(["export-onnx", "toy-tokenizer", "--tiny", "--device", "gpu", "--out", str(tmp_path)]) == 2
