"""A TFLite graph run as a torch module, op for op, so a MediaPipe model exports to ONNX and runs on any device.

The graph description (``GraphSpec``) is plain data: tensor shapes, constant weights (already dequantised, in
TFLite's own layouts), and the operators in execution order with their options. ``builders/tflite.py`` reads it
from a ``.tflite`` file; this module never touches files.

Layout: TFLite is NHWC. Inside, every rank-4 activation is kept NCHW (torch's native conv layout); the ops whose
meaning depends on the layout (pad, reshape, concatenation axes, broadcast constants) translate, and the graph's
rank-4 inputs and outputs are NHWC as in the file. The batch axis is free: the file's batch of 1 becomes any size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class OpSpec:
    kind: str  # TFLite builtin operator name, e.g. CONV_2D
    inputs: list[int]  # tensor indices; -1 is an absent optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphSpec:
    shapes: list[tuple[int, ...]]  # every tensor's shape as the file states it (batch 1)
    constants: dict[int, torch.Tensor]  # float32 (or int) constant tensors, TFLite layout
    ops: list[OpSpec]
    inputs: list[int]
    outputs: list[int]
    names: list[str] = field(default_factory=list)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "NONE": lambda x: x,
    "RELU": torch.relu,
    "RELU6": lambda x: torch.clamp(x, 0.0, 6.0),
    "RELU_N1_TO_1": lambda x: torch.clamp(x, -1.0, 1.0),
    "TANH": torch.tanh,
    "LOGISTIC": torch.sigmoid,
}

OP_BUILDERS: dict[str, Callable[[GraphSpec, OpSpec], nn.Module]] = {}


def op_builder(*kinds: str):
    def register(fn):
        for kind in kinds:
            OP_BUILDERS[kind] = fn
        return fn

    return register


def as_activation(value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A constant operand in the layout its rank-4 partner has inside (NCHW), numpy broadcasting kept."""
    if len(shape) != 4:
        return value
    while value.dim() < 4:
        value = value.unsqueeze(0)
    return value.permute(*NHWC_TO_NCHW).contiguous()


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME rule: output ceil(size / stride); the extra pixel, if any, goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x):
        return self.fn(x)


