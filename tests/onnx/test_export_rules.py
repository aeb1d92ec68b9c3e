"""The exporter's rules: the options it hands torch.onnx.export (captured, not run), one-line messages (exporter,
PyTorch, loader, specialised batch, failures), opset bounds, and every field of one small real export's report."""

from __future__ import annotations

import json
import types

import pytest
import torch
import yaml
from onnx import TensorProto, helper

from faceexpr_cli.config.cards import ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.errors import CheckpointError, FxError, UsageError
from faceexpr_cli.onnx import export
from faceexpr_cli.onnx.export import (
    MIN_OPSET,
    ExportOptions,
    ModelSource,
    ParityError,
    card_yaml,
    check_opset,
    export_models,
    failure_line,
    max_opset,
)
from faceexpr_cli.onnx.parts import ExportError


def _card(**kw) -> ModelCard:
    base = dict(name="c", builder="b", description="A card.  ", task="t", licence="MIT", preset={"dim": 8},
                tiny={"dim": 2},
                onnx=OnnxSpec(opset=19, parts=[OnnxPart(name="p", inputs=[TensorSpec(name="x", shape=["batch", "k"])],
                                                        outputs=[TensorSpec(name="y", shape=["batch", "k"])])]))
    base.update(kw)
    return ModelCard(**base)


def test_export_options_defaults():
    o = ExportOptions()
    assert (o.opset, o.dynamic_batch, o.fp16, o.simplify, o.tiny) == (None, True, False, True, False)
    assert (o.external_over_mb, o.batch, o.seed, o.latency_runs) == (512.0, 2, 0, 10)
    assert (o.parts, o.sample_check, o.optimize) == (None, True, True) and o.session.device == "cpu"
    s = ModelSource(_card())
    assert (s.weights, s.load, s.model, s.folder, s.derive_shapes, s.export) == (None, None, None, "", False, True)


def test_card_yaml_as_is_and_as_its_tiny_variant():
    c = _card()
    plain = yaml.safe_load(card_yaml(c, tiny=False))
    assert plain["preset"] == {"dim": 8} and plain["tiny"] == {"dim": 2} and plain["description"] == "A card.  "
    assert "input" not in plain  # None fields left out
    assert card_yaml(c, tiny=False).startswith("name: c\nbuilder: b\n")  # card order, not sorted
    tiny = yaml.safe_load(card_yaml(c, tiny=True))
    assert tiny["preset"] == {"dim": 2} and tiny["tiny"] == {} and tiny["description"] == "A card. [tiny test variant]"
    assert "é" in card_yaml(_card(description="café"), tiny=False)  # unicode as it is


def _capture(monkeypatch):
    seen = {}

    def fake_export(module, args, f, **kw):
        seen.update(kw, args=args)
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(torch.onnx, "export", fake_export)
    return seen


def test_the_exporter_gets_names_opset_and_dynamic_axes_from_the_card(monkeypatch):
    from torch.export import Dim

    seen = _capture(monkeypatch)
    c = _card()
    p = c.onnx.parts[0]
    args = (torch.zeros(2, 2),)
    with pytest.raises(ExportError, match=r"^card 'c' part 'p': torch\.onnx\.export failed: boom$") as info:
        export._export_proto(torch.nn.Identity(), p, c, args, ExportOptions(tiny=True))
    assert info.value.hint == "FX_DEBUG=1 shows the exporter's log"
    assert seen["dynamo"] is True and seen["opset_version"] == 19 and seen["optimize"] is True
    assert seen["input_names"] == ["x"] and seen["output_names"] == ["y"] and seen["verbose"] is False
    assert seen["dynamic_shapes"] == {"args": ({0: Dim.AUTO, 1: Dim.AUTO},)}  # k names no argument: dynamic
    with pytest.raises(ExportError):
        export._export_proto(torch.nn.Identity(), p, c, args, ExportOptions(opset=21, dynamic_batch=False,
                                                                            optimize=False))
    assert seen["opset_version"] == 21 and seen["dynamic_shapes"] is None and seen["optimize"] is False
    fixed = _card(preset={"k": 2})  # k is an argument: only the batch is dynamic
    with pytest.raises(ExportError):
        export._export_proto(torch.nn.Identity(), fixed.onnx.parts[0], fixed, args, ExportOptions())
    assert seen["dynamic_shapes"] == {"args": ({0: Dim.AUTO},)}


