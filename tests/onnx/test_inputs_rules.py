"""Where each part's check inputs come from (model hook, upstream output by name or shape, images, noise), the
seeded noise per dtype, image detection, and the messages for sizes nobody gives, on hand-made cards."""

from __future__ import annotations

import types
import zlib

import numpy as np
import pytest
import torch

from faceexpr_cli.config.cards import InputContract, ModelCard, OnnxPart, OnnxSpec, TensorSpec
from faceexpr_cli.onnx.inputs import Feeder, _fits, _is_image
from faceexpr_cli.onnx.parts import ExportError


def spec(name, shape, dtype="float32"):
    return TensorSpec(name=name, shape=shape, dtype=dtype)


def part(inputs, outputs=None, name="p"):
    return OnnxPart(name=name, inputs=inputs, outputs=outputs or [spec("out", ["batch"])])


def card(name="c", preset=None, contract=None):
    return ModelCard(name=name, builder="b", description="d", task="t", licence="MIT", preset=preset or {},
                     input=contract, onnx=OnnxSpec())


NO_HOOK = types.SimpleNamespace()


def test_noise_is_seeded_per_card_and_input_and_follows_the_dtype():
    c = card(preset={"dim": 6})
    p = part([spec("x", ["batch", "dim"]), spec("h", [2, 3], "float16"), spec("m", [40], "bool"),
              spec("u", [200], "uint8"), spec("i", [50], "int64"), spec("j", [50], "int32")])
    values, sources, bound = Feeder("random", 3, seed=2).inputs_for(NO_HOOK, c, p, tiny=False)
    assert list(values) == ["x", "h", "m", "u", "i", "j"] and set(sources.values()) == {"fixed-seed noise"}
    assert bound == {"batch": 3, "dim": 6}
    g = torch.Generator().manual_seed(2 * 1_000_003 + zlib.crc32(b"noise/c/x"))  # the documented seeding
    torch.testing.assert_close(values["x"], torch.randn([3, 6], generator=g))
    assert values["h"].dtype == torch.float16 and values["h"].shape == (2, 3)
    assert values["m"].dtype == torch.bool and values["m"].any() and not values["m"].all()
    assert values["u"].dtype == torch.uint8 and values["u"].max() > 1  # uint8 spans 0..255
    for k, dt in (("i", torch.int64), ("j", torch.int32)):
        assert values[k].dtype == dt and set(values[k].tolist()) == {0, 1}  # ids: 0 or 1
    again, _, _ = Feeder("sample", 3, seed=2).inputs_for(NO_HOOK, c, p, tiny=False)
    torch.testing.assert_close(again["x"], values["x"])  # the seed, not the kind, decides noise
    other, _, _ = Feeder("random", 3, seed=3).inputs_for(NO_HOOK, c, p, tiny=False)
    assert not torch.equal(other["x"], values["x"])


def test_the_models_hook_comes_first():
    calls = []

    def hook(name, batch):
        calls.append((name, batch))
        return {"ids": np.array([4, 2])}

    c = card()
    p = part([spec("ids", ["batch"], "int64"), spec("x", ["batch", 2])])
    values, sources, bound = Feeder("random", 2).inputs_for(types.SimpleNamespace(onnx_example_inputs=hook), c, p,
                                                            False)
    assert calls == [("p", 2)] and values["ids"].tolist() == [4, 2]
    assert sources == {"ids": "model.onnx_example_inputs", "x": "fixed-seed noise"}
    nothing = types.SimpleNamespace(onnx_example_inputs=lambda name, batch: None)
    assert Feeder("random", 2).inputs_for(nothing, c, p, False)[1]["ids"] == "fixed-seed noise"
    # the hook's batch of 3 binds "batch": the noise input after it follows, whatever the feeder's batch
    three = types.SimpleNamespace(onnx_example_inputs=lambda n, b: {"ids": [1, 2, 3]})
    values, _, bound = Feeder("random", 2).inputs_for(three, c, p, False)
    assert values["x"].shape == (3, 2) and bound == {"batch": 3}