class Conv(nn.Module):
    """CONV_2D / DEPTHWISE_CONV_2D: explicit asymmetric padding when SAME needs it, then the fused activation."""

    def __init__(self, weight, bias, groups, stride, dilation, pads, activation):
        super().__init__()
        (top, bottom), (left, right) = pads
        symmetric = top == bottom and left == right
        self.pad = None if symmetric else (left, right, top, bottom)
        out_ch, _, kh, kw = weight.shape
        self.conv = nn.Conv2d(weight.shape[1] * groups, out_ch, (kh, kw), stride, (top, left) if symmetric else 0,
                              dilation, groups, bias=bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            if bias is not None:
                self.conv.bias.copy_(bias)
        self.act = Activation(activation)

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.act(self.conv(x))


def _conv_geometry(spec: GraphSpec, op: OpSpec, kh: int, kw: int):
    o = op.options
    _, h, w, _ = spec.shapes[op.inputs[0]]
    stride, dilation = (o["stride_h"], o["stride_w"]), (o.get("dilation_h", 1), o.get("dilation_w", 1))
    if o["padding"] == "SAME":
        pads = (same_padding(h, kh, stride[0], dilation[0]), same_padding(w, kw, stride[1], dilation[1]))
    else:
        pads = ((0, 0), (0, 0))
    return stride, dilation, pads


def _bias(spec: GraphSpec, op: OpSpec):
    return spec.constants[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None


@op_builder("CONV_2D")
def _conv2d(spec: GraphSpec, op: OpSpec) -> nn.Module:
    w = spec.constants[op.inputs[1]]  # [O, KH, KW, I]
    groups = spec.shapes[op.inputs[0]][3] // w.shape[3]
    stride, dilation, pads = _conv_geometry(spec, op, w.shape[1], w.shape[2])
    return Conv(w.permute(0, 3, 1, 2), _bias(spec, op), groups, stride, dilation, pads, op.options["activation"])


@op_builder("DEPTHWISE_CONV_2D")
def _depthwise(spec: GraphSpec, op: OpSpec) -> nn.Module:
    w = spec.constants[op.inputs[1]]  # [1, KH, KW, C * M]; output channel c * M + m reads input channel c
    channels = spec.shapes[op.inputs[0]][3]
    stride, dilation, pads = _conv_geometry(spec, op, w.shape[1], w.shape[2])
    return Conv(w.permute(3, 0, 1, 2), _bias(spec, op), channels, stride, dilation, pads, op.options["activation"])


class MaxPool(nn.Module):
    def __init__(self, kernel, stride, pads, activation):
        super().__init__()
        (top, bottom), (left, right) = pads
        self.pad = (left, right, top, bottom) if any((top, bottom, left, right)) else None
        self.kernel, self.stride = kernel, stride
        self.act = Activation(activation)

    def forward(self, x):
        if self.pad is not None:  # padded cells never win the max
            x = F.pad(x, self.pad, value=float("-inf"))
        return self.act(F.max_pool2d(x, self.kernel, self.stride))


@op_builder("MAX_POOL_2D")
def _max_pool(spec: GraphSpec, op: OpSpec) -> nn.Module:
    o = op.options
    kernel = (o["filter_h"], o["filter_w"])
    stride, _, pads = _conv_geometry(spec, op, *kernel)
    return MaxPool(kernel, stride, pads, o["activation"])


class Binary(nn.Module):
    """ADD / SUB / MUL / PRELU with either operand possibly a constant (held as a buffer)."""

    def __init__(self, fn, constants: list[torch.Tensor | None], activation: str):
        super().__init__()
        self.fn = fn
        self.slots = [c is None for c in constants]  # True: the operand comes from the graph
        for i, c in enumerate(constants):
            if c is not None:
                self.register_buffer(f"const{i}", c)
        self.act = Activation(activation)

    def forward(self, *xs):
        it = iter(xs)
        args = [next(it) if live else getattr(self, f"const{i}") for i, live in enumerate(self.slots)]
        return self.act(self.fn(*args))


def _prelu(x, alpha):
    return torch.clamp(x, min=0) + alpha * torch.clamp(x, max=0)


def _prelu_channels(x, alpha):
    return F.prelu(x, alpha)  # one slope per channel: torch's fused kernel (3x faster than the formula)


BINARY = {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul, "PRELU": _prelu}


@op_builder(*BINARY)
def _binary(spec: GraphSpec, op: OpSpec) -> nn.Module:
    rank4 = max((spec.shapes[i] for i in op.inputs), key=len)
    consts = [as_activation(spec.constants[i].float(), rank4) if i in spec.constants else None for i in op.inputs]
    fn = BINARY[op.kind]
    alpha = consts[1] if op.kind == "PRELU" else None
    if alpha is not None and len(rank4) == 4 and alpha.dim() == 4 and alpha.shape[0] * alpha.shape[2] * alpha.shape[3] == 1:
        fn, consts[1] = _prelu_channels, alpha.reshape(-1)
    return Binary(fn, consts, op.options.get("activation", "NONE"))


@op_builder(*(a for a in ACTIVATIONS if a != "NONE"))
def _activation(spec: GraphSpec, op: OpSpec) -> nn.Module:
    return Activation(op.kind)


class Identity(nn.Module):
    def forward(self, x):
        return x.float()


@op_builder("DEQUANTIZE")
def _dequantize(spec: GraphSpec, op: OpSpec) -> nn.Module:
    return Identity()  # constant inputs were dequantised when the file was read; a float input passes through


class Pad(nn.Module):
    def __init__(self, pads: tuple[int, ...], value: float = 0.0):
        super().__init__()
        self.pads, self.value = pads, value

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value)


@op_builder("PAD")
def _pad(spec: GraphSpec, op: OpSpec) -> nn.Module:
    pairs = spec.constants[op.inputs[1]].tolist()  # [[before, after]] per NHWC axis
    if pairs[0] != [0, 0]:
        raise ValueError("PAD over the batch axis is not supported")
    if len(pairs) == 4:
        pairs = [pairs[i] for i in NHWC_TO_NCHW]
    flat: list[int] = []
    for before, after in reversed(pairs[1:]):  # F.pad lists the last axis first
        flat += [int(before), int(after)]
    return Pad(tuple(flat))


class Reshape(nn.Module):
    """Reshapes in TFLite's NHWC order; the batch axis follows the input."""

    def __init__(self, in_rank: int, out_shape: tuple[int, ...]):
        super().__init__()
        self.in_rank, self.tail = in_rank, tuple(out_shape[1:])

    def forward(self, x):
        if self.in_rank == 4:
            x = x.permute(*NCHW_TO_NHWC)
        x = x.reshape(-1, *self.tail)
        return x.permute(*NHWC_TO_NCHW) if len(self.tail) == 3 else x


@op_builder("RESHAPE")
def _reshape(spec: GraphSpec, op: OpSpec) -> nn.Module:
    return Reshape(len(spec.shapes[op.inputs[0]]), spec.shapes[op.outputs[0]])


class Concat(nn.Module):
    def __init__(self, dim: int, activation: str):
        super().__init__()
        self.dim = dim
        self.act = Activation(activation)

    def forward(self, *xs):
        return self.act(torch.cat(xs, dim=self.dim))


@op_builder("CONCATENATION")
def _concat(spec: GraphSpec, op: OpSpec) -> nn.Module:
    rank = len(spec.shapes[op.outputs[0]])
    axis = op.options["axis"] % rank
    if any(i in spec.constants for i in op.inputs):
        raise ValueError("CONCATENATION of constants is not supported")
    return Concat(AXIS_NHWC_TO_NCHW[axis] if rank == 4 else axis, op.options.get("activation", "NONE"))


def bilinear_matrix(size_in: int, size_out: int, align_corners: bool, half_pixel: bool) -> torch.Tensor:
    """Rows of interpolation weights [out, in] with TFLite's source-coordinate rule for RESIZE_BILINEAR."""
    if align_corners and size_out > 1:
        scale = (size_in - 1) / (size_out - 1)
    else:
        scale = size_in / size_out
    m = torch.zeros(size_out, size_in, dtype=torch.float64)
    for dst in range(size_out):
        src = (dst + 0.5) * scale - 0.5 if half_pixel else dst * scale
        lo = min(max(math.floor(src), 0), size_in - 1)
        hi = min(max(math.ceil(src), 0), size_in - 1)
        frac = min(max(src - lo, 0.0), 1.0) if hi != lo else 0.0
        m[dst, lo] += 1.0 - frac
        m[dst, hi] += frac
    return m.float()


class ResizeBilinear(nn.Module):
    """Separable: rows then columns, as two matrix products (exact weights, exports as MatMul)."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor):
        super().__init__()
        self.register_buffer("rows", rows)
        self.register_buffer("cols_t", cols.t().contiguous())

    def forward(self, x):
        return torch.matmul(torch.matmul(self.rows, x), self.cols_t)


@op_builder("RESIZE_BILINEAR")
def _resize_bilinear(spec: GraphSpec, op: OpSpec) -> nn.Module:
    _, h, w, _ = spec.shapes[op.inputs[0]]
    oh, ow = (int(v) for v in spec.constants[op.inputs[1]].tolist())
    ac, hp = op.options.get("align_corners", False), op.options.get("half_pixel_centers", False)
    return ResizeBilinear(bilinear_matrix(h, oh, ac, hp), bilinear_matrix(w, ow, ac, hp))


class TFLiteGraph(nn.Module):
    """forward(*inputs) with the file's input layouts (NHWC images, any batch) -> tuple of its outputs."""

    def __init__(self, spec: GraphSpec):
        super().__init__()
        unknown = sorted({op.kind for op in spec.ops} - set(OP_BUILDERS))
        if unknown:
            raise ValueError(f"unsupported TFLite operators: {', '.join(unknown)}")
        self.in_ranks = [len(spec.shapes[i]) for i in spec.inputs]
        self.out_ranks = [len(spec.shapes[i]) for i in spec.outputs]
        self.input_ids, self.output_ids = list(spec.inputs), list(spec.outputs)
        self.layers = nn.ModuleList(OP_BUILDERS[op.kind](spec, op) for op in spec.ops)
        self.wiring = [([i for i in op.inputs if i >= 0 and i not in spec.constants], op.outputs[0])
                       for op in spec.ops]
        self.input_shapes = [tuple(spec.shapes[i]) for i in spec.inputs]
        self.output_names = [spec.names[i] for i in spec.outputs] if spec.names else []

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values: dict[int, torch.Tensor] = {}
        for idx, rank, x in zip(self.input_ids, self.in_ranks, inputs, strict=True):
            values[idx] = x.permute(*NHWC_TO_NCHW) if rank == 4 else x
        for layer, (ins, out) in zip(self.layers, self.wiring, strict=True):
            values[out] = layer(*[values[i] for i in ins])
        return tuple(values[i].permute(*NCHW_TO_NHWC) if rank == 4 else values[i]
                     for i, rank in zip(self.output_ids, self.out_ranks, strict=True))
