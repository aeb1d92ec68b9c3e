"""What `fx export-onnx` resolves a target to: the label of a card exported with random weights, a checkpoint
without any card, and a run whose recipe names a published tokenizer instead of saving one."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from faceexpr_cli.errors import UsageError
from faceexpr_cli.onnx.runs import run_sources
from faceexpr_cli.onnx.sources import resolve_sources


def test_a_card_with_random_weights_is_labelled_as_such():
    assert resolve_sources("dinov2-vits14", tiny=True)[1] == "card dinov2-vits14 (tiny, random init)"
    (src,), label = resolve_sources("dinov2-vits14", random_init=True)
    assert label == "card dinov2-vits14 (random init)" and src.weights is None and src.card.name == "dinov2-vits14"


def test_a_checkpoint_without_a_card_says_where_to_put_one(tmp_path):
    bare = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))  # no fx_card in it, no sidecar beside it
    with pytest.raises(UsageError) as err:
        resolve_sources(str(bare))
    assert err.value.message == f"no card for checkpoint {bare}"
    assert err.value.hint == "pass --card NAME or put weights.card.yaml beside it"


def test_a_run_whose_recipe_names_the_published_tokenizer_exports_it(toy_run, toy_models_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    (run / "tokenizer.safetensors").unlink()  # not saved by the run: the recipe says which published one it used
    weights = tmp_path / "published.safetensors"
    weights.write_bytes(b"")  # only located here; it is read when the model loads
    ckpt = run / "checkpoints" / "step_000002"
    (ckpt / "recipe.yaml").write_text(
        f"kind: train-joint\ndata: {{size: 40}}\ntokenizer: {{card: {toy_models_dir / 'toy-tokenizer.yaml'}, "
        f"tiny: true, weights: {weights}}}\n", encoding="utf-8")
    sources = {s.folder or s.card.name: s for s in run_sources(run, all_models=True)}
    tok = sources["tokenizer"]
    assert tok.card.name == "toy-tokenizer" and tok.weights == weights and tok.card.tiny == {}
    assert tok.derive_shapes and tok.export and set(sources) == {"tokenizer", "expression"}
