"""An ONNX graph as cnnscope's dataflow :class:`~cnnscope.graph.dataflow.Graph`, so the one
receptive-field engine (:mod:`cnnscope.analysis.receptive_field`) reads ONNX files too.

Each ONNX node becomes the ATen op PyTorch would have recorded, its arguments in ATen's order
(``Conv`` → ``aten.convolution(x, w, b, stride, padding, dilation, transposed, output_padding,
groups)``, ``MaxPool`` → ``aten.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)`` …), so
every RF rule applies unchanged. Elementwise ops and normalisations are RF-neutral (the union of
their inputs' regions); shape plumbing (``Shape``, ``Constant``) carries no RF; an op with no mapping
makes the RF global with a note naming it, as an unknown ATen op does. ONNX pads may be asymmetric
(``[begin…, end…]``): the RF reads the begin pads, which is where the output grid starts.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ..graph.dataflow import Graph, ModuleInfo, Node, Value, ValueRef

#: ONNX elem_type -> (dtype name as the PyTorch graph writes it, bytes per element)
_DTYPES = {1: ("float32", 4), 10: ("float16", 2), 11: ("float64", 8), 16: ("bfloat16", 2), 7: ("int64", 8),
           6: ("int32", 4), 9: ("bool", 1), 2: ("uint8", 1), 3: ("int8", 1)}

#: ops whose outputs describe shapes, not pixels
_NO_RF = {"Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike", "RandomNormalLike",
          "RandomUniformLike"}

#: RF-neutral ops: each output position reads the same positions of its inputs (broadcasting allowed)
_POINTWISE = {"Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu",
              "Gelu", "Mish", "Softplus", "Softsign", "PRelu", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp",
              "Log", "Neg", "Abs", "Erf", "Min", "Max", "Sum", "Mean", "Where", "Identity", "Dropout", "Cast",
              "BatchNormalization", "InstanceNormalization", "Reciprocal", "Floor", "Ceil", "Round", "Not",
              "Equal", "Less", "Greater", "And", "Or", "QuantizeLinear", "DequantizeLinear", "Sign",
              "DynamicQuantizeLinear"}

#: quantized kernels read as their float op: (float op type, which inputs are its x, weight, bias)
_QUANTIZED_AS = {"ConvInteger": ("Conv", (0, 1, None)), "QLinearConv": ("Conv", (0, 3, 8)),
                 "MatMulInteger": ("MatMul", (0, 1)), "QLinearMatMul": ("MatMul", (0, 3))}

Builder = Callable[["_Builder", Any, list], tuple]


def _attrs(node) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Builder:
    def __init__(self, model, shapes: dict[str, tuple]) -> None:
        self.model = model
        self.shapes = shapes
        self.nodes: list[Node] = []
        self.values: dict[int, Value] = {}
        self.value_of: dict[str, int] = {}
        self.constants = {t.name: t for t in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.constants[n.output[0]] = a.t

    def const_list(self, name: str) -> list | None:
        """An initializer's or Constant's values (scales, pads, axes), or None."""
        from onnx import numpy_helper

        t = self.constants.get(name)
        return None if t is None else numpy_helper.to_array(t).reshape(-1).tolist()

    def const_shape(self, name: str) -> list[int]:
        t = self.constants.get(name)
        return list(t.dims) if t is not None else []

    def _value(self, name: str, producer: int, index: int = 0) -> int:
        dims, elem = self.shapes.get(name, (None, 1))
        dtype, size = _DTYPES.get(elem, ("float32", 4))
        shape = tuple(int(d) if isinstance(d, int) else 1 for d in (dims or ()))
        vid = len(self.values)
        self.values[vid] = Value(vid, shape, dtype, size, producer, index)
        self.value_of[name] = vid
        return vid

    def source(self, name: str, kind: str) -> int:
        node = Node(len(self.nodes), kind, name, "")
        self.nodes.append(node)
        vid = self._value(name, node.index)
        node.outputs.append(vid)
        return vid

    def ref(self, name: str) -> ValueRef | None:
        if not name:
            return None
        if name not in self.value_of:
            self.source(name, "const")
        return ValueRef(self.value_of[name])

    def op(self, onnx_node, scope: str, op, args: tuple, target: str | None = None) -> None:
        inputs = [a.id for a in _flat_refs(args)]
        node = Node(len(self.nodes), "op", target or str(op), scope, args, {}, inputs, [], op)
        self.nodes.append(node)
        for i, out in enumerate(o for o in onnx_node.output if o):
            node.outputs.append(self._value(out, node.index, i))


def _flat_refs(args) -> list[ValueRef]:
    out = []
    for a in args:
        if isinstance(a, ValueRef):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(x for x in a if isinstance(x, ValueRef))
    return out


def _spatial(b: _Builder, name: str) -> int:
    dims = b.shapes.get(name, (None, 0))[0]
    return max(len(dims) - 2, 1) if dims else 2


def _window_args(a: dict, n: int, kernel: list[int]) -> tuple[list, list, list]:
    strides = list(a.get("strides", [1] * n))
    pads = list(a.get("pads", [0] * (2 * n)))[:n]
    dil = list(a.get("dilations", [1] * n))
    if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER", "SAME_UPPER", "SAME_LOWER"):
        pads = [((k - 1) * d) // 2 for k, d in zip(kernel, dil)]   # the begin pad of SAME (RF's view)
    return strides, pads, dil


def build_graph(model, shapes: dict[str, tuple], scope_of: Callable[[Any], str | None],
                value_of: dict[str, int] | None = None, weight_names: Iterable[str] = ()) -> Graph:
    """The dataflow graph of ``model`` (its ``shapes``: value name -> (dims, elem_type), as
    :func:`cnnscope.export.onnx_summary.infer_shapes` gives them); ``value_of``, when given, is filled
    with each ONNX value name's id in the graph."""
    import torch

    aten = torch.ops.aten
    b = _Builder(model, shapes)
    init_names = set(b.constants) | set(weight_names)     # infer_shapes turns big initializers into inputs
    inputs = [b.source(v.name, "input") for v in model.graph.input if v.name not in init_names]
    for v in model.graph.input:
        if v.name in init_names and v.name not in b.constants:
            b.source(v.name, "param")
    for node in model.graph.node:
        t, scope = node.op_type, scope_of(node) or ""
        a = _attrs(node)
        if t in _NO_RF:
            for out in node.output:
                if out:
                    b.source(out, "const")
            continue
        if t == "DequantizeLinear" and node.input and node.input[0] in init_names:
            b.value_of[node.output[0]] = b.ref(node.input[0]).id     # a quantized weight seen as float
            continue
        ins = [b.ref(i) for i in node.input]
        if t in _QUANTIZED_AS:           # integer kernels: the float op's operands, scales dropped
            t, ins = _QUANTIZED_AS[t][0], [ins[k] if k is not None and k < len(ins) else None
                                           for k in _QUANTIZED_AS[t][1]]
        x = ins[0] if ins else None
        if t in ("Conv", "ConvTranspose"):
            w_name = node.input[3 if node.op_type == "QLinearConv" else 1]
            w_dims = b.shapes.get(w_name, (None, 0))[0] or b.const_shape(w_name)
            n = len(w_dims) - 2
            kernel = list(a.get("kernel_shape", w_dims[2:]))
            s, p, d = _window_args(a, n, kernel)
            out_pad = list(a.get("output_padding", [0] * n))
            b.op(node, scope, aten.convolution.default,
                 (x, ins[1], ins[2] if len(ins) > 2 else None, s, p, d, t == "ConvTranspose", out_pad,
                  int(a.get("group", 1))))
        elif t in ("MaxPool", "AveragePool", "LpPool"):
            n = len(a["kernel_shape"])
            k = list(a["kernel_shape"])
            s, p, d = _window_args(a, n, k)
            ceil = bool(a.get("ceil_mode", 0))
            if t == "MaxPool":
                op = {1: aten.max_pool1d.default, 2: aten.max_pool2d.default, 3: aten.max_pool3d.default}[n]
                b.op(node, scope, op, (x, k, s, p, d, ceil))
            else:
                op = {1: aten.avg_pool1d.default, 2: aten.avg_pool2d.default, 3: aten.avg_pool3d.default}[n]
                b.op(node, scope, op, (x, k, s, p, ceil))
        elif t in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):
            n = _spatial(b, node.input[0])
            b.op(node, scope, aten.mean.dim, (x, list(range(2, 2 + n)), True))
        elif t.startswith("Reduce"):
            axes = a.get("axes") or (b.const_list(node.input[1]) if len(node.input) > 1 and node.input[1] else None)
            dims = b.shapes.get(node.input[0], (None, 0))[0] or ()
            b.op(node, scope, aten.mean.dim, (x, list(axes) if axes else list(range(len(dims))),
                                              bool(a.get("keepdims", 1))))
        elif t in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
            out_dims = b.shapes.get(node.output[0], (None, 0))[0] or ()
            b.op(node, scope, aten.view.default, (x, [int(d) if isinstance(d, int) else -1 for d in out_dims]))
        elif t == "Transpose":
            b.op(node, scope, aten.permute.default, (x, list(a.get("perm", []))))
        elif t == "Concat":
            b.op(node, scope, aten.cat.default, ([r for r in ins if r is not None], int(a.get("axis", 0))))
        elif t == "Gemm":
            op_args = (ins[2], ins[0], ins[1]) if len(ins) > 2 and ins[2] is not None else None
            if op_args:
                b.op(node, scope, aten.addmm.default, op_args)
            else:
                b.op(node, scope, aten.mm.default, (ins[0], ins[1]))
        elif t == "MatMul":
            b.op(node, scope, aten.matmul.default, (ins[0], ins[1]))
        elif t == "Softmax":
            b.op(node, scope, aten._softmax.default, (x, int(a.get("axis", -1)), False))
        elif t == "LayerNormalization":
            b.op(node, scope, aten.native_layer_norm.default, (x, [], None, None, 1e-5))
        elif t in ("Resize", "Upsample"):
            _resize(b, node, scope, a, ins)
        elif t == "Pad":
            pads = a.get("pads") or (b.const_list(node.input[1]) if len(node.input) > 1 else None) or []
            n = len(pads) // 2
            torch_pad = []
            for i in reversed(range(n)):           # torch: last dim first, (begin, end) pairs
                torch_pad += [int(pads[i]), int(pads[i + n])]
            mode = a.get("mode", b"constant")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if mode == "constant":
                b.op(node, scope, aten.constant_pad_nd.default, (x, torch_pad, 0.0))
            else:
                b.op(node, scope, None, (x,), target=f"onnx.Pad({mode})")
        elif t in _POINTWISE:
            b.op(node, scope, aten.add.Tensor if len([r for r in ins if r is not None]) > 1 else aten.relu.default,
                 tuple(r for r in ins if r is not None))
        else:
            b.op(node, scope, None, tuple(r for r in ins if r is not None), target=f"onnx.{t}")
    outputs = [b.value_of[o.name] for o in model.graph.output if o.name in b.value_of]
    modules = {"": ModuleInfo("", "onnx", 0, 0, 0, 0)}
    if value_of is not None:
        value_of.update(b.value_of)
    return Graph(b.nodes, b.values, [], modules, inputs, outputs, {})