def test_summary_of_an_exporter_exception():
    assert export._summary(RuntimeError("## - \n  first  \nsecond")) == "first"
    assert export._summary(RuntimeError("noise\nException summary\n\n- the cause\nmore")) == "the cause"
    assert export._summary(ValueError("")) == "ValueError"
    assert export._summary(RuntimeError("x" * 500)) == "x" * 400


def _proto(dims):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    return helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)]))


def test_a_batch_that_came_out_fixed_is_refused():
    c = _card()
    p = c.onnx.parts[0]
    export._check_batch_dynamic(_proto(["batch", 5]), p, c, [{0: "batch", 1: "k"}])  # k fixed is no batch
    export._check_batch_dynamic(_proto(["s0", 5]), p, c, [{0: "batch"}])
    with pytest.raises(ExportError, match=r"^card 'c' part 'p': input 'x' axis 0 \('batch'\) came out fixed at 2: "
                                          r"the model specialises the batch size$") as info:
        export._check_batch_dynamic(_proto([2, 5]), p, c, [{0: "batch"}])
    assert "--static" in info.value.hint


def test_opset_bounds():
    import onnx
    import torch.onnx._constants as constants

    top = max_opset()
    assert top == min(constants.ONNX_MAX_OPSET, onnx.defs.onnx_opset_version()) and MIN_OPSET == 18
    assert check_opset(None) is None and check_opset(18) == 18 and check_opset(top) == top
    for bad in (17, top + 1):
        with pytest.raises(UsageError, match=f"--opset must be a finite number >= 18 and <= {top}") as info:
            check_opset(bad)
        assert info.value.hint == f"this torch/onnx installation exports opsets 18..{top}"


def test_opset_of_a_proto_and_io_of_a_session_argument():
    m = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx", 19), helper.make_opsetid("com.microsoft", 30)])
    assert export._opset(m) == 19
    assert export._opset(helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[])) == 0
    arg = types.SimpleNamespace(name="x", shape=[None, 3, "n"], type="tensor(float)")
    assert export._io(arg) == {"name": "x", "shape": ["?", 3, "n"], "type": "tensor(float)"}
    assert export.module_outputs(_card().onnx.parts[0]) == ["y"]


def test_a_module_off_the_cpu_and_a_plain_callable():
    c = _card()
    meta = torch.nn.Linear(2, 2).to("meta")
    with pytest.raises(ExportError, match=r"^card 'c': the model to export is on meta$") as info:
        export._on_cpu(meta, c)
    assert info.value.hint == "export a CPU copy (model.to('cpu'))"
    cpu = torch.nn.Linear(2, 2)
    assert export._on_cpu(cpu, c) is cpu
    plain = object()
    assert export._on_cpu(plain, c) is plain


def test_a_loader_that_fails_is_one_line_naming_weights_and_card(tmp_path):
    c = _card()

    def bad(model):
        raise ValueError("\n  bad header  \nmore")

    with pytest.raises(CheckpointError, match=r"w\.bin: cannot load the weights into card 'c' \(ValueError: bad "
                                              r"header  \)$") as info:
        export._load(ModelSource(c, weights=tmp_path / "w.bin", load=bad), None)
    assert str(tmp_path) in info.value.message and "pass the matching --card" in info.value.hint
    with pytest.raises(CheckpointError, match=r"^card 'c': cannot load the weights into card 'c' \(KeyError: "):
        export._load(ModelSource(c, load=lambda m: {}["k"]), None)
    own = FxError("its own message")

    def raises_fx(model):
        raise own

    with pytest.raises(FxError) as info:
        export._load(ModelSource(c, load=raises_fx), None)
    assert info.value is own


