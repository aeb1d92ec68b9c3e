"""What executes a ``.tflite`` graph: one tiny interface, ``run(batch_nhwc) -> list of outputs``, batch first.

``torch`` is fx's own interpreter (``builders.tflite.load_tflite``): any batch, no TensorFlow or
LiteRT at run time. ``onnx`` (the backend's default) exports that torch graph once (legacy exporter, dynamic batch) to
``$FX_HOME/onnx/face-mediapipe/<file>-<sha256[:12]>.onnx`` and runs it in ONNX Runtime through fx's one session
factory (CPU). ``litert`` is Google's runtime, the reference the tests and the benchmark
compare against; it is a dev dependency (``ai-edge-litert``), and its graphs take one image at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from faceexpr_cli.errors import DependencyError


class Runner(Protocol):
    def run(self, batch_nhwc: np.ndarray) -> list[np.ndarray]: ...


class TorchRunner:
    def __init__(self, path: Path):
        from faceexpr_cli.builders.tflite import load_tflite

        self.module = load_tflite(path)

    def run(self, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            outs = self.module(torch.from_numpy(np.ascontiguousarray(batch_nhwc, dtype=np.float32)))
        return [o.numpy() for o in outs]


class LiteRTRunner:
    def __init__(self, path: Path, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise DependencyError("the litert runtime needs Google's LiteRT", "pip install ai-edge-litert==2.3.0",
                                  ) from exc
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = [o["index"] for o in self.interpreter.get_output_details()]

    def run(self, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        per_image = []
        for x in np.asarray(batch_nhwc, dtype=np.float32):
            self.interpreter.set_tensor(self.input, x[None])
            self.interpreter.invoke()
            per_image.append([self.interpreter.get_tensor(i).copy() for i in self.outputs])
        return [np.concatenate(parts) for parts in zip(*per_image, strict=True)]


class OnnxRunner:
    def __init__(self, path: Path, threads: int = 1):
        from faceexpr_cli.onnx.session import create_session

        self.session = create_session(_exported(Path(path)), device="cpu", intra_op_threads=threads)
        self.input = self.session.get_inputs()[0].name

    def run(self, batch_nhwc: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input: np.ascontiguousarray(batch_nhwc, dtype=np.float32)})


def _exported(tflite: Path) -> Path:
    """The ONNX graph of a .tflite file, exported on first use and kept (written under a temporary name)."""
    import hashlib
    import os
    import warnings

    from faceexpr_cli.paths import fx_home

    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:12]
    out = fx_home() / "onnx" / "face-mediapipe" / f"{tflite.stem}-{digest}.onnx"
    if out.is_file():
        return out
    import torch

    from faceexpr_cli.builders.tflite import load_tflite

    module = load_tflite(tflite)
    example = torch.zeros(1, *module.input_shapes[0][1:])
    names = [f"output{i}" for i in range(len(module.output_ids))]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    axes = {name: {0: "batch"} for name in ["input", *names]}
    with warnings.catch_warnings():  # the legacy exporter's notes on constant folding and shape inference
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(tmp), input_names=["input"], output_names=names,
                          dynamic_axes=axes, opset_version=18, dynamo=False)
    os.replace(tmp, out)
    return out


RUNNERS: dict[str, Callable[[Path], Runner]] = {"torch": TorchRunner, "onnx": OnnxRunner, "litert": LiteRTRunner}
