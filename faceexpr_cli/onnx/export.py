"""Export every ONNX part a card lists, check it against PyTorch, and write graphs, sidecar card and report.json.

Data flow for one model: build from the card -> load weights -> for each part (card order) make its inputs (see
``inputs``), run PyTorch, export with the dynamo exporter (dynamic axes from the card) -> name dims, simplify,
stamp the card into the graph's metadata -> write ``<part>.onnx`` (+ ``.data`` when large) -> ``onnx.checker`` ->
ONNX Runtime session (checked providers) -> I/O against the card -> parity on fixed random inputs, real face crops,
and batch 1 and 3 on the same graph -> latency -> optional fp16 graph with its own tolerance.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faceexpr_cli.config.cards import ModelCard, OnnxPart, check_file_names
from faceexpr_cli.console import log
from faceexpr_cli.errors import CheckpointError, FxError
from faceexpr_cli.onnx import graphs
from faceexpr_cli.onnx.inputs import Feeder
from faceexpr_cli.onnx.parity import ParityCheck, compare, time_call, to_numpy
from faceexpr_cli.onnx.parts import (
    ExportError,
    concrete_card,
    dynamic_axes,
    is_batch_dim,
    make_part_module,
    placeholder_card,
)
from faceexpr_cli.onnx.progress import PartProgress
from faceexpr_cli.onnx.session import SessionConfig, create_session
from faceexpr_cli.onnx.staging import FAILED_REPORT, REPORT, staging_dir, swap_in, write_failed, write_json
from faceexpr_cli.safety import check_number, plain_name

MIN_OPSET = 18  # the exporter's own implementations start here (lower opsets go through a lossy converter)


class ParityError(FxError):
    """An exported graph whose outputs differ from PyTorch past the card's tolerance."""


@dataclass
class ExportOptions:
    opset: int | None = None  # None: the card's onnx.opset
    dynamic_batch: bool = True
    fp16: bool = False
    simplify: bool = True
    tiny: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)
    external_over_mb: float = 512.0
    batch: int = 2  # export-time batch: not 1, which the exporter would specialise
    seed: int = 0
    latency_runs: int = 10
    parts: list[str] | None = None  # export only these parts
    sample_check: bool = True  # also compare on the portraits' face crops
    optimize: bool = True  # the exporter's own graph optimisation (onnxscript)


@dataclass
class ModelSource:
    """One model to export: its card, and how to put weights into the built model (None: random init).

    ``model`` is an already-built module (weights loaded, on the CPU) to export instead of building one from the
    card: commands that export on the fly (``fx animate --backend onnx``) hold the model they run in PyTorch, with
    weights from formats only they read; the card still gives names, shapes, dynamic axes and tolerances.
    """

    card: ModelCard
    weights: Path | None = None
    load: Any = None  # callable(model) -> None
    model: Any = None  # a built nn.Module to export as is (``load`` still runs on it when given)
    folder: str = ""  # sub-folder of the output (several models in one export)
    derive_shapes: bool = False  # a run's card with other arguments than its ONNX shapes describe
    export: bool = True  # False: only run it, to feed the models that take its outputs


def card_yaml(card: ModelCard, tiny: bool) -> str:
    """The sidecar: for a tiny export, the card with the tiny arguments as its preset, so it rebuilds that graph."""
    data = card.model_dump(mode="json", exclude_none=True)
    if tiny:
        data["preset"] = card.arguments(tiny=True)
        data["tiny"] = {}
        data["description"] = data["description"].rstrip() + " [tiny test variant]"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _torch_run(module: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    import torch

    with torch.inference_mode():
        out = module(*inputs.values())
    return dict(zip(module.out_names, out, strict=True))


def _export_proto(module: Any, part: OnnxPart, card: ModelCard, args: tuple, opts: ExportOptions) -> Any:
    import torch
    from torch.export import Dim

    tiny = opts.tiny
    axes = [dynamic_axes(s, card, tiny) if opts.dynamic_batch else {} for s in part.inputs]
    shapes = {"args": tuple({a: Dim.AUTO for a in ax} or None for ax in axes)}
    buf = io.StringIO()
    # The exporter prints progress on stdout (fx keeps stdout for results) and warns about torchvision ops.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module, args, None, dynamo=True, opset_version=opts.opset or card.onnx.opset,
                input_names=[s.name for s in part.inputs], output_names=[s.name for s in part.outputs],
                dynamic_shapes=shapes if any(axes) else None, optimize=opts.optimize, verbose=False)
    except Exception as exc:  # the exporter raises many types; one line names card, part and the cause
        log.debug(buf.getvalue())
        raise ExportError(f"card '{card.name}' part '{part.name}': torch.onnx.export failed: {_summary(exc)}",
                          "FX_DEBUG=1 shows the exporter's log") from exc
    log.debug(buf.getvalue())
    proto = program.model_proto
    graphs.name_dynamic_dims(proto, part, {s.name: ax for s, ax in zip(part.inputs, axes, strict=True)})
    if opts.dynamic_batch:
        _check_batch_dynamic(proto, part, card, axes)
    return proto


