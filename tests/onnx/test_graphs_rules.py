"""Operations on ONNX protos, on graphs built by hand with ``onnx.helper``: dim naming, metadata, topological order,
fp16 with kept ops, the external-data threshold at its boundary, the checker's message, graph I/O and card checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceexpr_cli.config.cards import ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.onnx import graphs
from faceexpr_cli.onnx.parts import ExportError


def vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def model(nodes, inputs, outputs, inits=(), value_info=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits), value_info=list(value_info))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def identity(in_dims, out_dims=None, elem=TensorProto.FLOAT):
    return model([helper.make_node("Identity", ["x"], ["y"])], [vi("x", in_dims, elem)],
                 [vi("y", out_dims if out_dims is not None else in_dims, elem)])


def test_dims_of_gives_ints_names_and_question_marks():
    m = identity([2, "s0", None])
    assert graphs.dims_of(m.graph.input[0]) == [2, "s0", "?"]


def test_name_dynamic_dims_renames_the_exporters_symbols_everywhere():
    m = model([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
              [vi("x", ["s0", 3, "s1"]), vi("z", ["s0", 4])], [vi("y", ["s0", 3, "s1"])],
              value_info=[vi("h", ["s0", 3, "s1"])])
    p = OnnxPart(name="p", inputs=[TensorSpec(name="x", shape=["batch", 3, "t"])],
                 outputs=[TensorSpec(name="y", shape=["batch", 3, "t"])])
    # axis 1 is fixed (no symbol), axis 3 is past the rank: both ignored; z's s0 asks for another name: first wins
    rename = graphs.name_dynamic_dims(m, p, {"x": {0: "batch", 1: "c", 2: "t", 3: "extra"}, "z": {0: "other"}})
    assert rename == {"s0": "batch", "s1": "t"}
    for v in (m.graph.input[0], m.graph.output[0], m.graph.value_info[0]):
        assert graphs.dims_of(v) == ["batch", 3, "t"]
    assert graphs.dims_of(m.graph.input[1]) == ["batch", 4]
    untouched = identity(["s0"])
    assert graphs.name_dynamic_dims(untouched, p, {}) == {} and graphs.dims_of(untouched.graph.output[0]) == ["s0"]


def test_metadata_is_replaced_not_duplicated_and_other_keys_stay():
    m = identity([1])
    helper.set_model_props(m, {"author": "me", graphs.META_PART: "old"})
    graphs.set_metadata(m, "name: c\n", "body", tiny=True)
    assert graphs.metadata(m) == {"author": "me", "fx.card": "name: c\n", "fx.part": "body", "fx.tiny": "1"}
    graphs.set_metadata(m, "name: d\n", "head", tiny=False)
    assert [p.key for p in m.metadata_props] == ["author", "fx.card", "fx.part", "fx.tiny"]
    assert graphs.metadata(m)["fx.tiny"] == "0" and graphs.metadata(m)["fx.part"] == "head"
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert graphs.metadata(sess)["fx.card"] == "name: d\n" and graphs.metadata(sess)["author"] == "me"


def test_toposort_orders_nodes_and_names_a_cycle():
    a = helper.make_node("Relu", ["x"], ["a"], name="first")
    b = helper.make_node("Relu", ["a"], ["b"], name="second")
    c = helper.make_node("Add", ["b", "w"], ["y"], name="third")
    clip = helper.make_node("Clip", ["y", "", "w"], ["z"], name="optional")  # "" is an input left out
    w = numpy_helper.from_array(np.ones(1, np.float32), "w")
    m = model([clip, c, b, a], [vi("x", [1])], [vi("z", [1])], inits=[w])
    graphs.toposort(m)
    assert [n.name for n in m.graph.node] == ["first", "second", "third", "optional"]
    loop = model([helper.make_node("Relu", ["q"], ["p"], name="n1"), helper.make_node("Relu", ["p"], ["q"],
                                                                                       name="n2")],
                 [vi("x", [1])], [vi("p", [1])])
    with pytest.raises(ExportError, match="graph has a cycle or an unknown input at node 'n1'"):
        graphs.toposort(loop)


def _elem_types(m) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(m)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.output) + list(g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def test_fp16_keeps_io_and_sensitive_ops_in_float32():
    w = numpy_helper.from_array(np.full((4, 4), 0.5, np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Softmax", ["h"], ["s"], axis=-1),
             helper.make_node("Exp", ["s"], ["e"]), helper.make_node("ReduceMean", ["e"], ["y"], keepdims=1)]
    m = model(nodes, [vi("x", [2, 4])], [vi("y", [2, 1])], inits=[w])
    half = graphs.to_fp16(m)
    types = _elem_types(half)
    assert types["x"] == types["y"] == TensorProto.FLOAT  # I/O stay float32
    assert types["w"] == TensorProto.FLOAT16  # weights go half
    for n in half.graph.node:
        if n.op_type in ("Softmax", "Exp", "ReduceMean"):
            assert all(types[i] == TensorProto.FLOAT for i in n.input if i), n.op_type
        if n.op_type == "MatMul":
            assert all(types[i] == TensorProto.FLOAT16 for i in n.input), n.input
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    import onnxruntime as ort

    run = [ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for g in (m, half)]
    np.testing.assert_allclose(run[1], run[0], rtol=1e-2)
    for op in ("LayerNormalization", "Softmax", "Exp", "Erf", "GridSample", "Resize", "TopK", "ReduceMean"):
        assert op in graphs.FP16_KEEP_FP32


def test_weight_bytes_counts_every_initializer_by_its_dtype():
    inits = [numpy_helper.from_array(np.zeros((2, 3), np.float32), "a"),
             numpy_helper.from_array(np.zeros(4, np.int64), "b"), numpy_helper.from_array(np.zeros(5, np.float16), "c")]
    m = model([helper.make_node("Identity", ["x"], ["y"])], [vi("x", [1])], [vi("y", [1])], inits=inits)
    assert graphs.weight_bytes(m) == 2 * 3 * 4 + 4 * 8 + 5 * 2


def _with_weights(n_floats: int):
    w = numpy_helper.from_array(np.arange(n_floats, dtype=np.float32), "w")
    return model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [n_floats])], [vi("y", [n_floats])],
                 inits=[w])


def test_save_graph_goes_external_only_past_the_threshold(tmp_path):
    m = _with_weights(2048)  # 8192 bytes
    at = tmp_path / "at" / "g.onnx"
    assert graphs.save_graph(m, at, external_over_mb=8192 / 2**20) is None  # exactly at the threshold: inline
    assert at.is_file() and not (at.parent / "g.onnx.data").exists()
    past = tmp_path / "past" / "g.onnx"
    data = graphs.save_graph(m, past, external_over_mb=8191 / 2**20)
    assert data == past.parent / "g.onnx.data" and data.stat().st_size == 8192
    assert sorted(p.name for p in past.parent.iterdir()) == ["g.onnx", "g.onnx.data"]  # no temporary folder
    import onnxruntime as ort

    x = np.zeros(2048, np.float32)
    out = ort.InferenceSession(str(past), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(out, np.arange(2048, dtype=np.float32))
    # saved again inline: the stale data file goes
    assert graphs.save_graph(m, past) is None and not data.exists()
    assert onnx.load(str(past)).graph.initializer[0].raw_data  # weights inside the graph file


def test_save_graph_keeps_small_tensors_inline_even_past_the_threshold(tmp_path):
    m = _with_weights(100)  # 400 bytes, under the 1024-byte size threshold of external data
    path = tmp_path / "g.onnx"
    assert graphs.save_graph(m, path, external_over_mb=0) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_check_graph_names_the_file_and_the_checkers_complaint(tmp_path):
    bad = model([helper.make_node("Relu", ["nowhere"], ["y"])], [vi("x", [1])], [vi("y", [1])])
    path = tmp_path / "bad.onnx"
    path.write_bytes(bad.SerializeToString())
    with pytest.raises(ExportError, match=r"^bad\.onnx: onnx\.checker rejects the graph: .*nowhere"):
        graphs.check_graph(path)
    good = tmp_path / "good.onnx"
    good.write_bytes(identity([1]).SerializeToString())
    graphs.check_graph(good)


def test_graph_io_from_a_proto_and_from_a_session():
    w = numpy_helper.from_array(np.zeros(3, np.float32), "w")
    m = model([helper.make_node("Add", ["x", "w"], ["y"]), helper.make_node("Cast", ["k"], ["k2"], to=7)],
              [vi("x", ["batch", 3]), vi("w", [3]), vi("k", [1], TensorProto.DOUBLE)],
              [vi("y", ["batch", 3]), vi("k2", [1], TensorProto.INT64)], inits=[w])
    ins, outs = graphs.graph_io(m)
    assert ins == [("x", ["batch", 3], "float32"), ("k", [1], "?")]  # an initializer listed as input is no input
    assert outs == [("y", ["batch", 3], "float32"), ("k2", [1], "int64")]
    import onnxruntime as ort

    sess = ort.InferenceSession(identity(["n", None], elem=TensorProto.UINT8).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    s_ins, s_outs = graphs.graph_io(sess)
    assert s_ins == [("x", ["n", "?"], "uint8")] and s_outs == [("y", ["n", "?"], "uint8")]
    dbl = ort.InferenceSession(identity([1], elem=TensorProto.DOUBLE).SerializeToString(),
                               providers=["CPUExecutionProvider"])
    assert graphs.graph_io(dbl)[0] == [("x", [1], "tensor(double)")]
    for elem, name in ((TensorProto.FLOAT16, "float16"), (TensorProto.INT32, "int32"), (TensorProto.BOOL, "bool")):
        assert graphs.graph_io(identity([1], elem=elem))[0][0][2] == name


def _card(preset=None) -> ModelCard:
    return ModelCard(name="c", builder="b", description="d", task="t", licence="MIT", preset=preset or {},
                     onnx=OnnxSpec())


def _part(in_shape, out_shape=None, dtype="float32") -> OnnxPart:
    return OnnxPart(name="p", inputs=[TensorSpec(name="x", shape=in_shape, dtype=dtype)],
                    outputs=[TensorSpec(name="y", shape=out_shape or in_shape, dtype=dtype)])


def test_validate_io_accepts_fitting_graphs_and_notes_fixed_dynamic_dims():
    c = _card({"dim": 4})
    assert graphs.validate_io(identity(["batch", 4]), c, _part(["batch", "dim"]), False, "g") == []
    assert graphs.validate_io(identity(["s", "d"]), c, _part(["batch", "dim"]), False, "g") == []  # symbolic
    notes = graphs.validate_io(identity([2, 4]), c, _part(["batch", "dim"]), False, "g")
    assert notes == ["input 'x' dim 'batch' is fixed at 2 in the graph", "output 'y' dim 'batch' is fixed at 2 in "
                     "the graph"]
    unknown = identity([2], elem=TensorProto.DOUBLE)
    assert graphs.validate_io(unknown, c, _part([2]), False, "g") == []  # '?' dtype passes


def test_validate_io_names_each_misfit():
    c = _card({"dim": 4})
    with pytest.raises(ExportError, match=r"^g: graph inputs are \['x'\], card 'c' part 'p' says \['img'\]$") as info:
        graphs.validate_io(identity([1]), c, OnnxPart(name="p", inputs=[TensorSpec(name="img", shape=[1])],
                                                      outputs=[TensorSpec(name="y", shape=[1])]), False, "g")
    assert info.value.hint == "re-export the graph from this card"
    with pytest.raises(ExportError, match=r"graph outputs are \['y'\], card 'c' part 'p' says \['out'\]"):
        graphs.validate_io(identity([1]), c, OnnxPart(name="p", inputs=[TensorSpec(name="x", shape=[1])],
                                                      outputs=[TensorSpec(name="out", shape=[1])]), False, "g")
    with pytest.raises(ExportError, match=r"^g: input 'x' has rank 2, the card says \[1\]$"):
        graphs.validate_io(identity([1, 1]), c, _part([1]), False, "g")
    with pytest.raises(ExportError, match=r"^g: input 'x' is int64, the card says float32$"):
        graphs.validate_io(identity([1], elem=TensorProto.INT64), c, _part([1]), False, "g")
    with pytest.raises(ExportError, match=r"^g: input 'x' has shape \[1, 5\], the card says \['batch', 'dim'\] "
                                          r"\(dim = 4\)$"):
        graphs.validate_io(identity([1, 5]), c, _part(["batch", "dim"]), False, "g")
    with pytest.raises(ExportError, match=r"^g: input 'x' has shape \[3\], the card says \[2\]$"):
        graphs.validate_io(identity([3]), c, _part([2]), False, "g")
    with pytest.raises(ExportError, match=r"output 'y' has shape \[2\], the card says \[3\]"):
        graphs.validate_io(identity([3], [2]), c, _part([3], [3]), False, "g")


def test_validate_io_fixes_dims_from_the_tiny_arguments_when_tiny():
    c = ModelCard(name="c", builder="b", description="d", task="t", licence="MIT", preset={"dim": 32},
                  tiny={"dim": 8}, onnx=OnnxSpec())
    graphs.validate_io(identity([1, 8]), c, _part(["batch", "dim"]), True, "g")
    with pytest.raises(ExportError, match=r"\(dim = 32\)"):
        graphs.validate_io(identity([1, 8]), c, _part(["batch", "dim"]), False, "g")


def test_saving_with_external_data_leaves_the_weights_in_the_proto(tmp_path):
    """Bug fixed: ``onnx.save_model(save_as_external_data=True)`` empties the proto's tensors, so the fp16 graph made
    from it after the fp32 one was saved (``--fp16`` on a model past ``external_over_mb``) crashed."""
    m = _with_weights(2048)
    assert graphs.save_graph(m, tmp_path / "a.onnx", external_over_mb=0) is not None
    w = m.graph.initializer[0]
    assert w.data_location == TensorProto.DEFAULT and not w.external_data
    np.testing.assert_array_equal(numpy_helper.to_array(w), np.arange(2048, dtype=np.float32))
    assert graphs.save_graph(m, tmp_path / "b.onnx") is None  # the same proto saves again, inline
    assert len(onnx.load(str(tmp_path / "b.onnx")).graph.initializer[0].raw_data) == 8192


def test_fp16_export_with_external_data_passes(toy_cards, tmp_path):
    """Bug fixed: with external data the fp16 graph was made from the proto that saving the fp32 graph emptied."""
    import onnxruntime as ort
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models, failure_line

    card = load_card("toy-tokenizer")
    torch.manual_seed(0)
    built = build_model(card, tiny=True).eval()
    opts = ExportOptions(tiny=True, fp16=True, external_over_mb=0, latency_runs=1,
                         sample_check=False, dynamic_batch=False)
    report = export_models([ModelSource(card, model=built)], tmp_path, opts, raise_on_failure=False)
    assert report["ok"], failure_line(report)
    p = report["models"][0]["parts"][0]
    assert p["external_data"] == "tokenizer.onnx.data" and p["fp16"]["external_data"] == "tokenizer.fp16.onnx.data"
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    got = ort.InferenceSession(str(tmp_path / "tokenizer.fp16.onnx"),
                               providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        want = built(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=card.onnx.parts[0].fp16_atol, rtol=1e-2)


def test_fp16_export_without_simplification_passes_the_checker(toy_cards, tmp_path):
    """Bug fixed: unsimplified, the fp16 converter left value_info typed float16 for values that stay float32
    (they feed an op kept in float32), and onnx.checker rejected the graph."""
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.config.cards import load_card
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models, failure_line

    card = load_card("toy-tokenizer")
    torch.manual_seed(0)
    built = build_model(card, tiny=True).eval()
    opts = ExportOptions(tiny=True, simplify=False, fp16=True, latency_runs=1, sample_check=False)
    report = export_models([ModelSource(card, model=built)], tmp_path, opts, raise_on_failure=False)
    assert report["ok"], failure_line(report)
    [half] = sorted(tmp_path.rglob("*.fp16.onnx"))
    onnx.checker.check_model(str(half), full_check=True)
    proto = onnx.load(str(half))
    assert any(t.data_type == TensorProto.FLOAT16 for t in proto.graph.initializer)  # really converted
    # every value's recorded type is the one its producer makes: inference from scratch agrees with the file
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    recorded = {v.name: v.type.tensor_type.elem_type for v in proto.graph.value_info}
    assert recorded and all(recorded[v.name] == v.type.tensor_type.elem_type
                            for v in inferred.graph.value_info if v.name in recorded)
    # and ONNX Runtime ran it: the report's fp16 parity is against PyTorch on the same inputs
    [part] = [p for m in report["models"] for p in m["parts"]]
    assert part["fp16"]["parity"] and part["fp16"]["file"].endswith(".fp16.onnx")
    assert part["fp16"]["parity_ok"] is True