def test_upstream_outputs_by_name_then_by_shape_rolled_for_a_second_input():
    up, down = card("up"), card("down")
    f = Feeder("random", 2)
    first, second = torch.tensor([[1.0], [2.0]]), torch.tensor([[5.0], [6.0]])
    f.add_outputs(up, part([], name="a"), {"feat": first})
    f.add_outputs(up, part([], name="b"), {"feat": second})
    values, sources, _ = f.inputs_for(NO_HOOK, down, part([spec("feat", ["batch", 1])]), False)
    assert values["feat"] is second and sources["feat"] == "up.b.feat"  # the latest of that name, any model
    # by shape: only this model's outputs; a second input from the same output is rolled by one
    f.add_outputs(down, part([], name="enc"), {"kp": torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])})
    f.batch = 3
    values, sources, _ = f.inputs_for(NO_HOOK, down, part([spec("src", ["batch", 2]), spec("drv", ["batch", 2])]),
                                      False)
    assert values["src"][:, 0].tolist() == [1.0, 2.0, 3.0] and values["drv"][:, 0].tolist() == [3.0, 1.0, 2.0]
    assert sources == {"src": "down.enc.kp", "drv": "down.enc.kp (rolled 1)"}
    # another model's output of that shape does not feed it
    _, sources, _ = Feeder("random", 3, produced=list(f.produced)).inputs_for(
        NO_HOOK, card("third"), part([spec("src", ["batch", 2])]), False)
    assert sources == {"src": "fixed-seed noise"}


def test_by_shape_needs_one_distinct_candidate_of_the_same_dtype():
    c = card()
    f = Feeder("random", 2)
    f.add_outputs(c, part([], name="a"), {"u": torch.zeros(2, 4)})
    f.add_outputs(c, part([], name="b"), {"v": torch.ones(2, 4)})
    assert f.inputs_for(NO_HOOK, c, part([spec("w", ["batch", 4])]), False)[1]["w"] == "fixed-seed noise"
    assert f.inputs_for(NO_HOOK, c, part([spec("w", ["batch", 4], "int64")]), False)[1]["w"] == "fixed-seed noise"
    one = Feeder("random", 2)
    shared = torch.zeros(2, 4)
    one.add_outputs(c, part([], name="a"), {"u": shared, "again": shared})  # the same tensor twice: one candidate
    assert one.inputs_for(NO_HOOK, c, part([spec("w", ["batch", 4])]), False)[1]["w"] == "c.a.u"
    # a dim no one can size is matched by rank and fixed dims
    open_dim = Feeder("random", 2)
    open_dim.add_outputs(c, part([], name="a"), {"u": torch.zeros(2, 7)})
    assert open_dim.inputs_for(NO_HOOK, c, part([spec("w", ["batch", "tokens"])]), False)[1]["w"] == "c.a.u"
    assert open_dim.inputs_for(NO_HOOK, c, part([spec("w", ["batch", 8])]), False)[1]["w"] == "fixed-seed noise"


def test_fits():
    assert _fits((2, 3), ["b", 3], [2, 3]) and not _fits((2, 3), ["b", 3], [2, 4])
    assert _fits((2, 3), ["b", "t"], None) and _fits((2, 3), ["b", 3], None)
    assert not _fits((2, 3), ["b", 4], None) and not _fits((2, 3), ["b"], None) and not _fits((2,), ["b", 3], None)


def test_is_image_by_layout_rank_channels_and_dtype():
    rgb = card(contract=InputContract(layout="NCHW"))
    assert _is_image(spec("x", ["b", 3, "h", "w"]), rgb)
    assert _is_image(spec("x", ["b", "channels", "h", "w"]), rgb) and _is_image(spec("x", ["b", "c", 8, 8]), rgb)
    assert not _is_image(spec("x", ["b", 1, "h", "w"]), rgb) and not _is_image(spec("x", ["b", 3, "h"]), rgb)
    assert not _is_image(spec("x", ["b", 3, "h", "w"], "float16"), rgb)
    assert not _is_image(spec("x", ["b", 3, "h", "w"]), card())  # no input contract
    gray = card(contract=InputContract(layout="NCHW", color="GRAY"))
    assert _is_image(spec("x", ["b", 1, "h", "w"]), gray) and not _is_image(spec("x", ["b", 3, "h", "w"]), gray)
    assert _is_image(spec("x", ["b", "h", "w", 3]), card(contract=InputContract(layout="NHWC")))
    assert not _is_image(spec("x", ["b", 3, "h", "w"]), card(contract=InputContract(layout="NHWC")))
    assert _is_image(spec("x", ["b", "t", 3, "h", "w"]), card(contract=InputContract(layout="NTCHW")))
    assert not _is_image(spec("x", ["b", 3]), card(contract=InputContract(layout="NC")))


