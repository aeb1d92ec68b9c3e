"""Operations on exported ONNX protos: naming dims, metadata, simplification, fp16, saving, checking I/O.

Everything here works on ``onnx.ModelProto`` objects in memory, so the exporter can check, simplify and convert a
graph before a single file is written, and write each graph once, atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from faceexpr_cli.config.cards import ModelCard, OnnxPart
from faceexpr_cli.onnx.parts import ExportError, argument_dims

# Kept in fp32 by the fp16 conversion: reductions, normalisations, exponentials and sampling coordinates lose too
# much in half precision (a LayerNorm's variance or a temperature-0.1 softmax overflows or flushes to zero).
FP16_KEEP_FP32 = ("LayerNormalization", "InstanceNormalization", "GroupNormalization", "ReduceMean", "ReduceSum",
                  "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "Pow", "Sqrt", "Reciprocal", "Softmax",
                  "LogSoftmax", "Exp", "Log", "Erf", "GridSample", "Resize", "CumSum", "Range", "TopK")
META_CARD = "fx.card"
META_PART = "fx.part"
META_TINY = "fx.tiny"


def dims_of(value_info: Any) -> list[int | str]:
    """A graph value's shape: ints for fixed dims, names for symbolic ones ('?' when unnamed)."""
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return dims


def name_dynamic_dims(proto: Any, part: OnnxPart, axes: dict[str, dict[int, str]]) -> dict[str, str]:
    """Rename the exporter's symbols (s0, s77...) after the card's dim names, everywhere in the graph."""
    rename: dict[str, str] = {}
    graph = proto.graph
    for vi in graph.input:
        for axis, name in axes.get(vi.name, {}).items():
            dims = vi.type.tensor_type.shape.dim
            if axis < len(dims) and dims[axis].dim_param:
                rename.setdefault(dims[axis].dim_param, name)
    if not rename:
        return rename
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    return rename


def set_metadata(proto: Any, card_yaml: str, part: str, tiny: bool) -> None:
    """Every graph carries its card, so a consumer never guesses preprocessing."""
    keep = [p for p in proto.metadata_props if p.key not in (META_CARD, META_PART, META_TINY)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in ((META_CARD, card_yaml), (META_PART, part), (META_TINY, "1" if tiny else "0")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def metadata(proto_or_session: Any) -> dict[str, str]:
    if hasattr(proto_or_session, "get_modelmeta"):
        return dict(proto_or_session.get_modelmeta().custom_metadata_map)
    return {p.key: p.value for p in proto_or_session.metadata_props}


def simplify(proto: Any) -> Any:
    """onnxslim: constant folding, dead-node removal and fusions; parity is checked on the result."""
    import onnxslim

    return onnxslim.slim(proto)


def toposort(proto: Any) -> None:
    """Order nodes so that every input is produced before use (ORT's fp16 tool can leave casts out of order)."""
    graph = proto.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        left = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):
            raise ExportError(f"graph has a cycle or an unknown input at node '{left[0].name}'")
        pending = left
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(proto: Any) -> Any:
    """Weights and most ops in float16, I/O kept float32, sensitive ops (``FP16_KEEP_FP32``) in float32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_KEEP_FP32))
    half = convert_float_to_float16(proto, keep_io_types=True, op_block_list=block)
    toposort(half)
    # The converter types some value_info float16 that stay float32 (they feed a kept-fp32 op), which
    # onnx.checker rejects: the types are inferred again from the converted nodes instead.
    # (Protos past protobuf's 2 GB cannot be inferred in memory; they keep the converter's types.)
    import onnx

    if half.ByteSize() >= 2**31:
        return half
    del half.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(half)


def weight_bytes(proto: Any) -> int:
    import numpy as np
    from onnx.helper import tensor_dtype_to_np_dtype

    return sum(int(np.prod(t.dims)) * tensor_dtype_to_np_dtype(t.data_type).itemsize for t in proto.graph.initializer)


def save_graph(proto: Any, path: Path, external_over_mb: float = 512) -> Path | None:
    """Write ``path`` (and ``path.data`` when the weights pass ``external_over_mb``) atomically; returns the data file."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    external = weight_bytes(proto) > external_over_mb * 2**20
    data_name = path.name + ".data"
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=path.parent))
    try:
        if external:
            onnx.save_model(proto, tmp / path.name, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=1024)
            external = (tmp / data_name).is_file()  # small tensors stay inline
        else:
            onnx.save_model(proto, tmp / path.name)
        if external:
            os.replace(tmp / data_name, path.parent / data_name)
            onnx.load_external_data_for_model(proto, str(path.parent))  # save_model moved them out of proto
        else:
            (path.parent / data_name).unlink(missing_ok=True)
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path.parent / data_name if external else None


def check_graph(path: Path) -> None:
    """``onnx.checker`` on a written graph (by path, so external data and >2 GB graphs work)."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{path.name}: onnx.checker rejects the graph: {str(exc).splitlines()[0]}") from exc


_ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 2: "uint8", 9: "bool"}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def graph_io(proto_or_session: Any) -> tuple[list[tuple[str, list, str]], list[tuple[str, list, str]]]:
    """(name, shape, dtype) of inputs and outputs, from a proto or an ORT session."""
    if hasattr(proto_or_session, "get_inputs"):
        def conv(args):
            return [(a.name, [d if d is not None else "?" for d in a.shape], _ORT_DTYPES.get(a.type, a.type))
                    for a in args]

        return conv(proto_or_session.get_inputs()), conv(proto_or_session.get_outputs())
    graph = proto_or_session.graph
    inits = {i.name for i in graph.initializer}

    def conv_vi(vis):
        return [(v.name, dims_of(v), _ONNX_DTYPES.get(v.type.tensor_type.elem_type, "?")) for v in vis]

    return conv_vi([v for v in graph.input if v.name not in inits]), conv_vi(graph.output)


def validate_io(proto_or_session: Any, card: ModelCard, part: OnnxPart, tiny: bool, where: str) -> list[str]:
    """The graph's input/output names, ranks, fixed sizes and dtypes against the card; returns notes, raises on misfit.

    A dim the card fixes must be fixed to that size in the graph (or left symbolic); a dim the card leaves dynamic may
    be symbolic or, in a graph exported with ``--static``, any size.
    """
    args = argument_dims(card, tiny)
    inputs, outputs = graph_io(proto_or_session)
    notes: list[str] = []
    for kind, specs, found in (("input", part.inputs, inputs), ("output", part.outputs, outputs)):
        names = [f[0] for f in found]
        if names != [s.name for s in specs]:
            raise ExportError(f"{where}: graph {kind}s are {names}, card '{card.name}' part '{part.name}' says "
                              f"{[s.name for s in specs]}", "re-export the graph from this card")
        for spec, (name, shape, dtype) in zip(specs, found, strict=True):
            if len(shape) != len(spec.shape):
                raise ExportError(f"{where}: {kind} '{name}' has rank {len(shape)}, the card says {spec.shape}")
            if dtype not in (spec.dtype, "?"):
                raise ExportError(f"{where}: {kind} '{name}' is {dtype}, the card says {spec.dtype}")
            for got, want in zip(shape, spec.shape, strict=True):
                fixed = want if isinstance(want, int) else args.get(want)
                if fixed is not None and isinstance(got, int) and got != fixed:
                    raise ExportError(f"{where}: {kind} '{name}' has shape {shape}, the card says {spec.shape}"
                                      + (f" ({want} = {fixed})" if isinstance(want, str) else ""))
                if fixed is None and isinstance(got, int):
                    notes.append(f"{kind} '{name}' dim '{want}' is fixed at {got} in the graph")
    return notes
