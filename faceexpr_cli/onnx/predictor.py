"""Torch and ONNX predictors with one interface, and chains of them (tokenizer -> expression transformer).

A predictor runs one card part: named arrays in, named float arrays out. Both backends take the same arrays made
by the same ``prepare_images`` (see ``preprocess``), so switching ``--backend`` changes nothing but the engine.
The ONNX predictor reads the card from the graph itself (``fx.card`` metadata, else ``card.yaml`` beside it) and
refuses a graph whose input/output names, ranks, sizes or dtypes disagree with it. On CUDA it binds inputs and
outputs on the device (I/O binding), so a chain passes tensors from graph to graph without host copies.

Use from pipelines::

    chain = load_chain("onnx", "exported/", outputs=["token"], device="cuda")
    tokens = chain.run({"image": chain.prepare_images(frames), "subject": ids})["token"]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.config.cards import ModelCard, OnnxPart, card_from_dict
from faceexpr_cli.errors import ConfigError, DataError, MissingFileError, UnknownNameError
from faceexpr_cli.onnx import graphs
from faceexpr_cli.onnx.preprocess import prepare_images
from faceexpr_cli.onnx.session import CUDA, TENSORRT, SessionConfig, create_session, parse_device
from faceexpr_cli.registry import Registry
from faceexpr_cli.safety import plain_name

BACKENDS: Registry = Registry("inference backend")


def find_part(card: ModelCard, name: str | None) -> OnnxPart:
    parts = card.onnx.parts if card.onnx else []
    if name is None and len(parts) == 1:
        return parts[0]
    for p in parts:
        if p.name == name:
            return p
    raise UnknownNameError(f"ONNX part of '{card.name}'", str(name), [p.name for p in parts])


class Predictor:
    """One card part. ``run({name: array}) -> {name: float32 array}``; extra inputs are ignored."""

    backend = ""

    def __init__(self, card: ModelCard, part: OnnxPart, tiny: bool = False):
        self.card = card
        self.part = part
        self.tiny = tiny

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.part.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.part.outputs]

    def prepare_images(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames -> this model's input batch (shared by both backends)."""
        return prepare_images(images, self.card.input)

    def _feed(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise DataError(f"{self.card.name}.{self.part.name}: missing inputs {missing}",
                            f"it takes {self.input_names}")
        return {n: inputs[n] for n in self.input_names}

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __call__(self, **inputs: Any) -> dict[str, np.ndarray]:
        return self.run(inputs)


@BACKENDS.register("torch")
class TorchPredictor(Predictor):
    backend = "torch"

    def __init__(self, model: Any, card: ModelCard, part: OnnxPart | str | None = None, device: str = "cpu",
                 tiny: bool = False):
        import torch

        from faceexpr_cli.onnx.parts import make_part_module

        part = part if isinstance(part, OnnxPart) else find_part(card, part)
        super().__init__(card, part, tiny)
        self.device = torch.device("cpu" if device in ("auto", "") else device)
        self.module = make_part_module(model, card, part).to(self.device)

    @classmethod
    def load(cls, source: str | Path | ModelCard, part: str | None = None, device: str = "cpu",
             tiny: bool = False, weights: str | Path | None = None, model: Any = None) -> TorchPredictor:
        """From a built model, or a card (+ weights; none: random init, for tests)."""
        from faceexpr_cli.builders import build_model
        from faceexpr_cli.config.cards import load_card
        from faceexpr_cli.onnx.sources import load_weights

        card = source if isinstance(source, ModelCard) else load_card(source)
        if model is None:
            model = build_model(card, tiny=tiny)
            if weights is not None:
                load_weights(model, Path(weights), card)
        return cls(model.eval(), card, part, device=device, tiny=tiny)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import torch

        feed = [torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).to(self.device)
                for v in self._feed(inputs).values()]
        with torch.inference_mode():
            out = self.module(*feed)
        return {n: o.detach().float().cpu().numpy() for n, o in zip(self.output_names, out, strict=True)}


