"""What a card's onnx part means for a model: batch names, callables, output mapping, fixed and dynamic dims,
placeholders (the > 4 rule), and shape checks with their messages, on hand-made cards and tiny modules."""

from __future__ import annotations

import types

import pytest
import torch

from faceexpr_cli.config.cards import InputContract, ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.onnx.parts import (
    BATCH_NAMES,
    PLACEHOLDER,
    ExportError,
    argument_dims,
    check_tensor,
    concrete_card,
    contract_dim,
    dynamic_axes,
    is_batch_dim,
    make_part_module,
    placeholder_card,
    resolve_shape,
    select_callable,
    select_outputs,
)


def spec(name: str, shape: list, dtype: str = "float32") -> TensorSpec:
    return TensorSpec(name=name, shape=shape, dtype=dtype)


def card(parts=(), preset=None, tiny=None, contract: InputContract | None = None) -> ModelCard:
    return ModelCard(name="c", builder="b", description="d", task="t", licence="MIT", preset=preset or {},
                     tiny=tiny or {}, input=contract, onnx=OnnxSpec(parts=list(parts)))


def part(name="p", module="", inputs=None, outputs=None) -> OnnxPart:
    return OnnxPart(name=name, module=module, inputs=inputs or [spec("x", ["batch", 2])],
                    outputs=outputs or [spec("y", ["batch", 2])])


def test_batch_dim_names():
    assert BATCH_NAMES == ("batch", "b", "n", "bs", "batch_size", "frames_batch")
    for name in BATCH_NAMES + ("Batch", "N", "BS", "batch2", "batched_frames"):
        assert is_batch_dim(name), name
    for name in ("frames", "nb", "tokens", "abatch", "", 1, 0):
        assert not is_batch_dim(name), name


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(2, 2)
        self.flag = 3

    def forward(self, x, y):
        return x - y

    def pair(self, a, b):
        return {"diff": a - b, "sum": a + b}


def test_select_callable_walks_the_dotted_path_and_names_what_is_missing():
    net = Net()
    c = card()
    assert select_callable(net, c, part(module="")) is net
    assert select_callable(net, c, part(module="inner")) is net.inner
    assert select_callable(net, c, part(module="inner.forward")) == net.inner.forward
    with pytest.raises(ExportError, match=r"card 'c' part 'p': the model has no 'inner\.nope' \('nope' missing on "
                                          r"Linear\)") as info:
        select_callable(net, c, part(module="inner.nope"))
    assert info.value.hint == "fix onnx.parts[].module in the card"
    with pytest.raises(ExportError, match=r"card 'c' part 'p': 'flag' is not callable"):
        select_callable(net, c, part(module="flag"))


def test_part_module_passes_inputs_by_keyword_when_the_signature_has_them_all():
    """Bug fixed: a whole module's signature is ``(*args, **kwargs)``, so its inputs always went positionally in
    card order, even when forward names every input (a card listing them in another order got them swapped)."""
    net = Net()
    c = card()
    x, y = torch.tensor([5.0]), torch.tensor([2.0])
    # card order (y, x) differs from the signature (x, y): by keyword, forward still gets x=x, y=y
    by_name = make_part_module(net, c, part(inputs=[spec("y", [1]), spec("x", [1])], outputs=[spec("out", [1])]))
    assert by_name(y, x)[0].item() == 3.0 and by_name.in_names == ["y", "x"] and by_name.out_names == ["out"]
    # names the signature lacks: positionally in card order
    positional = make_part_module(net, c, part(inputs=[spec("u", [1]), spec("v", [1])], outputs=[spec("o", [1])]))
    assert positional(y, x)[0].item() == -3.0
    method = make_part_module(net, c, part(module="pair", inputs=[spec("b", [1]), spec("a", [1])],
                                           outputs=[spec("sum", [1]), spec("diff", [1])]))
    s, d = method(y, x)
    assert (s.item(), d.item()) == (7.0, 3.0)
    assert method.inner is net and not method.training  # a bound method: the model is registered, in eval mode
    sub = make_part_module(net, c, part(module="inner"))
    assert sub.inner is net.inner


def test_keyword_detection_on_callables_without_a_signature():
    c = card()
    m = make_part_module(types.SimpleNamespace(f=torch.neg), c, part(module="f", inputs=[spec("input", [1])],
                                                                      outputs=[spec("y", [1])]))
    assert m(torch.tensor([2.0]))[0].item() == -2.0


def test_select_outputs_maps_every_result_kind_or_says_why_not():
    c, p = card(), part()
    t = torch.zeros(1)
    assert select_outputs({"b": 2, "a": 1}, ["a", "b"], c, p) == (1, 2)
    with pytest.raises(ExportError, match=r"card 'c' part 'p': outputs \['z'\] not in the module's result "
                                          r"\(it has \['a', 'b'\]\)"):
        select_outputs({"b": 2, "a": 1}, ["a", "z"], c, p)
    assert select_outputs([1, 2], ["a", "b"], c, p) == (1, 2)
    assert select_outputs((1,), ["a"], c, p) == (1,)
    with pytest.raises(ExportError, match="the module returns 3 values, the card lists 2 outputs"):
        select_outputs((1, 2, 3), ["a", "b"], c, p)
    assert select_outputs(t, ["a"], c, p) == (t,)
    with pytest.raises(ExportError, match="the module returns one tensor, the card lists 2 outputs"):
        select_outputs(t, ["a", "b"], c, p)
    assert select_outputs(types.SimpleNamespace(a=1, b=2), ["b", "a"], c, p) == (2, 1)
    with pytest.raises(ExportError, match=r"cannot map a SimpleNamespace result onto outputs \['a', 'c'\]"):
        select_outputs(types.SimpleNamespace(a=1, b=2), ["a", "c"], c, p)