def _check(name, ok, outputs):
    return {"check": name, "ok": ok, "atol": 0.001, "rtol": 0.0, "outputs": outputs}


def _out(name, ok, excess, max_abs=0.5, max_rel=0.25):
    return {"name": name, "ok": ok, "worst_excess": excess, "max_abs": max_abs, "max_rel": max_rel}


def test_failure_line_names_the_first_failure_and_counts_the_rest():
    assert failure_line({"models": []}) == "export failed"
    assert failure_line({"models": [{"card": "a", "parts": [{"name": "p", "parity": [_check("r", True, [])]}]}]}) \
        == "export failed"
    report = {"models": [
        {"card": "a", "error": "cannot build"},
        {"card": "b", "parts": [
            {"name": "p", "error": "no export"},
            {"name": "q", "parity": [_check("random", True, [_out("y", True, -1)]),
                                     _check("sample", False, [_out("y", False, 0.1), _out("z", False, 0.3, 2.0,
                                                                                          0.125)]),
                                     _check("batch-1", False, [_out("y", False, 0.1)])],
             "fp16": {"parity": [_check("random", False, [_out("y", False, 1.0, 1234.5, 3.0)])]}}]}]}
    line = failure_line(report)
    assert line == "a: cannot build (+3 more)"
    report["models"].pop(0)
    assert failure_line(report) == "b.p: no export (+2 more)"
    report["models"][0]["parts"].pop(0)
    # the worst output of the first failing check; one line per graph (fp32, then fp16)
    assert failure_line(report) == ("b.q: output 'z' (sample inputs) differs from PyTorch by max abs 2 / rel 0.125 "
                                    "(atol 0.001, rtol 0) (+1 more)")
    report["models"][0]["parts"][0]["parity"] = []
    assert failure_line(report) == ("b.q fp16: output 'y' (random inputs) differs from PyTorch by max abs 1.23e+03 / "
                                    "rel 3 (atol 0.001, rtol 0)")


def _offset_card(offset: float):
    from faceexpr_cli.config.cards import load_card

    card = load_card("toy-offset")
    return card.model_copy(update={"preset": {**card.preset, "offset": offset}})


def test_the_report_of_a_small_export(toy_cards, tmp_path):
    out = tmp_path / "out"
    opts = ExportOptions(simplify=False, latency_runs=1, seed=4)
    report = export_models([ModelSource(_offset_card(0.0), folder="sub")], out, opts, source_label="card toy-offset")
    assert report["ok"] is True and report["source"] == "card toy-offset"
    assert (report["opset"], report["dynamic_batch"], report["fp16"], report["simplified"], report["tiny"],
            report["device"]) == (None, True, False, False, False, "cpu")
    assert set(report["versions"]) == {"torch", "onnx", "onnxruntime"} and report["fx_version"]
    (m,) = report["models"]
    assert {k: m[k] for k in ("card", "folder", "card_file", "weights", "random_init", "prebuilt", "tiny",
                              "export", "ok")} == {
        "card": "toy-offset", "folder": "sub", "card_file": "card.yaml", "weights": None, "random_init": True,
        "prebuilt": False, "tiny": False, "export": True, "ok": True}
    (p,) = m["parts"]
    assert p["name"] == "body" and p["module"] == "" and p["ok"] is True and p["seconds"] >= 0
    assert p["file"] == "body.onnx" and p["external_data"] is None and p["opset"] == 18
    assert p["bytes"] == (out / "sub" / "body.onnx").stat().st_size and p["nodes"] >= 1
    assert p["inputs"] == [{"name": "x", "shape": ["batch", 8], "type": "tensor(float)"}]
    assert p["outputs"] == [{"name": "y", "shape": ["batch", 8], "type": "tensor(float)"}]
    # x is noise: the sample check has no real input and is skipped with a note; batches 2 (random), 1 and 3
    assert [(c["check"], c["batch"]) for c in p["parity"]] == [("random", 2), ("batch-1", 1), ("batch-3", 3)]
    assert p["notes"] == ["no real input reaches this part alone: the sample check is the random one"]
    assert all(c["atol"] == 1e-3 and c["rtol"] == 0.0 and c["inputs_from"] == {"x": "fixed-seed noise"}
               for c in p["parity"])
    assert p["latency"]["batch"] == 1 and p["latency"]["runs"] == 1 and p["latency"]["providers"] == [
        "CPUExecutionProvider"]
    assert json.loads((out / "report.json").read_text())["models"][0]["parts"][0]["parity_ok"] is True
    sidecar = yaml.safe_load((out / "sub" / "card.yaml").read_text())
    assert sidecar["name"] == "toy-offset" and sidecar["preset"]["offset"] == 0.0
    assert not (out / "sub" / ".card.yaml.tmp").exists()


