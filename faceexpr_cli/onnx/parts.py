"""What a card's ``onnx.parts`` entry means for a built model: which callable, which sizes, which dynamic axes.

Conventions (documented in docs/onnx.md):
- ``module`` is a dotted path into the built model (empty: the whole model); its last step may name a method, so a
  part can export ``tokenizer.patch_tokens`` rather than ``forward``.
- The callable gets the inputs by keyword when its signature has every input name, else positionally in card order.
  It may return a tensor, a tuple/list (card order), a dict or an object with attributes named like the outputs.
- A string dim is a dynamic axis, except when it names an int builder argument of the card (``dim``), which fixes
  it at that argument's value (so one card shape covers the preset and the tiny variant).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from faceexpr_cli.config.cards import ModelCard, OnnxPart, TensorSpec
from faceexpr_cli.errors import FxError

PLACEHOLDER = "_fx:"
BATCH_NAMES = ("batch", "b", "n", "bs", "batch_size", "frames_batch")
_HEIGHT = ("height", "h", "size", "image_height", "img_h")
_WIDTH = ("width", "w", "image_width", "img_w")
_FRAMES = ("frames", "t", "time", "num_frames")


class ExportError(FxError):
    """A part that cannot be exported as its card describes; the message names card, part and what to change."""


def is_batch_dim(name: int | str) -> bool:
    return isinstance(name, str) and (name.lower() in BATCH_NAMES or name.lower().startswith("batch"))


def select_callable(model: Any, card: ModelCard, part: OnnxPart) -> Callable[..., Any]:
    """The sub-module (or method) a part names."""
    obj = model
    for step in [s for s in part.module.split(".") if s]:
        if not hasattr(obj, step):
            raise ExportError(f"card '{card.name}' part '{part.name}': the model has no '{part.module}' "
                              f"('{step}' missing on {type(obj).__name__})", "fix onnx.parts[].module in the card")
        obj = getattr(obj, step)
    if not callable(obj):
        raise ExportError(f"card '{card.name}' part '{part.name}': '{part.module}' is not callable")
    return obj


def _takes_keywords(fn: Callable[..., Any], names: list[str]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params for n in names)


def make_part_module(model: Any, card: ModelCard, part: OnnxPart):
    """An ``nn.Module`` whose forward takes the part's inputs positionally and returns its outputs as a tuple."""
    import torch

    fn = select_callable(model, card, part)
    in_names = [s.name for s in part.inputs]
    out_names = [s.name for s in part.outputs]
    # a module's own signature is (*args, **kwargs): its forward's names are the ones to match
    by_keyword = _takes_keywords(fn.forward if isinstance(fn, torch.nn.Module) else fn, in_names)

    class PartModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Registered so that .to()/.eval() reach the weights even when fn is a bound method.
            self.inner = model if not isinstance(fn, torch.nn.Module) else fn
            self.in_names = in_names
            self.out_names = out_names

        def forward(self, *args):
            result = fn(**dict(zip(in_names, args, strict=True))) if by_keyword else fn(*args)
            return select_outputs(result, out_names, card, part)

    return PartModule().eval()


def select_outputs(result: Any, names: list[str], card: ModelCard, part: OnnxPart) -> tuple:
    where = f"card '{card.name}' part '{part.name}'"
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise ExportError(f"{where}: outputs {missing} not in the module's result (it has {sorted(result)})")
        return tuple(result[n] for n in names)
    if isinstance(result, (tuple, list)):
        if len(result) != len(names):
            raise ExportError(f"{where}: the module returns {len(result)} values, the card lists {len(names)} outputs")
        return tuple(result)
    if hasattr(result, "shape"):
        if len(names) != 1:
            raise ExportError(f"{where}: the module returns one tensor, the card lists {len(names)} outputs")
        return (result,)
    if all(hasattr(result, n) for n in names):
        return tuple(getattr(result, n) for n in names)
    raise ExportError(f"{where}: cannot map a {type(result).__name__} result onto outputs {names}")


def argument_dims(card: ModelCard, tiny: bool) -> dict[str, int]:
    """Builder arguments that are plain ints: string dims naming one of them are fixed sizes."""
    return {k: v for k, v in card.arguments(tiny=tiny).items() if isinstance(v, int) and not isinstance(v, bool)}