def analyse_onnx(model, shapes: dict[str, tuple], scope_of, weight_names: Iterable[str] = ()
                 ) -> tuple[dict[str, Any], Any, Any]:
    """The file's graph read once, by the PyTorch summary's engines: (ONNX value name -> JSON RF for
    values that derive from the image, the model's total RF, the :class:`~cnnscope.analysis.memory.Liveness`
    of its activations — every node allocating its outputs, as the file describes them).
    ``weight_names``: the initializers, also those :func:`.onnx_shapes.infer_shapes` made inputs."""
    from ..analysis.memory import liveness
    from ..analysis.receptive_field import analyse, total_receptive_field

    value_of: dict[str, int] = {}
    graph = build_graph(model, shapes, scope_of, value_of, weight_names)
    result = analyse(graph)
    by_name = {name: result.rfs[vid].to_json() for name, vid in value_of.items() if vid in result.rfs}
    total = total_receptive_field(graph, result)
    return by_name, (total.to_json() if total is not None else None), liveness(graph)


def _resize(b: _Builder, node, scope: str, a: dict, ins: list) -> None:
    """``Resize``/``Upsample`` as ``aten.upsample_*.vec(x, output_size, [align_corners,] scale_factors)``."""
    import torch

    aten = torch.ops.aten
    x = ins[0]
    in_dims = b.shapes.get(node.input[0], (None, 0))[0] or ()
    out_dims = b.shapes.get(node.output[0], (None, 0))[0] or ()
    n = max(len(in_dims) - 2, 1)
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ctm = a.get("coordinate_transformation_mode", b"half_pixel")
    ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
    scales = None
    if node.op_type == "Resize" and len(node.input) > 2 and node.input[2]:
        scales = b.const_list(node.input[2])
    elif node.op_type == "Upsample" and len(node.input) > 1:
        scales = b.const_list(node.input[1])
    spatial_scales = [float(s) for s in scales[2:]] if scales and len(scales) >= 2 + n else None
    size = [int(d) for d in out_dims[2:]] if out_dims and all(isinstance(d, int) for d in out_dims[2:]) else None
    if mode == "nearest":
        op = {1: aten.upsample_nearest1d.vec, 2: aten.upsample_nearest2d.vec, 3: aten.upsample_nearest3d.vec}[n]
        b.op(node, scope, op, (x, size, spatial_scales))
    elif mode == "linear":
        op = {1: aten.upsample_linear1d.vec, 2: aten.upsample_bilinear2d.vec, 3: aten.upsample_trilinear3d.vec}[n]
        b.op(node, scope, op, (x, size, ctm == "align_corners", spatial_scales))
    elif mode == "cubic" and n == 2:
        b.op(node, scope, aten.upsample_bicubic2d.vec, (x, size, ctm == "align_corners", spatial_scales))
    else:
        b.op(node, scope, None, (x,), target=f"onnx.Resize({mode})")