def test_a_static_export_checks_only_its_batch_and_times_it(toy_cards, tmp_path):
    opts = ExportOptions(simplify=False, latency_runs=1, dynamic_batch=False, sample_check=False, batch=3)
    report = export_models([ModelSource(_offset_card(0.0))], tmp_path, opts)
    p = report["models"][0]["parts"][0]
    assert [(c["check"], c["batch"]) for c in p["parity"]] == [("random", 3)] and p["latency"]["batch"] == 3
    assert p["inputs"][0]["shape"] == [3, 8]
    assert p["notes"] == ["input 'x' dim 'batch' is fixed at 3 in the graph",
                          "output 'y' dim 'batch' is fixed at 3 in the graph"]
    assert report["dynamic_batch"] is False


def test_parts_that_are_not_there_and_models_that_fail_in_pytorch(toy_cards, tmp_path):
    opts = ExportOptions(simplify=False, latency_runs=1, parts=["nope"])
    report = export_models([ModelSource(_offset_card(0.0))], tmp_path / "a", opts, raise_on_failure=False)
    (m,) = report["models"]
    assert m == {"card": "toy-offset", "ok": False, "parts": [],
                 "error": "card 'toy-offset' has no onnx parts to export named ['nope'] (add an onnx: section to "
                          "the card)"}
    assert report["ok"] is False and not (tmp_path / "a" / "report.json").exists()
    assert json.loads((tmp_path / "a" / "report.failed.json").read_text())["models"][0]["card"] == "toy-offset"

    class Refuses(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("wrong size\nsecond")

    with pytest.raises(ParityError, match=r"toy-offset\.body: card 'toy-offset' part 'body': PyTorch fails on inputs "
                                          r"\{'x': \[2, 8\]\} \(RuntimeError: wrong size\)") as info:
        export_models([ModelSource(_offset_card(0.0), model=Refuses())], tmp_path / "b",
                      ExportOptions(latency_runs=1, sample_check=False, dynamic_batch=False))
    assert info.value.hint == f"see {tmp_path / 'b' / 'report.failed.json'}"
    failed = json.loads((tmp_path / "b" / "report.failed.json").read_text())["models"][0]
    assert failed["ok"] is False and failed["parts"][0]["ok"] is False and failed["parts"][0]["seconds"] >= 0
    assert failed["prebuilt"] is True and failed["random_init"] is False


def test_a_bad_model_folder_is_refused_before_anything_is_written(toy_cards, tmp_path):
    with pytest.raises(CheckpointError, match=r"refusing model folder '\.\./x' in card 'toy-offset'"):
        export_models([ModelSource(_offset_card(0.0), folder="../x")], tmp_path / "out", ExportOptions())
    with pytest.raises(UsageError, match="--opset"):
        export_models([ModelSource(_offset_card(0.0))], tmp_path / "out", ExportOptions(opset=17))
    assert list(tmp_path.iterdir()) == []


def test_a_run_export_notes_its_derived_shapes(toy_export):
    _, report = toy_export
    for m in report["models"]:
        assert m["notes"] == ["ONNX shapes re-derived from the run's model (its card keeps the preset's shapes)"]
        assert m["tiny"] is False and m["random_init"] is False and m["prebuilt"] is False
        assert m["parts"][0]["fp16"]["parity"][0]["rtol"] == max(1e-3, 1e-2)  # fp16 rtol: at least 1e-2
