"""Names inside files that become paths: a checkpoint's card naming an ONNX part ``../../x`` or ``/abs/x`` must be
refused with one line (exit 1) before anything is written, in the output folder or beside it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import save_file

from faceexpr_cli.cli.app import main
from faceexpr_cli.errors import CheckpointError

BAD = {"dotdot": lambda tmp: "../../escaped", "absolute": lambda tmp: str(tmp / "abs-escape")}


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _evil_model_file(src: Path, dest: Path, part_name: str) -> None:
    """A copy of an fx model file whose embedded card (``fx_card``) names its ONNX part ``part_name``, written
    with safetensors directly (not through fx's writer)."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    card = json.loads(meta["fx_card"])
    card["onnx"]["parts"][0]["name"] = part_name
    save_file(state, str(dest), metadata={**meta, "fx_card": json.dumps(card)})


def _run_with_evil_expression(toy_run: Path, tmp_path: Path, name: str) -> Path:
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    model = run / "checkpoints" / "step_000002" / "expression.safetensors"
    _evil_model_file(toy_run / "checkpoints" / "step_000002" / "expression.safetensors", model, name)
    return run


def _expect_refusal(args: list[str], tmp_path: Path, capsys, name: str) -> None:
    home = Path(os.environ["FX_HOME"])
    before = files_under(tmp_path, home)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "refusing ONNX part name" in err and repr(name) in err and "not a plain file name" in err
    created = files_under(tmp_path, home) - before
    assert created == set(), f"files written although the card was refused: {sorted(created)}"
    assert not list(tmp_path.parent.glob("*escape*"))  # nothing beside tmp_path either


@pytest.mark.parametrize("bad", sorted(BAD))
def test_run_whose_card_names_a_part_with_a_path_is_refused(bad, toy_run, toy_cards, tmp_path, capsys):
    name = BAD[bad](tmp_path)
    run = _run_with_evil_expression(toy_run, tmp_path, name)
    _expect_refusal(["export-onnx", str(run), "--all", "--out", str(tmp_path / "out"), "--latency-runs", "1",
                     "--no-simplify"], tmp_path, capsys, name)


@pytest.mark.parametrize("bad", sorted(BAD))
def test_checkpoint_whose_embedded_card_names_a_part_with_a_path_is_refused(bad, toy_run, toy_cards, tmp_path,
                                                                            capsys):
    name = BAD[bad](tmp_path)
    ckpt = tmp_path / "tokenizer.safetensors"
    _evil_model_file(toy_run / "tokenizer.safetensors", ckpt, name)
    _expect_refusal(["export-onnx", str(ckpt), "--out", str(tmp_path / "out"), "--latency-runs", "1"],
                    tmp_path, capsys, name)


def test_sidecar_card_naming_a_part_with_a_path_is_refused(toy_run, toy_cards, tmp_path, capsys):
    import yaml

    ckpt = tmp_path / "tokenizer.safetensors"
    shutil.copyfile(toy_run / "tokenizer.safetensors", ckpt)
    card = yaml.safe_load((toy_cards / "toy-tokenizer.yaml").read_text())
    card["onnx"]["parts"][0]["name"] = "../../escaped"
    card["preset"] = {**card["preset"], **card["tiny"]}  # the checkpoint's sizes: it would export as it is
    (tmp_path / "tokenizer.card.yaml").write_text(yaml.safe_dump(card))
    _expect_refusal(["export-onnx", str(ckpt), "--out", str(tmp_path / "out"), "--latency-runs", "1"],
                    tmp_path, capsys, "../../escaped")


def test_export_models_refuses_such_a_card_given_in_code(toy_cards, tmp_path):
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models

    card = load_card("toy-tokenizer").model_copy(deep=True)
    card.onnx.parts[0].name = "sub/dir"
    with pytest.raises(CheckpointError, match="refusing ONNX part name 'sub/dir'"):
        export_models([ModelSource(card)], tmp_path / "out", ExportOptions(tiny=True, latency_runs=1))
    assert files_under(tmp_path) == set()


def test_a_crafted_report_cannot_point_predictors_outside_the_export(toy_export, tmp_path):
    from faceexpr_cli.onnx.predictor import exported_graphs

    out, report = toy_export
    for key, value in (("folder", "../elsewhere"), ("file", "/etc/x.onnx")):
        crafted = json.loads(json.dumps(report))
        target = crafted["models"][0] if key == "folder" else crafted["models"][0]["parts"][0]
        target[key] = value
        folder = tmp_path / key
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps(crafted))
        with pytest.raises(CheckpointError) as err:
            exported_graphs(folder)
        what = "model folder" if key == "folder" else "graph file"  # which name of the report was refused
        assert err.value.message == (f"refusing {what} {value!r} in {folder / 'report.json'}: "
                                     "not a plain file name")
    assert [p.relative_to(out) for p in exported_graphs(out)] == [Path("tokenizer/tokenizer.onnx"),
                                                                 Path("expression/expression.onnx")]
