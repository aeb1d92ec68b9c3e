"""Inputs for exporting and checking each part: real face images, upstream outputs, a model hook, or fixed noise.

A part's inputs are found in this order, so that every check runs on values the part meets in use:
1. ``model.onnx_example_inputs(part, batch)`` when the model defines it (e.g. valid subject ids);
2. an output of an earlier part with the same name (across models too: a run's tokenizer feeds its expression
   transformer), else the one earlier output of this model with the same shape and dtype;
3. for image-like inputs (per the card's input contract): the portraits' face crops ("sample") or random pixels
   ("random"), through the shared ``prepare_images``;
4. fixed-seed noise (floats ~ N(0, 1), ints in {0, 1}).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceexpr_cli.config.cards import ModelCard, OnnxPart, TensorSpec
from faceexpr_cli.onnx.parts import PLACEHOLDER, ExportError, check_tensor, resolve_shape
from faceexpr_cli.onnx.preprocess import SAMPLE_PORTRAITS, contract_size, prepare_images, sample_faces

_CHANNELS_AXIS = {"NCHW": (4, 1), "NHWC": (4, 3), "NTCHW": (5, 2)}


@dataclass
class Produced:
    name: str
    value: Any  # torch.Tensor
    producer: str  # "<card>.<part>"
    model: str


@dataclass
class Feeder:
    """Makes one check's inputs (``kind`` random|sample at ``batch``); keeps what each part produced."""

    kind: str
    batch: int
    seed: int = 0
    produced: list[Produced] = field(default_factory=list)

    def _rng(self, *key: str):
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32("/".join(key).encode()))
        return g

    def add_outputs(self, card: ModelCard, part: OnnxPart, outputs: dict[str, Any]) -> None:
        for name, value in outputs.items():
            self.produced.append(Produced(name, value, f"{card.name}.{part.name}", card.name))

    def inputs_for(self, model: Any, card: ModelCard, part: OnnxPart,
                   tiny: bool) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
        """Tensors for each input in card order, where each came from, and the sizes named dims took."""
        import torch

        hook = getattr(model, "onnx_example_inputs", None)
        given = dict(hook(part.name, self.batch) or {}) if callable(hook) else {}
        where = f"card '{card.name}' part '{part.name}'"
        bound: dict[str, int] = {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        image_index = 0
        reuse: dict[int, int] = {}
        for spec in part.inputs:
            if spec.name in given:
                value, source = torch.as_tensor(given[spec.name]), "model.onnx_example_inputs"
            elif (up := self._upstream(card, spec, tiny, bound)) is not None:
                # A second input fed from the same output gets the next sample's value (batch rolled by one),
                # e.g. FOMM's driving key points come from another face than the source's.
                k = reuse[id(up.value)] = reuse.get(id(up.value), -1) + 1
                value = up.value.roll(k, dims=0) if k else up.value
                source = up.producer + "." + up.name + (f" (rolled {k})" if k else "")
            elif _is_image(spec, card):
                value, source = self._images(spec, card, tiny, bound, image_index), f"{self.kind} images"
                image_index += 1
            else:
                value, source = self._noise(spec, card, tiny, bound, where), "fixed-seed noise"
            check_tensor(spec, tuple(value.shape), card, tiny, where, bound)
            values[spec.name] = value
            sources[spec.name] = source
        return values, sources, bound

    @staticmethod
    def check_outputs(card: ModelCard, part: OnnxPart, tiny: bool, outputs: dict[str, Any],
                      bound: dict[str, int]) -> None:
        """PyTorch's outputs against the card, so a wrong card shape is named before anything is exported."""
        where = f"card '{card.name}' part '{part.name}' (PyTorch output)"
        for spec in part.outputs:
            check_tensor(spec, tuple(outputs[spec.name].shape), card, tiny, where, bound)

    def _upstream(self, card: ModelCard, spec: TensorSpec, tiny: bool, bound: dict[str, int]) -> Produced | None:
        named = [p for p in self.produced if p.name == spec.name]
        if named:
            return named[-1]
        shape = resolve_shape(spec, card, tiny, self.batch, bound)
        same = [p for p in self.produced if p.model == card.name and _dtype(p.value) == spec.dtype
                and _fits(tuple(p.value.shape), spec.shape, shape)]
        distinct = {id(p.value) for p in same}
        return same[0] if len(distinct) == 1 else None

    def _images(self, spec: TensorSpec, card: ModelCard, tiny: bool, bound: dict[str, int], index: int):
        import torch

        layout = card.input.layout if card.input else "NCHW"
        hw_axes = {"NCHW": (2, 3), "NHWC": (1, 2), "NTCHW": (3, 4)}[layout]
        shape = resolve_shape(spec, card, tiny, self.batch, bound)
        if shape is None:  # image sizes the card leaves open (or to be observed) come from the contract
            size = contract_size(card.input)
            if size is not None:
                shape = resolve_shape(spec, card, tiny, self.batch,
                                      {**bound, **{str(spec.shape[a]): size[i] for i, a in enumerate(hw_axes)
                                                   if isinstance(spec.shape[a], str)}})
        if shape is None:
            shape = self._shape(spec, card, tiny, bound, f"card '{card.name}' input '{spec.name}'")
        h, w = shape[hw_axes[0]], shape[hw_axes[1]]
        lead = shape[:2] if layout == "NTCHW" else shape[:1]
        count = int(np.prod(lead))
        if self.kind == "sample":
            names = [SAMPLE_PORTRAITS[(i + index) % len(SAMPLE_PORTRAITS)] for i in range(count)]
            faces = sample_faces((h, w), names)
        else:
            g = self._rng("image", card.name, spec.name, str(index))
            faces = torch.randint(0, 256, (count, h, w, 3), generator=g, dtype=torch.uint8).numpy()
        contract = card.input.model_copy(update={"size": [h, w]}) if card.input else None
        x = prepare_images(faces.reshape(*lead, h, w, 3), contract)
        return torch.from_numpy(x)

    def _shape(self, spec: TensorSpec, card: ModelCard, tiny: bool, bound: dict[str, int], where: str) -> list[int]:
        shape = resolve_shape(spec, card, tiny, self.batch, bound)
        if shape is None:
            if any(isinstance(d, str) and d.startswith(PLACEHOLDER) for d in spec.shape):
                raise ExportError(f"{where}: its sizes depend on the arguments this model was trained with and no "
                                  "earlier model feeds it", "export the whole run directory (e.g. `fx export-onnx "
                                  "RUN --model expression`), whose tokenizer feeds it")
            named = [d for d in spec.shape if isinstance(d, str)]
            raise ExportError(f"{where}: no size for the named dims {named} of {spec.shape}",
                              "give the dim an int, name an int builder argument, feed it from an earlier part's "
                              "output of the same name, or define model.onnx_example_inputs(part, batch)")
        return shape

    def _noise(self, spec: TensorSpec, card: ModelCard, tiny: bool, bound: dict[str, int], where: str):
        import torch

        shape = self._shape(spec, card, tiny, bound, f"{where} input '{spec.name}'")
        g = self._rng("noise", card.name, spec.name)
        if spec.dtype in ("float32", "float16"):
            return torch.randn(shape, generator=g).to(getattr(torch, spec.dtype))
        if spec.dtype == "bool":
            return torch.randint(0, 2, shape, generator=g).bool()
        high = 256 if spec.dtype == "uint8" else 2
        return torch.randint(0, high, shape, generator=g).to(getattr(torch, spec.dtype))


def _is_image(spec: TensorSpec, card: ModelCard) -> bool:
    if card.input is None or spec.dtype != "float32" or card.input.layout not in _CHANNELS_AXIS:
        return False
    rank, axis = _CHANNELS_AXIS[card.input.layout]
    channels = 1 if card.input.color == "GRAY" else 3
    return len(spec.shape) == rank and spec.shape[axis] in (channels, "channels", "c")


def _dtype(value: Any) -> str:
    return str(value.dtype).replace("torch.", "")


def _fits(shape: tuple[int, ...], spec_shape: list, resolved: list[int] | None) -> bool:
    if resolved is not None:
        return list(shape) == resolved
    return len(shape) == len(spec_shape) and all(
        not isinstance(d, int) or d == s for d, s in zip(spec_shape, shape, strict=True))
