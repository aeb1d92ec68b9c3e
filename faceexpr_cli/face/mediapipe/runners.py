"""What executes a ``.tflite`` graph: one tiny interface, ``run(batch_nhwc) -> list of outputs``, batch first.

``torch`` (the default) is fx's own interpreter (``builders.tflite.load_tflite``): any batch, no TensorFlow or
LiteRT at run time, exportable to ONNX. ``litert`` is Google's runtime, the reference the tests and the benchmark
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


RUNNERS: dict[str, Callable[[Path], Runner]] = {"torch": TorchRunner, "litert": LiteRTRunner}
