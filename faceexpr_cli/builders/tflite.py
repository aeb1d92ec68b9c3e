"""``load_tflite(path)``: a ``.tflite`` flatbuffer read into a ``GraphSpec`` and built as a torch ``TFLiteGraph``.

The file is parsed with the ``tflite`` package (the flatbuffer schema as pure Python; no TensorFlow). Constant
weights are read from the file's buffers and dequantised here (FP16 constants, and INT8/UINT8 constants with
per-tensor or per-axis scales), so the ``DEQUANTIZE`` operators that fed them disappear from the graph. Each
operator's options are read by a small reader registered under its builtin name; a file with an operator that has
no reader, quantised activations or more than one subgraph is refused with one line (``CheckpointError``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faceexpr_cli.errors import CheckpointError, DependencyError, MissingFileError

# TensorType enum of the TFLite schema -> numpy dtype of a constant buffer.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
           10: np.float64}
_FLOAT_TYPES = {0, 1, 10}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}

OPTION_READERS: dict[str, Callable[[Any, Any], dict[str, Any]]] = {}


def options_for(*kinds: str):
    def register(fn):
        for kind in kinds:
            OPTION_READERS[kind] = fn
        return fn

    return register


def _table(op, cls):
    table = op.BuiltinOptions()
    if table is None:
        return None
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _activation(code: int) -> str:
    if code not in _ACTIVATION:
        raise CheckpointError(f"unsupported fused activation {code} in a TFLite operator")
    return _ACTIVATION[code]


@options_for("CONV_2D")
def _conv(tfl, op) -> dict[str, Any]:
    o = _table(op, tfl.Conv2DOptions)
    return {"padding": _PADDING[o.Padding()], "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(), "dilation_w": o.DilationWFactor(),
            "activation": _activation(o.FusedActivationFunction())}


@options_for("DEPTHWISE_CONV_2D")
def _depthwise(tfl, op) -> dict[str, Any]:
    o = _table(op, tfl.DepthwiseConv2DOptions)
    return {"padding": _PADDING[o.Padding()], "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "dilation_h": o.DilationHFactor(), "dilation_w": o.DilationWFactor(),
            "depth_multiplier": o.DepthMultiplier(), "activation": _activation(o.FusedActivationFunction())}


@options_for("MAX_POOL_2D")
def _pool(tfl, op) -> dict[str, Any]:
    o = _table(op, tfl.Pool2DOptions)
    return {"padding": _PADDING[o.Padding()], "stride_h": o.StrideH(), "stride_w": o.StrideW(),
            "filter_h": o.FilterHeight(), "filter_w": o.FilterWidth(),
            "activation": _activation(o.FusedActivationFunction())}


def _fused_only(cls_name: str):
    def read(tfl, op) -> dict[str, Any]:
        o = _table(op, getattr(tfl, cls_name))
        return {"activation": _activation(o.FusedActivationFunction()) if o is not None else "NONE"}

    return read


OPTION_READERS["ADD"] = _fused_only("AddOptions")
OPTION_READERS["SUB"] = _fused_only("SubOptions")
OPTION_READERS["MUL"] = _fused_only("MulOptions")


@options_for("CONCATENATION")
def _concat(tfl, op) -> dict[str, Any]:
    o = _table(op, tfl.ConcatenationOptions)
    return {"axis": o.Axis(), "activation": _activation(o.FusedActivationFunction())}


@options_for("RESIZE_BILINEAR")
def _resize(tfl, op) -> dict[str, Any]:
    o = _table(op, tfl.ResizeBilinearOptions)
    return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}


@options_for("PRELU", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "LOGISTIC", "PAD", "RESHAPE", "DEQUANTIZE")
def _no_options(tfl, op) -> dict[str, Any]:
    return {}  # RESHAPE's target is the output tensor's shape; PAD's amounts are a constant input


def _import_tflite():
    try:
        import tflite
    except ImportError as exc:
        raise DependencyError("reading .tflite files needs the tflite package",
                              "pip install tflite==2.18.0 (a pure-Python flatbuffer parser)") from exc
    return tflite


def _constant(model, tensor, raw: bytes, where: str) -> np.ndarray | None:
    """The tensor's constant value, dequantised to float32 when quantised; None when it is an activation."""
    buf = model.Buffers(tensor.Buffer())
    if buf is None:
        return None
    if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        data = raw[buf.Offset(): buf.Offset() + buf.Size()]
    elif buf.DataLength():
        data = buf.DataAsNumpy().tobytes()
    else:
        return None
    dtype = _DTYPES.get(tensor.Type())
    if dtype is None:
        raise CheckpointError(f"{where}: constant of unsupported TFLite type {tensor.Type()}")
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _dequantise(value: np.ndarray, tensor) -> np.ndarray:
    """FP16 -> float32; INT8/UINT8/INT16 with scales -> (q - zero point) * scale; anything else as it is."""
    if value.dtype == np.float16:
        return value.astype(np.float32)
    q = tensor.Quantization()
    if value.dtype not in (np.int8, np.uint8, np.int16) or q is None or q.ScaleLength() == 0:
        return value
    scale = q.ScaleAsNumpy().astype(np.float32)
    zero = q.ZeroPointAsNumpy().astype(np.float32) if q.ZeroPointLength() else np.zeros_like(scale)
    if scale.size > 1:  # per-axis
        shape = [1] * value.ndim
        shape[q.QuantizedDimension()] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((value.astype(np.float32) - zero) * scale).astype(np.float32)


