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


def _float_keys(data, prefix=""):
    """Dotted keys of every float value in a recipe (lists by index), e.g. ``schedule.lr.warmup``."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _float_keys(v, f"{prefix}{k}.")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _float_keys(v, f"{prefix}{i}.")
    elif isinstance(data, float):
        yield prefix[:-1]


@pytest.mark.parametrize("name", sorted(recipe_paths()))
def test_no_recipe_number_accepts_nan_or_infinity(name):
    """Every float a shipped recipe sets (its schema's defaults included) refuses NaN and +-inf by name."""
    import yaml

    data = yaml.safe_load(yaml.safe_dump(load_recipe(name).model_dump(mode="json")))
    keys = [k for k in _float_keys(data) if not k.split(".")[-1].isdigit()]
    assert keys, f"{name}: no float keys found"
    for key in keys:
        for bad in (".nan", ".inf", "-.inf"):
            with pytest.raises(ConfigError) as exc:
                load_recipe(name, [f"{key}={bad}"])
            assert key.split(".")[-1] in str(exc.value), (key, str(exc.value))


@pytest.mark.parametrize("key", ["schedule.lr.initial", "schedule.lr.warmup", "schedule.lr.final", "schedule.min_lr",
                                 "optim.weight_decay", "loss.perceptual", "schedule.weights.reconstruction.final"])
def test_negative_learning_rates_and_weights_are_refused(key):
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        load_recipe("joint-tiny", [f"{key}=-1e-4"])


def test_binary_and_non_utf8_recipe_files_are_config_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"kind: demo\n\x00\x01\x02")
    with pytest.raises(ConfigError, match="is a binary file, not YAML"):
        load_recipe(path)
    path.write_bytes(b"kind: demo\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_recipe(path)
    card = tmp_path / "c.yaml"
    card.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # a picture saved as .yaml: cards read the same way
    with pytest.raises(ConfigError, match="c.yaml: is a binary file"):
        read_yaml(card)