def _summary(exc: BaseException) -> str:
    text = str(exc)
    if "Exception summary" in text:
        text = text.split("Exception summary", 1)[1]
    lines = [ln.strip(" -#") for ln in text.splitlines() if ln.strip(" -#")]
    return (lines[0] if lines else type(exc).__name__)[:400]


def _check_batch_dynamic(proto: Any, part: OnnxPart, card: ModelCard, axes: list[dict[int, str]]) -> None:
    for vi, ax in zip(proto.graph.input, axes, strict=False):
        dims = graphs.dims_of(vi)
        for axis, name in ax.items():
            if is_batch_dim(name) and isinstance(dims[axis], int):
                raise ExportError(f"card '{card.name}' part '{part.name}': input '{vi.name}' axis {axis} ('{name}') "
                                  f"came out fixed at {dims[axis]}: the model specialises the batch size",
                                  "avoid Python ints taken from tensor shapes in forward, or export with --static")


class _Exporter:
    """One export run: shared feeders (so a run's tokenizer feeds its expression transformer), one output root."""

    def __init__(self, out: Path, opts: ExportOptions, bar: Any = None):
        self.out = out
        self.opts = opts
        self.bar = PartProgress(bar)
        checks = [("random", opts.batch)] + ([("sample", opts.batch)] if opts.sample_check else [])
        if opts.dynamic_batch:
            checks += [("random", 1), ("random", 3)]
        self.feeders = {key: Feeder(key[0], key[1], opts.seed) for key in checks}

    def model(self, src: ModelSource) -> dict[str, Any]:
        from faceexpr_cli.builders import build_model

        opts = self.opts
        card = placeholder_card(src.card) if src.derive_shapes else src.card
        folder = self.out / src.folder if src.folder else self.out
        model = build_model(card, tiny=opts.tiny) if src.model is None else _on_cpu(src.model, card)
        if src.load is not None:
            _load(src, model)
        model.eval()
        report: dict[str, Any] = {"card": card.name, "folder": src.folder or ".", "card_file": "card.yaml",
                                  "weights": str(src.weights) if src.weights else None,
                                  "random_init": src.weights is None and src.model is None,
                                  "prebuilt": src.model is not None, "tiny": opts.tiny,
                                  "export": src.export, "parts": []}
        parts = [p for p in (card.onnx.parts if card.onnx else []) if not opts.parts or p.name in opts.parts]
        if not parts:
            raise ExportError(f"card '{card.name}' has no onnx parts to export"
                              + (f" named {opts.parts}" if opts.parts else ""), "add an onnx: section to the card")
        # Phase 1: every part in PyTorch on every check's inputs (this also feeds later parts and models).
        runs, errors = {}, {}
        for part in parts:
            self.bar.stage(card.name, part.name, "PyTorch", steps=3 + 2 * opts.fp16, shown=src.export)
            try:
                runs[part.name] = self._torch_cases(model, card, part)
            except FxError as exc:
                errors[part.name] = exc.one_line()
        if src.derive_shapes:
            observed = {name: {k: tuple(v.shape) for k, v in {**c[("random", opts.batch)][0],
                                                               **c[("random", opts.batch)][2]}.items()}
                        for name, (_, c) in runs.items()}
            card = concrete_card(card, observed)
            report["notes"] = ["ONNX shapes re-derived from the run's model (its card keeps the preset's shapes)"]
        if not src.export:
            return report
        folder.mkdir(parents=True, exist_ok=True)
        sidecar = card_yaml(card, opts.tiny)
        tmp = folder / ".card.yaml.tmp"
        tmp.write_text(sidecar, encoding="utf-8")
        os.replace(tmp, folder / "card.yaml")
        # Phase 2: export and check each part.
        for part in [p for p in (card.onnx.parts if card.onnx else []) if p.name in runs or p.name in errors]:
            t = time.perf_counter()
            try:
                if part.name in errors:
                    raise ExportError(errors[part.name])
                module, cases = runs[part.name]
                entry = self.part(module, card, part, cases, folder, sidecar)
            except FxError as exc:
                entry = {"name": part.name, "ok": False, "error": exc.one_line()}
                log.debug("%s.%s: %s", card.name, part.name, exc.one_line())  # reported once, at the end
            entry["seconds"] = round(time.perf_counter() - t, 2)
            self.bar.done(card.name, part.name, entry["ok"])
            report["parts"].append(entry)
        report["ok"] = all(p.get("ok") for p in report["parts"])
        return report

    def _torch_cases(self, model: Any, card: ModelCard, part: OnnxPart) -> tuple[Any, dict]:
        module = make_part_module(model, card, part)
        cases = {}
        for key, feeder in self.feeders.items():
            inputs, sources, bound = feeder.inputs_for(model, card, part, self.opts.tiny)
            try:
                outputs = _torch_run(module, inputs)
            except Exception as exc:  # the model refuses the card's shapes: say which part and inputs
                shapes = {k: list(v.shape) for k, v in inputs.items()}
                raise ExportError(f"card '{card.name}' part '{part.name}': PyTorch fails on inputs {shapes} "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
            Feeder.check_outputs(card, part, self.opts.tiny, outputs, bound)
            feeder.add_outputs(card, part, outputs)
            cases[key] = (inputs, sources, outputs)
        return module, cases

    def part(self, module: Any, card: ModelCard, part: OnnxPart, cases: dict, folder: Path,
             sidecar: str) -> dict[str, Any]:
        opts = self.opts
        log.debug("exporting %s.%s", card.name, part.name)
        self.bar.stage(card.name, part.name, "exporting")
        example = cases[("random", opts.batch)][0]
        # Fresh copies: the exporter folds inputs that are the same tensor object into one graph input.
        proto = _export_proto(module, part, card, tuple(v.clone() for v in example.values()), opts)
        if opts.simplify:
            proto = graphs.simplify(proto)
        graphs.set_metadata(proto, sidecar, part.name, opts.tiny)
        path = folder / f"{part.name}.onnx"
        entry = {"name": part.name, "module": part.module}
        self.bar.stage(card.name, part.name, "checking")
        entry.update(self._graph(proto, path, card, part, cases, part.atol, part.rtol))
        if opts.fp16:
            self.bar.stage(card.name, part.name, "fp16: exporting and checking", advance=2)
            half = graphs.to_fp16(proto)
            entry["fp16"] = self._graph(half, folder / f"{part.name}.fp16.onnx", card, part, cases,
                                        part.fp16_atol, max(part.rtol, 1e-2))
        entry["ok"] = entry["parity_ok"] and (not opts.fp16 or entry["fp16"]["parity_ok"])
        return entry

    def _graph(self, proto: Any, path: Path, card: ModelCard, part: OnnxPart, cases: dict, atol: float,
               rtol: float) -> dict[str, Any]:
        opts = self.opts
        data = graphs.save_graph(proto, path, opts.external_over_mb)
        graphs.check_graph(path)
        session = create_session(path, opts.session)
        notes = graphs.validate_io(session, card, part, opts.tiny, path.name)
        checks: list[ParityCheck] = []
        for (kind, batch), (inputs, sources, ref) in cases.items():
            if kind == "sample" and all(s == "fixed-seed noise" for s in sources.values()):
                notes.append("no real input reaches this part alone: the sample check is the random one")
                continue
            feed = {k: to_numpy(v) for k, v in inputs.items()}
            got = dict(zip(module_outputs(part), session.run(module_outputs(part), feed), strict=True))
            name = kind if batch == opts.batch else f"batch-{batch}"
            check = ParityCheck(name, batch, atol, rtol, sources,
                                compare({k: to_numpy(v) for k, v in ref.items()}, got, atol, rtol))
            checks.append(check)
        files = [path] + ([data] if data else [])
        return {"file": path.name, "external_data": data.name if data else None,
                "bytes": sum(f.stat().st_size for f in files), "opset": _opset(proto),
                "nodes": len(proto.graph.node), "providers": session.get_providers(),
                "inputs": [_io(v) for v in session.get_inputs()], "outputs": [_io(v) for v in session.get_outputs()],
                "parity": [c.to_dict() for c in checks], "parity_ok": all(c.ok for c in checks),
                "latency": self._latency(session, part, cases), "notes": notes}

    def _latency(self, session: Any, part: OnnxPart, cases: dict) -> dict[str, Any]:
        key = ("random", 1) if ("random", 1) in self.feeders else ("random", self.opts.batch)
        feed = {k: to_numpy(v) for k, v in cases[key][0].items()}
        names = module_outputs(part)
        return {"batch": key[1], "providers": session.get_providers(),
                **time_call(lambda: session.run(names, feed), runs=self.opts.latency_runs, budget_s=10.0)}


def _load(src: ModelSource, model: Any) -> None:
    """Weights in through the source's loader; a loader's own exception (a file it cannot parse) is one line."""
    try:
        src.load(model)
    except FxError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{src.weights or 'card ' + repr(src.card.name)}: cannot load the weights into card "
                              f"'{src.card.name}' ({type(exc).__name__}: {first[:200]})",
                              "is this checkpoint for this card? pass the matching --card") from exc