def test_images_take_their_size_from_the_contract_and_come_prepared():
    c = card(contract=InputContract(size=[6, 10], layout="NCHW", value_range=(-1.0, 1.0)))
    p = part([spec("a", ["batch", 3, "height", "width"]), spec("b", ["batch", 3, "h2", "w2"])])
    values, sources, bound = Feeder("random", 2).inputs_for(NO_HOOK, c, p, False)
    assert values["a"].shape == values["b"].shape == (2, 3, 6, 10)
    assert sources == {"a": "random images", "b": "random images"}
    assert bound == {"batch": 2, "height": 6, "width": 10, "h2": 6, "w2": 10}
    assert values["a"].dtype == torch.float32 and values["a"].min() >= -1.0 and values["a"].max() <= 1.0
    assert values["a"].min() < -0.9 and values["a"].max() > 0.9  # uint8 noise over the whole range
    assert not torch.equal(values["a"], values["b"])  # each image input its own pixels
    again = Feeder("random", 2).inputs_for(NO_HOOK, c, p, False)[0]
    torch.testing.assert_close(again["a"], values["a"])


def test_sample_images_cycle_the_portraits_and_move_on_for_each_image_input():
    from faceexpr_cli.onnx.preprocess import prepare_images, sample_faces

    c = card(contract=InputContract(size=8, layout="NHWC"))
    p = part([spec("a", ["batch", "h", "w", 3]), spec("b", ["batch", "h", "w", 3])])
    values, sources, _ = Feeder("sample", 3).inputs_for(NO_HOOK, c, p, False)
    assert sources == {"a": "sample images", "b": "sample images"}
    astro, grace = (prepare_images(sample_faces((8, 8), [n]), c.input)[0] for n in ("astronaut", "grace_hopper"))
    got_a, got_b = values["a"].numpy(), values["b"].numpy()
    for got, want in ((got_a, [astro, grace, astro]), (got_b, [grace, astro, grace])):
        np.testing.assert_allclose(got, np.stack(want), atol=1e-6)


def test_video_inputs_get_frames_from_the_contract():
    c = card(contract=InputContract(size=4, layout="NTCHW", frames=3))
    values, _, _ = Feeder("random", 2).inputs_for(NO_HOOK, c, part([spec("v", ["batch", "frames", 3, "h", "w"])]),
                                                  False)
    assert values["v"].shape == (2, 3, 3, 4, 4)


def test_sizes_nobody_gives_are_named():
    c = card()
    with pytest.raises(ExportError, match=r"^card 'c' part 'p' input 'x': no size for the named dims "
                                          r"\['batch', 'tokens'\] of \['batch', 'tokens'\]$") as info:
        Feeder("random", 2).inputs_for(NO_HOOK, c, part([spec("x", ["batch", "tokens"])]), False)
    assert "onnx_example_inputs(part, batch)" in info.value.hint
    with pytest.raises(ExportError, match=r"input 'x': its sizes depend on the arguments this model was trained "
                                          r"with and no earlier model feeds it") as info:
        Feeder("random", 2).inputs_for(NO_HOOK, c, part([spec("x", ["batch", "_fx:p.x.1"])]), False)
    assert "--model expression" in info.value.hint
    img = card(contract=InputContract(layout="NCHW"))  # an image with no size anywhere
    with pytest.raises(ExportError, match=r"card 'c' input 'im': no size for the named dims"):
        Feeder("random", 2).inputs_for(NO_HOOK, img, part([spec("im", ["batch", 3, "height", "width"])]), False)


def test_check_outputs_names_a_pytorch_output_that_misfits_the_card():
    c = card(preset={"dim": 4})
    p = part([spec("x", ["batch"])], [spec("y", ["batch", "dim"])])
    Feeder.check_outputs(c, p, False, {"y": torch.zeros(2, 4)}, {"batch": 2})
    with pytest.raises(ExportError, match=r"^card 'c' part 'p' \(PyTorch output\): 'y' has shape \[2, 5\], the card "
                                          r"says \['batch', 'dim'\] \(dim = 4\)$"):
        Feeder.check_outputs(c, p, False, {"y": torch.zeros(2, 5)}, {"batch": 2})