@BACKENDS.register("onnx")
class OnnxPredictor(Predictor):
    backend = "onnx"

    def __init__(self, path: str | Path, card: ModelCard | None = None, part: str | None = None,
                 config: SessionConfig | None = None, **session_overrides: Any):
        import onnxruntime as ort

        self.path = Path(path)
        self.session = create_session(self.path, config, **session_overrides)
        meta = graphs.metadata(self.session)
        card = card or _card_from(meta, self.path)
        the_part = find_part(card, part or meta.get(graphs.META_PART) or self.path.name.split(".")[0])
        super().__init__(card, the_part, tiny=meta.get(graphs.META_TINY) == "1")
        self.notes = graphs.validate_io(self.session, card, the_part, self.tiny, str(self.path))
        self.providers = self.session.get_providers()
        on_gpu = self.providers[0] in (CUDA, TENSORRT)
        self.device_id = parse_device((config or SessionConfig(**session_overrides)).device)[1] if on_gpu else 0
        self.binding = self.session.io_binding() if on_gpu else None
        self._ort = ort

    @classmethod
    def load(cls, source: str | Path, part: str | None = None, device: str = "cpu", **kw: Any) -> OnnxPredictor:
        return cls(source, part=part, device=device, **kw)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        feed = {k: _host(v) for k, v in self._feed(inputs).items()}
        if self.binding is None:
            outs = self.session.run(self.output_names, feed)
            return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs, strict=True)}
        return {n: v.numpy().astype(np.float32) for n, v in self.run_device(feed).items()}

    def run_device(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """CUDA I/O binding: numpy or OrtValue inputs in, device-resident OrtValues out (no host copy)."""
        if self.binding is None:
            return {k: self._ort.OrtValue.ortvalue_from_numpy(v) for k, v in self.run(inputs).items()}
        b = self.binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        for name, value in self._feed(inputs).items():
            if not isinstance(value, self._ort.OrtValue):
                value = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(_host(value)), "cuda",
                                                               self.device_id)
            b.bind_ortvalue_input(name, value)
        for name in self.output_names:
            b.bind_output(name, "cuda", self.device_id)
        self.session.run_with_iobinding(b)
        return dict(zip(self.output_names, b.get_outputs(), strict=True))


