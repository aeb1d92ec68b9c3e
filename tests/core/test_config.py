"""Every shipped model card and recipe validates; the loaders' errors name the file and key."""

from __future__ import annotations

import pytest

from faceexpr_cli.config.cards import ModelCard, card_paths, load_card
from faceexpr_cli.config.recipes import SCHEMAS, load_recipe, recipe_launch_line, recipe_paths
from faceexpr_cli.config.yaml_io import read_yaml
from faceexpr_cli.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize("name", sorted(card_paths()))
def test_every_card_validates(name):
    card = load_card(name)
    assert isinstance(card, ModelCard)
    assert card.name == name, "a card's name must match its file name"
    assert card.licence.strip()
    for ws in card.weights:
        assert ws.licence.strip() and ws.filename.strip()
        if ws.sha256:
            assert len(ws.sha256) == 64 and int(ws.sha256, 16) >= 0


def test_every_builder_named_by_a_torch_card_is_registered():
    from faceexpr_cli.builders import BUILDERS

    for name, path in card_paths().items():
        card = load_card(path)
        if card.onnx and card.onnx.parts:
            assert card.builder in BUILDERS, f"{name}: builder '{card.builder}' is not registered"


@pytest.mark.parametrize("name", sorted(recipe_paths()))
def test_every_recipe_validates_and_shows_its_launch_command(name):
    path = recipe_paths()[name]
    kind = read_yaml(path)["kind"]
    assert kind in SCHEMAS.names()
    recipe = load_recipe(name)
    assert recipe.kind == kind
    launch = recipe_launch_line(path)
    assert launch and launch.startswith("fx "), f"{path} must start with a comment showing how to launch it"


def test_card_overrides_and_unknown_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("FX_MODELS_DIR", str(tmp_path))
    (tmp_path / "toy.yaml").write_text(
        "name: toy\nbuilder: toy\ndescription: d\ntask: t\nlicence: MIT\npreset: {dim: 8}\ntiny: {dim: 2}\n"
    )
    card = load_card("toy", ["preset.dim=16"])
    assert card.arguments() == {"dim": 16} and card.arguments(tiny=True) == {"dim": 2}
    (tmp_path / "bad.yaml").write_text("name: bad\nbuilder: b\ndescription: d\ntask: t\nlicence: MIT\nsize: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'size'") as exc:
        load_card("bad")
    assert "bad.yaml" in str(exc.value)
    with pytest.raises(UnknownNameError):
        load_card("missing")


def test_recipe_kind_mismatch(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# fx demo\nkind: demo\n")
    with pytest.raises(ConfigError, match="needs a 'train-joint' recipe"):
        load_recipe(path, kind="train-joint")
