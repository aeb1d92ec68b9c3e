"""ONNX export and ONNX Runtime inference for every model card.

- ``session``: the one ONNX Runtime session factory (device, provider options, threads) that refuses a silent
  fall-back to CPU.
- ``export``: export each part a card lists, check it (``onnx.checker``, parity against PyTorch), write graphs, the
  card sidecar and ``report.json``.
- ``predictor``: Torch and ONNX predictors with one interface and shared pre/post-processing.
- ``cache``: exports made on the fly by commands with ``--backend onnx`` (e.g. ``fx animate``), through the same
  exporter, cached by card + weights.

Importing this package is cheap; torch and onnxruntime load inside the functions that need them.
"""