def _host(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def _card_from(meta: dict[str, str], path: Path) -> ModelCard:
    import yaml

    text = meta.get(graphs.META_CARD)
    source = f"{path} (embedded card)"
    if text is None:
        sidecar = path.parent / "card.yaml"
        if not sidecar.is_file():
            raise MissingFileError(sidecar, "model card for the graph",
                                   "export with `fx export-onnx`, which embeds the card, or pass card=")
        text, source = sidecar.read_text(encoding="utf-8"), str(sidecar)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a model card")
    return card_from_dict(data, source)


class ChainPredictor:
    """Predictors run in order; each takes its inputs by name from the caller's inputs and earlier outputs."""

    def __init__(self, predictors: list[Predictor]):
        if not predictors:
            raise DataError("an empty chain of predictors")
        self.predictors = predictors
        self.backend = predictors[0].backend

    @property
    def input_names(self) -> list[str]:
        made: set[str] = set()
        needed: list[str] = []
        for p in self.predictors:
            needed += [n for n in p.input_names if n not in made and n not in needed]
            made.update(p.output_names)
        return needed

    def prepare_images(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        return self.predictors[0].prepare_images(images)

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        values: dict[str, Any] = dict(inputs)
        device = all(isinstance(p, OnnxPredictor) and p.binding is not None for p in self.predictors)
        for p in self.predictors:
            values.update(p.run_device(values) if device else p.run(values))
        out_names = [n for p in self.predictors for n in p.output_names]
        return {n: (values[n].numpy() if device else values[n]) for n in out_names}

    def __call__(self, **inputs: Any) -> dict[str, np.ndarray]:
        return self.run(inputs)

    def run_frames(self, frames: np.ndarray | Sequence[np.ndarray], batch_size: int = 32,
                   **extra: Any) -> dict[str, np.ndarray]:
        """RGB uint8 frames -> outputs for every frame, ``batch_size`` frames at a time.

        ``extra`` inputs (e.g. ``subject_ids``) are a scalar for all frames or an array with one row per frame.
        """
        frames = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
        image_name = self.input_names[0]
        n = len(frames)
        chunks: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            feed = {image_name: self.prepare_images(frames[start:stop])}
            for key, value in extra.items():
                arr = np.asarray(value)
                feed[key] = arr[start:stop] if arr.ndim and len(arr) == n else np.full(stop - start, arr)
            for key, value in self.run(feed).items():
                chunks.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in chunks.items()}


def prune(parts: list[tuple[Any, OnnxPart]], outputs: Sequence[str] | None) -> list[tuple[Any, OnnxPart]]:
    """Keep only the parts needed to produce ``outputs`` (all when None), in order."""
    if not outputs:
        return parts
    wanted, keep = set(outputs), []
    for item in reversed(parts):
        produced = {s.name for s in item[1].outputs}
        if produced & wanted:
            keep.append(item)
            wanted |= {s.name for s in item[1].inputs}
    missing = set(outputs) - {s.name for _, p in keep for s in p.outputs}
    if missing:
        raise UnknownNameError("output", ", ".join(sorted(missing)),
                               [s.name for _, p in parts for s in p.outputs])
    return list(reversed(keep))


def exported_graphs(export_dir: str | Path) -> list[Path]:
    """The graphs an export folder's ``report.json`` lists, in export order (fp32 graphs)."""
    export_dir = Path(export_dir)
    report_path = export_dir / "report.json"
    if not report_path.is_file():
        raise MissingFileError(report_path, "export report", "run `fx export-onnx ... --out DIR` first")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    found = []
    for m in report["models"]:
        folder = m.get("folder", ".")
        if folder != ".":  # names from a file that become paths: a crafted report must not reach outside the folder
            plain_name(folder, "model folder", source=str(report_path))
        found += [export_dir / folder / plain_name(p["file"], "graph file", source=str(report_path))
                  for p in m.get("parts", []) if p.get("file")]
    return found


def load_predictors(export_dir: str | Path, config: SessionConfig | None = None,
                    **session_overrides: Any) -> dict[str, OnnxPredictor]:
    """One ``OnnxPredictor`` per exported part, by part name, for callers that run parts separately (FOMM's key
    point detector on driving frames, its generator on batches of targets)."""
    loaded = [OnnxPredictor(path, config=config, **session_overrides) for path in exported_graphs(export_dir)]
    return {p.part.name: p for p in loaded}


def load_chain(backend: str, source: str | Path, outputs: Sequence[str] | None = None, device: str = "cpu",
               **kw: Any) -> ChainPredictor:
    """A chain for ``outputs`` from an export folder (``onnx``: report.json + graphs) or a run/card (``torch``)."""
    if backend not in BACKENDS:
        BACKENDS.get(backend)  # raises with the known names
    source = Path(source)
    if backend == "onnx":
        loaded = [OnnxPredictor(path, device=device, **kw) for path in exported_graphs(source)]
        chosen = prune([(pr, pr.part) for pr in loaded], outputs)
        return ChainPredictor([pr for pr, _ in chosen])
    from faceexpr_cli.builders import build_model
    from faceexpr_cli.onnx.sources import resolve_sources

    tiny = bool(kw.get("tiny", False))
    srcs, _ = resolve_sources(str(source), all_models=True, tiny=tiny, random_init=bool(kw.get("random_init")))
    built: list[tuple[Any, OnnxPart]] = []
    for src in srcs:
        model = build_model(src.card, tiny=tiny)
        if src.load is not None:
            src.load(model)
        for part in src.card.onnx.parts if src.card.onnx else []:
            built.append((TorchPredictor(model.eval(), src.card, part, device=device, tiny=tiny), part))
    return ChainPredictor([pr for pr, _ in prune(built, outputs)])