def read_tflite(path: str | Path):
    """The file's graph as a ``GraphSpec`` (constants folded); refuses what the torch graph cannot run."""
    import torch

    from faceexpr_cli.nn.tflite_graph import OP_BUILDERS, GraphSpec, OpSpec

    tfl = _import_tflite()
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "TFLite model")
    raw = path.read_bytes()
    if raw[4:8] != b"TFL3":
        raise CheckpointError(f"{path} is not a TFLite model (no TFL3 identifier)")
    model = tfl.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() != 1:
        raise CheckpointError(f"{path}: {model.SubgraphsLength()} subgraphs; only single-graph models load")
    sg = model.Subgraphs(0)
    tensors = [sg.Tensors(i) for i in range(sg.TensorsLength())]
    shapes = [tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else () for t in tensors]
    names = [t.Name().decode() for t in tensors]
    values: dict[int, np.ndarray] = {}
    for i, t in enumerate(tensors):
        value = _constant(model, t, raw, f"{path} tensor {names[i]}")
        if value is not None:
            values[i] = value
    ops: list[OpSpec] = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = tfl.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        ins, outs = [int(i) for i in op.InputsAsNumpy()], [int(i) for i in op.OutputsAsNumpy()]
        if kind == "DEQUANTIZE" and ins[0] in values:  # fold: the output is a float constant
            values[outs[0]] = _dequantise(values[ins[0]], tensors[ins[0]])
            continue
        if kind not in OPTION_READERS or kind not in OP_BUILDERS:
            raise CheckpointError(f"{path}: TFLite operator {kind} is not supported",
                                  f"supported: {', '.join(sorted(set(OPTION_READERS) & set(OP_BUILDERS)))}")
        if len(outs) != 1:
            raise CheckpointError(f"{path}: operator {kind} has {len(outs)} outputs; one is supported")
        for i in ins:
            if i >= 0 and i not in values and tensors[i].Type() not in _FLOAT_TYPES:
                raise CheckpointError(f"{path}: operator {kind} reads a quantised activation ({names[i]})",
                                      "only float models (float, FP16 or INT8 weights) load")
        ops.append(OpSpec(kind, ins, outs, OPTION_READERS[kind](tfl, op)))
    constants = {i: torch.from_numpy(_dequantise(v, tensors[i])) for i, v in values.items()}
    return GraphSpec(shapes=shapes, constants=constants, ops=ops,
                     inputs=[int(i) for i in sg.InputsAsNumpy()], outputs=[int(i) for i in sg.OutputsAsNumpy()],
                     names=names)


def load_tflite(path: str | Path):
    """The ``.tflite`` model as a torch module in eval mode: NHWC float inputs (any batch) -> tuple of outputs."""
    from faceexpr_cli.nn.tflite_graph import TFLiteGraph

    spec = read_tflite(path)
    try:
        graph = TFLiteGraph(spec)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return graph.eval()


def load_card_tflite(card: str, source: str, explicit: str | Path | None = None):
    """A card's ``.tflite`` weight source as a torch module: ``explicit`` if given, else the verified cache copy
    (``WeightsNotFoundError`` naming ``fx download weights <card>`` when it is missing)."""
    from faceexpr_cli.weights import find_weights

    return load_tflite(find_weights(card, source, explicit))
