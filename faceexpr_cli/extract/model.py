"""The expression model behind `fx extract-feats`: a trained run (Torch) or its ONNX export, one interface.

Both load through ``onnx.predictor.load_chain`` (tokenizer -> expression transformer), so they share the card's
pre-processing and differ only in the engine. The folder says what it is - a run has ``checkpoints/`` (or is a
checkpoint, with ``meta.json``), an export has ``report.json`` - so ``--backend`` may be left out; a backend that
does not fit the folder is a one-line usage error naming the other. The expression transformer also takes a
subject row; for videos of unknown people any row of the run's table works the same for every video (row 0 by
default), and ``--subject`` picks one by row or by the name in the run's ``subjects.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.errors import MissingFileError, UnknownNameError, UsageError

OUTPUT = "expression"
_HINT = "pass the --out folder of `fx train joint` (--backend torch) or of `fx export-onnx` (--backend onnx)"


def folder_kind(path: Path) -> str | None:
    """``torch`` for a training run or checkpoint folder, ``onnx`` for an export, None for anything else."""
    if (path / "report.json").is_file():
        return "onnx"
    if (path / "checkpoints").is_dir() or (path / "meta.json").is_file():
        return "torch"
    return None


def check_model_dir(path: str | Path, backend: str | None) -> tuple[Path, str]:
    """The folder and the backend to use, or a one-line error saying what the folder is not."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingFileError(path, "model directory", _HINT)
    if not path.is_dir():
        raise UsageError(f"--model {path} is a file, not a run or export directory", _HINT)
    if backend not in (None, "torch", "onnx"):
        raise UnknownNameError("backend", str(backend), ["onnx", "torch"])
    kind = folder_kind(path)
    if kind is None:
        raise UsageError(f"{path} is neither a training run (no checkpoints/) nor an ONNX export (no report.json)",
                         _HINT)
    if backend is not None and backend != kind:
        if backend == "onnx":
            raise UsageError(f"{path} is a training run, not an ONNX export",
                             f"use --backend torch, or export it first: fx export-onnx {path} --all --out DIR")
        raise UsageError(f"{path} is an ONNX export, not a training run",
                         "use --backend onnx, or pass the run directory it was exported from")
    return path, kind


def _subjects_file(path: Path, kind: str) -> Path | None:
    candidates = [path / "subjects.json", path.parent / "subjects.json"]
    if kind == "onnx":  # an export made from a run names it: "source": "run /path/to/run"
        source = str(json.loads((path / "report.json").read_text(encoding="utf-8")).get("source", ""))
        if source.startswith("run "):
            candidates.append(Path(source[4:]) / "subjects.json")
    return next((p for p in candidates if p.is_file()), None)


class ExpressionModel:
    """``tokens(face_crops) -> (N, D)`` expression tokens; crops are RGB uint8 squares of side ``size``."""

    def __init__(self, chain: Any, path: Path, backend: str, device: str, subject_row: int | None,
                 subject_name: str | None, identity: str, output: str = OUTPUT):
        self.chain = chain
        self.output = output
        self.path = path
        self.backend = backend
        self.device = device
        self.subject_row = subject_row
        self.subject_name = subject_name
        self.identity = identity
        self.extra_name = next(iter(chain.input_names[1:]), None)
        self.seconds = 0.0  # time spent in the model, for the run's stats
        self.frames = 0

    @classmethod
    def load(cls, model_dir: str | Path, backend: str | None = None, device: str = "cpu",
             subject: str | int | None = None, allow_cpu_fallback: bool = False,
             output: str = OUTPUT) -> ExpressionModel:
        """``output``: the named card output to extract (another per-face feature model exports another name)."""
        from faceexpr_cli.devices import check_device
        from faceexpr_cli.onnx.predictor import load_chain

        path, kind = check_model_dir(model_dir, backend)
        device = check_device(device, "--device", kind)  # once, before any graph or checkpoint is opened
        try:
            if kind == "onnx":
                chain = load_chain("onnx", path, outputs=[output], device=device,
                                   allow_cpu_fallback=allow_cpu_fallback)
                identity = "onnx:" + hashlib.sha1((path / "report.json").read_bytes()).hexdigest()[:16]
            else:
                from faceexpr_cli.onnx.runs import checkpoint_dir

                chain = load_chain("torch", path, outputs=[output], device=device)
                identity = f"torch:{checkpoint_dir(path).resolve()}"
        except UnknownNameError as exc:
            if exc.name != output:
                raise
            raise UsageError(f"{path} has no model that outputs '{output}'",
                             "point at a `fx train joint` run or its export") from exc
        extras = chain.input_names[1:]
        if len(extras) > 1:  # e.g. an export of the expression transformer without its tokenizer
            raise UsageError(f"{path}: the '{output}' chain takes {chain.input_names}, not face images alone",
                             "export the tokenizer with it: fx export-onnx RUN --model tokenizer --model expression")
        row, name = cls._subject(path, kind, chain, subject) if extras else (None, None)
        return cls(chain, path, kind, device, row, name, f"{identity}|{output}|subject={row}", output)

    @staticmethod
    def _subject(path: Path, kind: str, chain: Any, subject: str | int | None) -> tuple[int, str | None]:
        names: list[str] = []
        file = _subjects_file(path, kind)
        if file is not None:
            names = list(json.loads(file.read_text(encoding="utf-8")).get("subjects", []))
        text = "0" if subject is None else str(subject).strip()
        if text.lstrip("-").isdigit():
            row = int(text)
        elif text in names:
            row = names.index(text)
        else:
            raise UnknownNameError("subject" + (f" in {file}" if file else " (no subjects.json found)"), text,
                                   names)
        limit = chain.predictors[-1].card.preset.get("max_subjects")
        if row < 0 or (limit is not None and row >= int(limit)):
            raise UsageError(f"--subject {row} is outside the model's subject table (0..{int(limit or 1) - 1})")
        return row, names[row] if row < len(names) else None

    @property
    def size(self) -> int:
        from faceexpr_cli.onnx.preprocess import contract_size

        hw = contract_size(self.chain.predictors[0].card.input)
        if hw is None:
            raise UsageError(f"{self.path}: the tokenizer's card has no input size")
        return int(hw[0])

    @property
    def atol(self) -> float:
        """The expression part's tolerance from its card: what Torch vs ONNX may differ by."""
        return float(self.chain.predictors[-1].part.atol)

    def tokens(self, crops: np.ndarray) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, 0), np.float32)
        extra = {self.extra_name: np.int64(self.subject_row)} if self.extra_name else {}
        t0 = time.perf_counter()
        out = self.chain.run_frames(crops, batch_size=len(crops), **extra)[self.output]
        self.seconds += time.perf_counter() - t0
        self.frames += len(crops)
        return np.asarray(out, np.float32)

    def describe(self) -> dict[str, Any]:
        providers = sorted({p for pr in self.chain.predictors for p in getattr(pr, "providers", [])[:1]})
        return {"model": str(self.path), "backend": self.backend, "output": self.output, "device": self.device,
                "providers": providers or None, "input_size": self.size,
                "cards": [pr.card.name for pr in self.chain.predictors],
                "subject_row": self.subject_row, "subject": self.subject_name}
