"""Builder for LivePortrait cards, and an original ``models.yaml`` (its ``model_params``) as a card's preset.

A card's preset holds the five ``*_params`` sections as the original ``src/config/models.yaml`` writes them (the
motion extractor may carry ConvNeXtV2 ``depths``/``dims``), plus a few plain ints that name the tensor sizes the
ONNX parts use (``size``, ``num_kp``, ``feature_*``, ``warped_channels``, ``output_size``). The builder checks
those ints against what the sections imply, so a card cannot describe graphs its model does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceexpr_cli.builders import BUILDERS
from faceexpr_cli.errors import ConfigError

SECTIONS = ("appearance_feature_extractor_params", "motion_extractor_params", "warping_module_params",
            "spade_generator_params", "stitching_retargeting_module_params")
SIZES = ("size", "num_kp", "feature_channels", "feature_depth", "feature_size", "warped_channels", "output_size")


def implied_sizes(sections: dict[str, Any], size: int) -> dict[str, int]:
    """The tensor sizes a ``model_params`` dict gives for ``size`` x ``size`` input images."""
    app = sections["appearance_feature_extractor_params"]
    warp = sections["warping_module_params"]
    spade = sections["spade_generator_params"]
    down = int(app.get("num_down_blocks", 2))
    channels = int(app.get("reshape_channel", 32))
    upscale = int(spade.get("upscale", 1) or 1)
    return {"size": size, "num_kp": int(sections["motion_extractor_params"].get("num_kp", 21)),
            "feature_channels": channels, "feature_depth": int(app.get("max_features", 512)) // channels,
            "feature_size": size // 2 ** down,
            "warped_channels": int(warp.get("block_expansion", 64)) * 2 ** int(warp.get("num_down_blocks", 2)),
            "output_size": size // 2 ** down * 4 * (2 if upscale > 1 else 1)}


@BUILDERS.register("liveportrait")
def build_liveportrait(appearance_feature_extractor_params: dict[str, Any], motion_extractor_params: dict[str, Any],
                       warping_module_params: dict[str, Any], spade_generator_params: dict[str, Any],
                       stitching_retargeting_module_params: dict[str, Any] | None = None, size: int = 256,
                       **sizes: int):
    from faceexpr_cli.nn.liveportrait import LivePortrait

    sections = {"appearance_feature_extractor_params": appearance_feature_extractor_params,
                "motion_extractor_params": motion_extractor_params, "warping_module_params": warping_module_params,
                "spade_generator_params": spade_generator_params}
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        raise ConfigError(f"LivePortrait card: unknown arguments {', '.join(unknown)}", f"known: {SIZES + SECTIONS}")
    implied = implied_sizes(sections, size)
    wrong = [f"{k} {v} (the sections give {implied[k]})" for k, v in sizes.items() if implied[k] != v]
    if wrong:
        raise ConfigError(f"LivePortrait card: sizes do not fit its model_params: {', '.join(wrong)}")
    try:
        return LivePortrait(**sections, stitching_retargeting_module_params=stitching_retargeting_module_params)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"LivePortrait model parameters do not fit: {exc}") from exc


def preset_from_original(data: dict[str, Any], source: str, size: int) -> dict[str, Any]:
    """The card preset for an original LivePortrait ``models.yaml`` (``model_params``) at ``size`` px."""
    params = data.get("model_params")
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: no 'model_params' section", "pass an original LivePortrait models.yaml")
    missing = [s for s in SECTIONS[:4] if not isinstance(params.get(s), dict)]
    if missing:
        raise ConfigError(f"{source}: model_params lacks {', '.join(missing)}")
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown model_params sections {', '.join(unknown)}", f"known: {SECTIONS}")
    preset = {k: params[k] for k in SECTIONS if k in params}
    return {**preset, **implied_sizes(preset, size)}


def card_for_config(config: str | Path | None, size: int | None = None, base: str = "liveportrait"):
    """A LivePortrait card from a card name/path or an original ``models.yaml`` (its model_params replace the
    preset; ``size`` is the input size the parts then take, default the card's)."""
    from faceexpr_cli.config.cards import card_from_dict, load_card
    from faceexpr_cli.config.yaml_io import read_yaml

    card = load_card(base if config is None else config) if config is None or not _is_yaml(config) else None
    if card is None:
        path = Path(str(config))
        data = read_yaml(path)
        if "model_params" not in data or "builder" in data:
            card = load_card(path)
        else:
            base_card = load_card(base)
            merged = base_card.model_dump()
            merged["name"] = f"{base_card.name}@{path.stem}"
            merged["preset"] = preset_from_original(data, str(path), int(size or base_card.preset["size"]))
            merged["tiny"] = {}
            merged["input"] = {**(merged["input"] or {}), "size": merged["preset"]["size"]}
            return card_from_dict(merged, str(path))
    if size and size != card.preset.get("size"):
        preset = {**card.preset, **implied_sizes(card.preset, int(size))}
        card = card.model_copy(update={"preset": preset,
                                       "input": card.input.model_copy(update={"size": int(size)})
                                       if card.input else None})
    return card


def _is_yaml(config: str | Path) -> bool:
    path = Path(str(config))
    return path.suffix in (".yaml", ".yml") and path.is_file()