def test_argument_dims_are_the_int_arguments_tiny_laid_over_the_preset():
    c = card(preset={"dim": 32, "heads": 4, "ratio": 0.5, "flag": True, "name": "x"}, tiny={"dim": 8})
    assert argument_dims(c, tiny=False) == {"dim": 32, "heads": 4}
    assert argument_dims(c, tiny=True) == {"dim": 8, "heads": 4}


def test_contract_dim_takes_height_width_and_frames_from_the_input_contract():
    square = card(contract=InputContract(size=24, frames=5))
    for name in ("height", "H", "size", "image_height", "img_h", "width", "w", "image_width", "img_w"):
        assert contract_dim(square, name) == 24, name
    rect = card(contract=InputContract(size=[20, 30]))
    assert [contract_dim(rect, n) for n in ("height", "h", "size", "img_h")] == [20, 20, 20, 20]
    assert [contract_dim(rect, n) for n in ("width", "W", "img_w", "image_width")] == [30, 30, 30, 30]
    for name in ("frames", "t", "Time", "num_frames"):
        assert contract_dim(square, name) == 5, name
    assert contract_dim(rect, "frames") is None  # the contract fixes no frame count
    assert contract_dim(card(contract=InputContract(frames=5)), "height") is None  # nor a size
    assert contract_dim(square, "tokens") is None
    assert contract_dim(card(), "height") is None  # no contract at all


def test_resolve_shape_in_order_bound_argument_batch_contract():
    c = card(preset={"dim": 16, "batch": 9}, contract=InputContract(size=[6, 8]))
    s = spec("x", [2, "dim", "batch", "height", "width"])
    assert resolve_shape(s, c, False, batch=3) == [2, 16, 9, 6, 8]  # an argument named batch wins over the batch
    assert resolve_shape(s, c, False, batch=3, bound={"dim": 5, "height": 1}) == [2, 5, 9, 1, 8]
    assert resolve_shape(spec("x", ["n", "tokens"]), c, False, batch=3) is None
    assert resolve_shape(spec("x", ["n", "tokens"]), c, False, 3, {"tokens": 7}) == [3, 7]
    assert resolve_shape(spec("x", ["bs"]), card(), False, batch=4) == [4]


def test_dynamic_axes_leave_out_argument_dims_ints_and_placeholders():
    c = card(preset={"dim": 16}, tiny={"depth": 2})
    s = spec("x", ["batch", 3, "dim", "depth", f"{PLACEHOLDER}p.x.4", "tokens"])
    assert dynamic_axes(s, c, tiny=False) == {0: "batch", 3: "depth", 5: "tokens"}
    assert dynamic_axes(s, c, tiny=True) == {0: "batch", 5: "tokens"}


def test_placeholder_card_turns_sizes_above_4_into_placeholders_and_concrete_card_fills_them():
    p = part(name="enc", inputs=[spec("x", ["batch", 4, 5, 1])], outputs=[spec("y", [3, 100])])
    c = card([p])
    ph = placeholder_card(c)
    pp = ph.onnx.parts[0]
    assert pp.inputs[0].shape == ["batch", 4, "_fx:enc.x.2", 1]  # 4 stays checked, 5 is observed
    assert pp.outputs[0].shape == [3, "_fx:enc.y.1"]
    assert c.onnx.parts[0].inputs[0].shape == ["batch", 4, 5, 1]  # the original is untouched
    filled = concrete_card(ph, {"enc": {"x": (2, 4, 11, 1)}})
    assert filled.onnx.parts[0].inputs[0].shape == ["batch", 4, 11, 1]
    assert filled.onnx.parts[0].outputs[0].shape == [3, "_fx:enc.y.1"]  # not observed: stays a placeholder
    assert concrete_card(ph, {}).onnx.parts[0].inputs[0].shape == pp.inputs[0].shape
    bare = ModelCard(name="n", builder="b", description="d", task="t", licence="MIT")
    assert placeholder_card(bare) is bare and concrete_card(bare, {}) is bare


def test_check_tensor_binds_named_dims_and_names_the_misfit():
    c = card(preset={"dim": 4})
    s = spec("x", ["batch", "dim", 3])
    bound: dict[str, int] = {}
    check_tensor(s, (2, 4, 3), c, False, "here", bound)
    assert bound == {"batch": 2, "dim": 4}
    check_tensor(s, (2, 4, 3), c, False, "here", bound)  # agrees with what was bound
    with pytest.raises(ExportError, match=r"here: 'x' has shape \[5, 4, 3\], the card says \['batch', 'dim', 3\] "
                                          r"\(batch = 2\)"):
        check_tensor(s, (5, 4, 3), c, False, "here", bound)
    with pytest.raises(ExportError, match=r"\(dim = 4\)"):
        check_tensor(s, (2, 5, 3), c, False, "here", {})
    with pytest.raises(ExportError, match=r"\(3 = 3\)"):
        check_tensor(s, (2, 4, 2), c, False, "here", {})
    with pytest.raises(ExportError, match=r"here: 'x' has shape \[2, 4\], the card says \['batch', 'dim', 3\]$"):
        check_tensor(s, (2, 4), c, False, "here", {})
    fresh: dict[str, int] = {"batch": 7}
    with pytest.raises(ExportError):
        check_tensor(s, (2, 4, 3), c, False, "here", fresh)
