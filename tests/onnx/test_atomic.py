"""`fx export-onnx` is atomic: a failed export never damages a good one in --out; bad --opset / --out / files are
one-line errors with the right exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from faceexpr_cli.cli.app import main


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _export(capsys, *args) -> tuple[int, str]:
    code = main(["export-onnx", *map(str, args), "--latency-runs", "1", "--no-simplify"])
    return code, capsys.readouterr().err


@pytest.fixture
def good_export(toy_cards, tmp_path, capsys) -> Path:
    out = tmp_path / "out"
    code, err = _export(capsys, "toy-tokenizer", "--tiny", "--out", out)
    assert code == 0, err
    return out


def _broken_tokenizer_card(toy_cards: Path, tmp_path: Path) -> Path:
    """A card whose part is also called ``tokenizer`` (same file name as the good export) and fails parity."""
    card = yaml.safe_load((toy_cards / "toy-mismatch.yaml").read_text())
    card["onnx"]["parts"][0]["name"] = "tokenizer"
    path = tmp_path / "broken-tokenizer.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_a_failed_export_leaves_the_good_one_byte_identical(good_export, toy_cards, tmp_path, capsys):
    before = snapshot(good_export)
    assert {"report.json", "tokenizer.onnx", "card.yaml"} <= set(before)
    code, err = _export(capsys, _broken_tokenizer_card(toy_cards, tmp_path), "--tiny", "--out", good_export)
    assert code == 1 and "output 'y'" in err and "report.failed.json" in err
    after = snapshot(good_export)
    failed = json.loads(after.pop("report.failed.json"))
    assert after == before  # report.json, tokenizer.onnx and card.yaml untouched
    assert failed["ok"] is False and failed["models"][0]["card"] == "toy-mismatch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-tokenizer.yaml", "out"]  # no staging left
    # the graph still in place is the good one: it runs and gives the tokenizer's shape
    import onnxruntime as ort

    sess = ort.InferenceSession(str(good_export / "tokenizer.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 16, 16)


def test_an_export_interrupted_midway_leaves_the_good_one(good_export, toy_cards, tmp_path, monkeypatch):
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx import export
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    before = snapshot(good_export)
    real = export.graphs.check_graph

    def crash(path):  # the graph is written, then the process is interrupted
        real(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(export.graphs, "check_graph", crash)
    with pytest.raises(KeyboardInterrupt):
        export_models([ModelSource(load_card("toy-tokenizer"))], good_export,
                      ExportOptions(tiny=True, seed=5, latency_runs=1, simplify=False))
    assert snapshot(good_export) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_passing_export_replaces_the_old_one_and_its_failure_report(good_export, toy_cards, tmp_path, capsys):
    before = snapshot(good_export)
    code, _ = _export(capsys, _broken_tokenizer_card(toy_cards, tmp_path), "--tiny", "--out", good_export)
    assert code == 1 and (good_export / "report.failed.json").is_file()
    code, err = _export(capsys, "toy-tokenizer", "--tiny", "--static", "--out", good_export)
    assert code == 0, err
    after = snapshot(good_export)
    assert "report.failed.json" not in after and after["tokenizer.onnx"] != before["tokenizer.onnx"]
    assert after["report.json"] != before["report.json"]
    assert json.loads(after["report.json"])["dynamic_batch"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-tokenizer.yaml", "out"]


def test_external_data_moves_in_with_its_graph(toy_cards, tmp_path):
    """Weights past the threshold go to <part>.onnx.data; after the swap ONNX Runtime still finds them."""
    import onnxruntime as ort
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    card = load_card("toy-tokenizer")
    torch.manual_seed(1)
    model = build_model(card, tiny=True).eval()
    opts = ExportOptions(tiny=True, simplify=False, external_over_mb=0, latency_runs=1, sample_check=False)
    export_models([ModelSource(card, model=model)], tmp_path / "ext", opts)
    assert (tmp_path / "ext" / "tokenizer.onnx.data").stat().st_size > 0
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    got = ort.InferenceSession(str(tmp_path / "ext" / "tokenizer.onnx"),
                               providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    part = card.onnx.parts[0]
    np.testing.assert_allclose(got, want, atol=part.atol, rtol=part.rtol)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext"]


def _installed_max_opset() -> int:
    import torch.onnx._constants as c

    return min(c.ONNX_MAX_OPSET, onnx.defs.onnx_opset_version())


@pytest.mark.parametrize("opset", [17, 0, -1, "top+1", 999])
def test_opset_outside_what_the_exporter_supports_is_a_usage_error(opset, toy_cards, tmp_path, capsys):
    top = _installed_max_opset()
    value = top + 1 if opset == "top+1" else opset
    code, err = _export(capsys, "toy-tokenizer", "--tiny", "--opset", value, "--out", tmp_path / "out")
    assert code == 2, err
    assert f"--opset must be a finite number >= 18 and <= {top}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_highest_supported_opset_exports(toy_cards, tmp_path, capsys):
    top = _installed_max_opset()
    code, err = _export(capsys, "toy-tokenizer", "--tiny", "--opset", top, "--out", tmp_path)
    assert code == 0, err
    model = onnx.load(str(tmp_path / "tokenizer.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == top


def _truncated(src: Path, dest: Path) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) - 200])  # header intact, tensor bytes cut short
    return dest


def _bad_card_json(src: Path, dest: Path) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file(state, str(dest), metadata={**meta, "fx_card": "{not json"})
    return dest


CASES = {
    "garbage": (lambda run, d: (d / "x.safetensors").write_bytes(b"garbage") and d / "x.safetensors", [],
                "not a readable safetensors file"),
    "truncated": (lambda run, d: _truncated(run / "tokenizer.safetensors", d / "tokenizer.safetensors"), [],
                  "not a readable safetensors file"),
    "truncated-with-card": (lambda run, d: _truncated(run / "tokenizer.safetensors", d / "tokenizer.safetensors"),
                            ["--card", "SIDECAR"], "cannot read the checkpoint"),
    "card-not-json": (lambda run, d: _bad_card_json(run / "tokenizer.safetensors", d / "tokenizer.safetensors"), [],
                      "model card is not valid JSON"),
    "png-as-pt": (lambda run, d: (d / "x.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64) and d / "x.pt",
                  ["--card", "toy-tokenizer"], "cannot read the checkpoint"),
    "other-model": (lambda run, d: run / "checkpoints" / "step_000002" / "expression.safetensors",
                    ["--card", "toy-tokenizer"], "does not fit card 'toy-tokenizer'"),
    "other-model-hint": (lambda run, d: run / "checkpoints" / "step_000002" / "expression.safetensors",
                         ["--card", "toy-tokenizer"],
                         "(is this checkpoint from another model or card? pass the matching --card)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unreadable_or_wrong_checkpoints_are_one_line_exit_1(case, toy_run, toy_cards, tmp_path, capsys):
    make, extra, message = CASES[case]
    target = make(toy_run, tmp_path)
    if "SIDECAR" in extra:  # a card that fits the tiny weights, beside nothing: passed by path
        card = yaml.safe_load((toy_cards / "toy-tokenizer.yaml").read_text())
        card["preset"] = {**card["preset"], **card["tiny"]}
        (tmp_path / "tiny-tokenizer.yaml").write_text(yaml.safe_dump(card))
        extra = ["--card", str(tmp_path / "tiny-tokenizer.yaml")]
    code, err = _export(capsys, target, *extra, "--out", tmp_path / "out")
    assert code == 1, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_out_that_is_a_file_is_a_usage_error(where, toy_cards, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "sub"
    code, err = _export(capsys, "toy-tokenizer", "--tiny", "--out", out)
    assert code == 2 and "is a file" in err or "lies under the file" in err, err
    assert (tmp_path / "f").read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]
