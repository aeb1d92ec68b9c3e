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
    assert expr["fp16"]["parity"][0]["atol"] == pytest.approx(1e-2)


def _run_models(toy_run):
    """The run's two models in PyTorch, loaded from the safetensors files with safetensors itself."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import card_from_dict

    models = {}
    for role, path in (("tokenizer", toy_run / "tokenizer.safetensors"),
                       ("expression", toy_run / "checkpoints" / "step_000002" / "expression.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            card = card_from_dict(json.loads(f.metadata()["fx_card"]))
        model = build_model(card).eval()
        model.load_state_dict(load_file(str(path)))
        models[role] = model
    return models


def test_graphs_match_pytorch_within_the_cards_tolerance_recomputed_here(toy_export, toy_run, toy_models_dir):
    """ORT against PyTorch computed in the test (not the exporter's report), on real faces and noise, at the
    tolerances of the card files; the fp16 graphs within fp16_atol and really less exact than fp32."""
    import torch

    from faceexpr_cli.config.cards import InputContract
    from faceexpr_cli.onnx.preprocess import prepare_images, sample_faces

    out, _ = toy_export
    models = _run_models(toy_run)
    cards = {role: yaml.safe_load((toy_models_dir / f"toy-{role}.yaml").read_text())["onnx"]["parts"][0]
             for role in ("tokenizer", "expression")}
    tok_card = yaml.safe_load((out / "tokenizer" / "card.yaml").read_text())
    faces = prepare_images(sample_faces((96, 96)), InputContract(**tok_card["input"]))
    noise = np.random.default_rng(3).random((3, 3, 40, 40), dtype=np.float32)
    worst = {}
    for name, image in (("faces", faces), ("noise", noise)):
        subject = np.arange(len(image)) % 2
        with torch.no_grad():
            patches = models["tokenizer"](torch.from_numpy(image))
            token = models["expression"](patches, torch.from_numpy(subject))["token"]
        for suffix, atol_key in (("", "atol"), (".fp16", "fp16_atol")):
            def run(role, feed, suffix=suffix):
                sess = ort.InferenceSession(str(out / role / f"{role}{suffix}.onnx"),
                                            providers=["CPUExecutionProvider"])
                return sess.run(None, feed)[0]

            got_patches = run("tokenizer", {"image": image})
            got_token = run("expression", {"patch_tokens": patches.numpy(), "subject": subject})
            for role, got, want in (("tokenizer", got_patches, patches), ("expression", got_token, token)):
                part = cards[role]
                atol = part.get(atol_key, 1e-2 if suffix else 1e-4)
                rtol = max(part.get("rtol", 1e-3), 1e-2) if suffix else part.get("rtol", 1e-3)
                np.testing.assert_allclose(got, want.numpy(), atol=atol, rtol=rtol, err_msg=f"{role}{suffix} {name}")
                worst[role, suffix] = max(worst.get((role, suffix), 0.0), float(np.abs(got - want.numpy()).max()))
    assert worst["expression", ".fp16"] > worst["expression", ""]
    assert worst["tokenizer", ".fp16"] > worst["tokenizer", ""]


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
    part = card.onnx.parts[0]  # the card's tolerance, not the report's
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = rng.standard_normal((batch, 3, 40, 40)).astype(np.float32)
        got = sess.run(None, {"image": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == (batch, 25, 16)
        np.testing.assert_allclose(got, want, atol=part.atol, rtol=part.rtol)


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


def test_a_run_exports_every_model_by_default_and_model_picks_one(toy_run, toy_cards, tmp_path):
    """`fx export-onnx RUN --out DIR` (the README's row) exports every model of the run, as --all does."""
    assert main(["export-onnx", str(toy_run), "--out", str(tmp_path / "all"), "--latency-runs", "1"]) == 0
    graphs = sorted(str(p.relative_to(tmp_path / "all")) for p in (tmp_path / "all").rglob("*.onnx"))
    assert graphs == ["expression/expression.onnx", "tokenizer/tokenizer.onnx"]
    for graph in graphs:
        onnx.checker.check_model(str(tmp_path / "all" / graph))
    assert main(["export-onnx", str(toy_run), "--model", "expression", "--out", str(tmp_path / "one"),
                 "--latency-runs", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "one").glob("*.onnx")) == ["expression.onnx"]


def test_bad_targets_are_one_line_usage_errors(toy_run, toy_cards, tmp_path, capsys):
    assert main(["export-onnx", str(toy_run), "--model", "nope", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["export-onnx", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path)]) == 2
    assert main(["export-onnx", "toy-tokenizer", "--out", str(tmp_path)]) == 1  # no weights: says how
    assert "--random-init" in capsys.readouterr().err
    assert main(["export-onnx", "toy-tokenizer", "--tiny", "--device", "gpu", "--out", str(tmp_path)]) == 2


def test_progress_on_stderr_names_each_part_and_its_stage_quiet_with_q(toy_cards, tmp_path, capsys):
    from faceexpr_cli.config.cards import load_card

    parts = [p.name for p in load_card("toy-tokenizer").onnx.parts]
    assert main(["export-onnx", "toy-tokenizer", "--tiny", "--out", str(tmp_path / "a"), "--latency-runs", "1"]) == 0
    captured = capsys.readouterr()
    for part in parts:  # the final state of each part's row; the results table stays on stdout
        assert f"toy-tokenizer.{part}: exported and checked" in captured.err
        assert "exported and checked" not in captured.out
    assert main(["-q", "export-onnx", "toy-tokenizer", "--tiny", "--out", str(tmp_path / "b"),
                 "--latency-runs", "1"]) == 0
    assert not any(part in capsys.readouterr().err for part in parts)
