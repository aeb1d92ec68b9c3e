"""Builder for First Order Motion Model cards, and reading an original FOMM YAML as a card's preset.

A card's preset holds the original ``model_params`` sections as they are (``common_params``,
``kp_detector_params``, ``generator_params``, ``discriminator_params``), so any original config maps onto a card
without translation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceexpr_cli.builders import BUILDERS
from faceexpr_cli.errors import ConfigError

SECTIONS = ("common_params", "kp_detector_params", "generator_params", "discriminator_params")


@BUILDERS.register("fomm")
def build_fomm(common_params: dict[str, Any], kp_detector_params: dict[str, Any], generator_params: dict[str, Any],
               discriminator_params: dict[str, Any] | None = None, with_discriminator: bool = False):
    from faceexpr_cli.nn.fomm import FirstOrderModel

    try:
        return FirstOrderModel(common_params, kp_detector_params, generator_params, discriminator_params,
                               with_discriminator=with_discriminator)
    except TypeError as exc:  # an unknown or missing key in a params section
        raise ConfigError(f"FOMM model parameters do not fit: {exc}") from exc


def is_original_config(data: dict[str, Any]) -> bool:
    return isinstance(data.get("model_params"), dict) and "builder" not in data


def preset_from_original(data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """The card preset for an original FOMM YAML (its ``model_params``), checked for the required sections."""
    params = data.get("model_params")
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: no 'model_params' section", "pass an original FOMM YAML or a model card")
    missing = [s for s in SECTIONS[:3] if not isinstance(params.get(s), dict)]
    if missing:
        raise ConfigError(f"{source}: model_params lacks {', '.join(missing)}")
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown model_params sections {', '.join(unknown)}", f"known: {SECTIONS}")
    return {k: params[k] for k in SECTIONS if k in params}


def card_for_config(config: str | Path | None, base: str = "fomm-vox256"):
    """A FOMM card from a card name/path or an original FOMM YAML (whose model_params replace the preset)."""
    from faceexpr_cli.config.cards import card_from_dict, load_card
    from faceexpr_cli.config.yaml_io import read_yaml

    if config is None:
        return load_card(base)
    path = Path(config)
    if path.suffix in (".yaml", ".yml") and path.exists():
        data = read_yaml(path)
        if is_original_config(data):
            card = load_card(base)
            merged = card.model_dump()
            merged["name"] = f"{card.name}@{path.stem}"
            merged["preset"] = preset_from_original(data, str(path))
            return card_from_dict(merged, str(path))
    return load_card(config)


@BUILDERS.register("tps-warp")
def build_tps_warp(num_points: int = 104, grid_size: int = 96):
    """The landmarks engine's exportable warp (no weights): see ``nn.tps.TPSWarp``."""
    from faceexpr_cli.nn.tps import TPSWarp

    return TPSWarp(num_points=num_points, grid_size=grid_size)


@BUILDERS.register("vgg19-features")
def build_vgg19(requires_grad: bool = False):
    """VGG19 up to relu5_1 for FOMM's perceptual loss (weights: the vgg19-imagenet card)."""
    from faceexpr_cli.nn.vgg19 import VGG19Features

    return VGG19Features(requires_grad=requires_grad)