def max_opset() -> int:
    """The highest opset both the installed torch exporter and the installed onnx package know."""
    import onnx

    try:
        from torch.onnx._constants import ONNX_MAX_OPSET as torch_max
    except ImportError:  # pragma: no cover - a torch that moved the constant
        torch_max = MIN_OPSET
    return min(int(torch_max), int(onnx.defs.onnx_opset_version()))


def check_opset(opset: int | None) -> int | None:
    """``--opset`` within what this installation can write and check (exit 2 otherwise); None: the card's."""
    if opset is None:
        return None
    top = max_opset()
    return check_number(opset, "--opset", minimum=MIN_OPSET, maximum=top,
                        hint=f"this torch/onnx installation exports opsets {MIN_OPSET}..{top}")


def _on_cpu(model: Any, card: ModelCard) -> Any:
    """A given module must be on the CPU: the checks feed it CPU tensors and compare with ONNX Runtime on CPU."""
    import torch

    devices = {t.device.type for t in list(model.parameters()) + list(model.buffers())} if isinstance(
        model, torch.nn.Module) else set()
    if devices - {"cpu"}:
        raise ExportError(f"card '{card.name}': the model to export is on {', '.join(sorted(devices))}",
                          "export a CPU copy (model.to('cpu'))")
    return model


