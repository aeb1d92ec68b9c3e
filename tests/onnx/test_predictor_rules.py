"""Predictors on a hand-made graph and fake parts: finding parts, feeding, where the card comes from (metadata,
sidecar, neither), chains (input names, pruning, frames in batches with per-frame and scalar extras), report paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from onnx import TensorProto, helper, numpy_helper

from faceexpr_cli.config.cards import InputContract, ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.errors import ConfigError, DataError, MissingFileError, UnknownNameError
from faceexpr_cli.onnx import graphs
from faceexpr_cli.onnx.predictor import (
    ChainPredictor,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    exported_graphs,
    find_part,
    load_chain,
    load_predictors,
    prune,
)


def spec(name, shape, dtype="float32"):
    return TensorSpec(name=name, shape=shape, dtype=dtype)


def part(name, ins, outs):
    return OnnxPart(name=name, inputs=[spec(n, ["batch", 2]) for n in ins], outputs=[spec(n, ["batch", 2])
                                                                                    for n in outs])


def card(*parts, contract=None):
    return ModelCard(name="c", builder="b", description="d", task="t", licence="MIT", input=contract,
                     onnx=OnnxSpec(parts=list(parts)))


def test_find_part():
    one = card(part("only", ["x"], ["y"]))
    assert find_part(one, None).name == "only" and find_part(one, "only").name == "only"
    two = card(part("a", ["x"], ["y"]), part("b", ["y"], ["z"]))
    assert find_part(two, "b").name == "b"
    with pytest.raises(UnknownNameError, match="unknown ONNX part of 'c' 'None'") as info:
        find_part(two, None)
    assert info.value.hint == "known: a, b"
    with pytest.raises(UnknownNameError, match="unknown ONNX part of 'c' 'q'"):
        find_part(card(), "q")


def test_feed_keeps_card_order_ignores_extras_and_names_what_is_missing():
    p = Predictor(card(part("p", ["x", "y"], ["z"])), part("p", ["x", "y"], ["z"]))
    assert p.input_names == ["x", "y"] and p.output_names == ["z"] and p.tiny is False
    assert list(p._feed({"extra": 0, "y": 2, "x": 1})) == ["x", "y"]
    with pytest.raises(DataError, match=r"^c\.p: missing inputs \['y'\]$") as info:
        p._feed({"x": 1})
    assert info.value.hint == "it takes ['x', 'y']"
    with pytest.raises(NotImplementedError):
        p.run({})


def _graph(tmp_path, name="p", meta: dict | None = None, file=None):
    """y = x + 1 on [batch, 2] float32, optionally with fx metadata."""
    one = numpy_helper.from_array(np.ones(2, np.float32), "one")
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "g", [helper.make_tensor_value_info("x", 1, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], initializer=[one]),
        opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    if meta:
        helper.set_model_props(m, meta)
    path = tmp_path / (file or f"{name}.onnx")
    path.write_bytes(m.SerializeToString())
    return path


def _card_yaml(c: ModelCard) -> str:
    return yaml.safe_dump(c.model_dump(mode="json", exclude_none=True))


def test_the_onnx_predictor_reads_the_embedded_card_and_runs(tmp_path):
    c = card(part("other", ["x"], ["y"]), part("p", ["x"], ["y"]))
    path = _graph(tmp_path, meta={graphs.META_CARD: _card_yaml(c), graphs.META_PART: "p", graphs.META_TINY: "1"},
                  file="renamed.onnx")
    pred = OnnxPredictor(path)
    assert pred.card.name == "c" and pred.part.name == "p" and pred.tiny is True and pred.path == path
    assert pred.binding is None and pred.device_id == 0 and pred.notes == []
    out = pred(x=np.zeros((3, 2), np.float32))
    assert list(out) == ["y"] and out["y"].dtype == np.float32 and out["y"].tolist() == [[1.0, 1.0]] * 3
    assert pred.run({"x": torch.full((1, 2), 2.0)})["y"].tolist() == [[3.0, 3.0]]  # torch tensors are taken too
    on_device = pred.run_device({"x": np.zeros((1, 2), np.float32)})
    assert on_device["y"].numpy().tolist() == [[1.0, 1.0]]  # OrtValues, on the CPU here
    assert OnnxPredictor.load(path, part="other").part.name == "other"


def test_without_metadata_the_part_comes_from_the_file_name_and_the_card_from_beside_it(tmp_path):
    c = card(part("p", ["x"], ["y"]), part("q", ["x"], ["y"]))
    path = _graph(tmp_path, file="q.fp16.onnx")
    with pytest.raises(MissingFileError, match=r"model card for the graph not found: .*card\.yaml") as info:
        OnnxPredictor(path)
    assert "fx export-onnx" in info.value.hint
    (tmp_path / "card.yaml").write_text(_card_yaml(c))
    pred = OnnxPredictor(path)
    assert pred.part.name == "q" and pred.tiny is False
    assert OnnxPredictor(path, card=card(part("z", ["x"], ["y"])), part="z").part.name == "z"
    (tmp_path / "card.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"card\.yaml: not a model card$"):
        OnnxPredictor(path)


def test_a_non_mapping_embedded_card_is_refused(tmp_path):
    path = _graph(tmp_path, meta={graphs.META_CARD: "just text"})
    with pytest.raises(ConfigError, match=r"p\.onnx \(embedded card\): not a model card"):
        OnnxPredictor(path)


class Fake(Predictor):
    backend = "fake"

    def __init__(self, name, ins, outs, fn, contract=None):
        p = part(name, ins, outs)
        super().__init__(card(p, contract=contract), p)
        self.fn = fn
        self.fed = []

    def run(self, inputs):
        feed = self._feed(inputs)
        self.fed.append(feed)
        return self.fn(**feed)


def test_chains_take_inputs_by_name_from_the_caller_and_earlier_parts():
    a = Fake("a", ["x"], ["h"], lambda x: {"h": x * 2})
    b = Fake("b", ["h", "s"], ["y"], lambda h, s: {"y": h + s})
    c = Fake("c", ["x", "y", "t"], ["z"], lambda x, y, t: {"z": x + y + t})
    chain = ChainPredictor([a, b, c])
    assert chain.backend == "fake" and chain.input_names == ["x", "s", "t"]
    out = chain(x=np.array([1.0]), s=np.array([10.0]), t=np.array([100.0]))
    assert {k: v.tolist() for k, v in out.items()} == {"h": [2.0], "y": [12.0], "z": [113.0]}
    with pytest.raises(DataError, match="an empty chain of predictors"):
        ChainPredictor([])


def test_run_frames_goes_in_batches_with_scalar_and_per_frame_extras():
    contract = InputContract(layout="NHWC")
    a = Fake("a", ["image", "subject"], ["y"], lambda image, subject: {"y": image[:, 0, 0, 0] * 255 + subject},
             contract=contract)
    chain = ChainPredictor([a])
    frames = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1).repeat(3, axis=-1)
    out = chain.run_frames(frames, batch_size=2, subject=1000)
    assert [len(f["image"]) for f in a.fed] == [2, 2, 1]
    np.testing.assert_allclose(out["y"], [1000, 1001, 1002, 1003, 1004], rtol=1e-6)
    a.fed.clear()
    out = chain.run_frames(list(frames), subject=np.array([0, 10, 20, 30, 40]))  # a list; default batch 32
    assert [len(f["image"]) for f in a.fed] == [5]
    np.testing.assert_allclose(out["y"], [0, 11, 22, 33, 44], rtol=1e-6)
    a.fed.clear()
    chain.run_frames(frames, batch_size=3, subject=np.array(7))  # a 0-d array is a scalar too
    assert [f["subject"].tolist() for f in a.fed] == [[7, 7, 7], [7, 7]]
    np.testing.assert_array_equal(chain.prepare_images(frames), a.prepare_images(frames))


def test_prune_keeps_only_what_the_outputs_need_in_order():
    parts = [(i, part(n, ins, outs)) for i, (n, ins, outs) in enumerate(
        [("tok", ["image"], ["tokens"]), ("aux", ["image"], ["mask"]), ("expr", ["tokens"], ["token"]),
         ("emo", ["token"], ["emotion"])])]
    assert prune(parts, None) is parts and prune(parts, []) is parts
    assert [i for i, _ in prune(parts, ["token"])] == [0, 2]
    assert [i for i, _ in prune(parts, ["emotion", "mask"])] == [0, 1, 2, 3]
    assert [i for i, _ in prune(parts, ["mask"])] == [1]
    with pytest.raises(UnknownNameError, match="unknown output 'logits, x'") as info:
        prune(parts, ["x", "logits", "token"])
    assert info.value.hint == "known: emotion, mask, token, tokens"


def test_exported_graphs_and_load_predictors_follow_the_report(tmp_path):
    with pytest.raises(MissingFileError, match="export report not found") as info:
        exported_graphs(tmp_path)
    assert "fx export-onnx" in info.value.hint
    c = card(part("p", ["x"], ["y"]))
    (tmp_path / "sub").mkdir()
    meta = {graphs.META_CARD: _card_yaml(c), graphs.META_PART: "p"}
    _graph(tmp_path / "sub", meta=meta)
    report = {"models": [{"folder": "sub", "parts": [{"file": "p.onnx"}, {"name": "failed"}]},
                         {"parts": []}]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert exported_graphs(str(tmp_path)) == [tmp_path / "sub" / "p.onnx"]
    preds = load_predictors(tmp_path)
    assert list(preds) == ["p"] and preds["p"].path == tmp_path / "sub" / "p.onnx"
    chain = load_chain("onnx", tmp_path)
    assert [p.part.name for p in chain.predictors] == ["p"]
    with pytest.raises(UnknownNameError, match="unknown inference backend 'tf'"):
        load_chain("tf", tmp_path)


def test_torch_predictor_on_a_built_module():
    class Double(torch.nn.Module):
        def forward(self, x):
            return x * 2

    c = card(part("p", ["x"], ["y"]))
    for device in ("auto", "", "cpu"):
        pred = TorchPredictor(Double(), c, device=device)
        assert pred.device == torch.device("cpu") and pred.part.name == "p" and pred.backend == "torch"
    out = TorchPredictor(Double(), c, "p").run({"x": np.array([[1.0, 2.0]])})  # float64 in
    assert out["y"].dtype == np.float32 and out["y"].tolist() == [[2.0, 4.0]]
    assert TorchPredictor(Double(), c, c.onnx.parts[0]).run({"x": torch.ones(1, 2)})["y"].tolist() == [[2.0, 2.0]]