def contract_dim(card: ModelCard, name: str) -> int | None:
    """Size of a named dim that the card's input contract fixes (height/width/frames), if any."""
    contract = card.input
    if contract is None:
        return None
    lname = name.lower()
    size = contract.size
    if size is not None and lname in _HEIGHT + _WIDTH:
        if isinstance(size, int):
            return size
        return int(size[0] if lname in _HEIGHT else size[-1])
    if contract.frames and lname in _FRAMES:
        return contract.frames
    return None


def resolve_shape(spec: TensorSpec, card: ModelCard, tiny: bool, batch: int,
                  bound: dict[str, int] | None = None) -> list[int] | None:
    """Concrete sizes for a spec, or None when some named dim has no known size yet."""
    args = argument_dims(card, tiny)
    bound = bound or {}
    shape: list[int] = []
    for dim in spec.shape:
        if isinstance(dim, int):
            shape.append(dim)
        elif dim in bound:
            shape.append(bound[dim])
        elif dim in args:
            shape.append(args[dim])
        elif is_batch_dim(dim):
            shape.append(batch)
        else:
            size = contract_dim(card, dim)
            if size is None:
                return None
            shape.append(size)
    return shape


def dynamic_axes(spec: TensorSpec, card: ModelCard, tiny: bool) -> dict[int, str]:
    """Axis -> name for the dims the card leaves dynamic (strings that name no builder argument)."""
    args = argument_dims(card, tiny)
    return {i: d for i, d in enumerate(spec.shape)
            if isinstance(d, str) and d not in args and not d.startswith(PLACEHOLDER)}


def _map_specs(card: ModelCard, fn: Callable[[OnnxPart, TensorSpec], list[int | str]]) -> ModelCard:
    if card.onnx is None:
        return card
    parts = []
    for part in card.onnx.parts:
        ins = [s.model_copy(update={"shape": fn(part, s)}) for s in part.inputs]
        outs = [s.model_copy(update={"shape": fn(part, s)}) for s in part.outputs]
        parts.append(part.model_copy(update={"inputs": ins, "outputs": outs}))
    return card.model_copy(update={"onnx": card.onnx.model_copy(update={"parts": parts})})


def placeholder_card(card: ModelCard) -> ModelCard:
    """A run's card whose ONNX shapes still describe the preset: sizes above 4 become placeholders to observe.

    Training runs resolve a card with other builder arguments (``dim: 64`` at 56 px) but keep the shipped
    ``onnx`` shapes (``[batch, 1369, 384]``); exporting such a run takes the real sizes from a dry run instead.
    Small sizes (channels, coordinates, broadcast 1s) do not change with the arguments and stay checked.
    """
    def fn(part: OnnxPart, spec: TensorSpec) -> list[int | str]:
        return [f"{PLACEHOLDER}{part.name}.{spec.name}.{i}" if isinstance(d, int) and d > 4 else d
                for i, d in enumerate(spec.shape)]

    return _map_specs(card, fn)


def concrete_card(card: ModelCard, observed: dict[str, dict[str, tuple[int, ...]]]) -> ModelCard:
    """Placeholders replaced by the sizes a dry run observed (``observed[part][tensor] = shape``)."""
    def fn(part: OnnxPart, spec: TensorSpec) -> list[int | str]:
        shape = observed.get(part.name, {}).get(spec.name)
        return [shape[i] if isinstance(d, str) and d.startswith(PLACEHOLDER) and shape else d
                for i, d in enumerate(spec.shape)]

    return _map_specs(card, fn)


def check_tensor(spec: TensorSpec, shape: tuple[int, ...], card: ModelCard, tiny: bool, where: str,
                 bound: dict[str, int]) -> None:
    """A tensor's shape against its spec; named dims are bound on first sight and must agree afterwards."""
    args = argument_dims(card, tiny)
    if len(shape) != len(spec.shape):
        raise ExportError(f"{where}: '{spec.name}' has shape {list(shape)}, the card says {spec.shape}")
    for size, dim in zip(shape, spec.shape, strict=True):
        want = dim if isinstance(dim, int) else args.get(dim, bound.get(dim))
        if want is not None and want != size:
            raise ExportError(f"{where}: '{spec.name}' has shape {list(shape)}, the card says {spec.shape} "
                              f"({dim} = {want})")
        if isinstance(dim, str):
            bound.setdefault(dim, size)