def module_outputs(part: OnnxPart) -> list[str]:
    return [s.name for s in part.outputs]


def _opset(proto: Any) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _io(arg: Any) -> dict[str, Any]:
    return {"name": arg.name, "shape": [d if d is not None else "?" for d in arg.shape], "type": arg.type}


def export_models(sources: list[ModelSource], out: Path, opts: ExportOptions | None = None,
                  source_label: str = "", raise_on_failure: bool = True) -> dict[str, Any]:
    """Export every model (in the given order) into ``out`` (graphs, ``card.yaml``, ``report.json``).

    Atomic: everything is written to a folder beside ``out`` and moved in only when every part passed, so a failed
    run leaves a good export already in ``out`` byte for byte as it was and writes ``out/report.failed.json``; it
    then raises ``ParityError`` (or only returns the report, ``ok: false``, with ``raise_on_failure=False``).
    """
    from faceexpr_cli.runlock import ensure_out_dir

    opts = opts or ExportOptions()
    check_opset(opts.opset)
    for src in sources:  # names from files become paths: refuse before anything is written
        check_file_names(src.card)
        if src.folder:
            plain_name(src.folder, "model folder", source=f"card '{src.card.name}'")
    out = ensure_out_dir(out)
    with staging_dir(out) as stage:
        report = _export_all(sources, stage, opts, source_label)
        if report["ok"]:
            swap_in(stage, out)
        else:
            write_failed(out, report)
    if not report["ok"] and raise_on_failure:
        raise ParityError(failure_line(report), f"see {out / FAILED_REPORT}")
    return report


def _export_all(sources: list[ModelSource], stage: Path, opts: ExportOptions, source_label: str) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import torch

    from faceexpr_cli import __version__
    from faceexpr_cli.console import progress

    bar = progress()
    exporter = _Exporter(stage, opts, bar)
    report: dict[str, Any] = {
        "fx_version": __version__, "source": source_label, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "opset": opts.opset, "dynamic_batch": opts.dynamic_batch, "fp16": opts.fp16, "simplified": opts.simplify,
        "tiny": opts.tiny, "device": opts.session.device,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "models": [],
    }
    with bar:
        for src in sources:
            try:
                report["models"].append(exporter.model(src))
            except FxError as exc:  # a model that cannot even be built: record it, go on with the others
                log.debug("%s: %s", src.card.name, exc.one_line())
                report["models"].append({"card": src.card.name, "ok": False, "error": exc.one_line(), "parts": []})
    report["models"] = [m for m in report["models"] if m.get("export", True) or m.get("error")]
    report["ok"] = all(m["ok"] for m in report["models"])
    write_json(stage / REPORT, report)
    return report


def failure_line(report: dict[str, Any]) -> str:
    """One line naming the first failing card, part, check and output."""
    failed = []
    for m in report["models"]:
        if m.get("error"):
            failed.append(f"{m['card']}: {m['error']}")
        for p in m.get("parts", []):
            if p.get("error"):
                failed.append(f"{m['card']}.{p['name']}: {p['error']}")
                continue
            for label, graph in (("", p), (" fp16", p.get("fp16") or {})):
                for c in graph.get("parity", []):
                    if not c["ok"]:
                        o = max((o for o in c["outputs"] if not o["ok"]), key=lambda o: o["worst_excess"])
                        failed.append(f"{m['card']}.{p['name']}{label}: output '{o['name']}' ({c['check']} inputs) "
                                      f"differs from PyTorch by max abs {o['max_abs']:.3g} / rel {o['max_rel']:.3g} "
                                      f"(atol {c['atol']:g}, rtol {c['rtol']:g})")
                        break
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return (failed[0] if failed else "export failed") + more
