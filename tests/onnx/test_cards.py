"""Every shipped card with an ``onnx:`` section exports: tiny variant, onnx.checker, ORT parity, dynamic batch.

The parameters are read from ``models/`` when the tests are collected, so a new card is tested the day it lands.
A card that is known to fail may be listed in ``KNOWN_FAILURES`` with a reason naming the card; the mark is
strict, so the entry has to go once the card is fixed.
"""

from __future__ import annotations

import pytest

from faceexpr_cli.config.cards import list_cards, load_card

KNOWN_FAILURES: dict[str, str] = {}


def _onnx_cards() -> list[str]:
    return [name for name in list_cards() if (card := load_card(name)).onnx and card.onnx.parts]


CARDS = _onnx_cards()


def test_cards_with_onnx_parts_exist_and_have_tiny_arguments():
    assert len(CARDS) >= 2, "models/ has no exportable card: the parametrised export test below ran nothing"
    for name in CARDS:
        card = load_card(name)
        assert card.tiny or not card.preset, f"{name}: an exportable card needs tiny test arguments"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[n], strict=True)) if n in KNOWN_FAILURES else n
     for n in CARDS],
)
def test_card_exports_with_parity(name, tmp_path):
    import numpy as np
    import onnxruntime as ort
    import torch

    from faceexpr_cli.builders import build_model
    from faceexpr_cli.onnx.export import ExportOptions, ModelSource, export_models, failure_line
    from faceexpr_cli.onnx.inputs import Feeder
    from faceexpr_cli.onnx.parts import make_part_module

    card = load_card(name)
    torch.manual_seed(0)
    built = build_model(card, tiny=True).eval()
    opts = ExportOptions(tiny=True, simplify=False, sample_check=False, latency_runs=1)
    report = export_models([ModelSource(card, model=built)], tmp_path, opts, raise_on_failure=False)
    assert report["ok"], failure_line(report)
    model = report["models"][0]
    assert [p["name"] for p in model["parts"]] == [p.name for p in card.onnx.parts]
    for part in model["parts"]:
        assert (tmp_path / part["file"]).is_file()
        checks = {c["check"]: c for c in part["parity"]}
        assert {"random", "batch-1", "batch-3"} <= set(checks), f"{name}.{part['name']}: dynamic batch unchecked"
    # Parity recomputed here, not read from the report: other inputs (batch 3, another seed) through PyTorch and
    # through each written graph, compared with the card's own tolerance.
    feeder = Feeder("random", 3, seed=11)
    for part in card.onnx.parts:
        inputs, _, _ = feeder.inputs_for(built, card, part, tiny=True)
        module = make_part_module(built, card, part)
        with torch.inference_mode():
            want = dict(zip(module.out_names, module(*[v.clone() for v in inputs.values()]), strict=True))
        feeder.add_outputs(card, part, want)
        sess = ort.InferenceSession(str(tmp_path / f"{part.name}.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(list(want), {k: v.numpy() for k, v in inputs.items()})
        for (out_name, ref), value in zip(want.items(), got, strict=True):
            np.testing.assert_allclose(value, ref.float().numpy(), atol=part.atol, rtol=part.rtol,
                                       err_msg=f"{name}.{part.name}.{out_name}")
