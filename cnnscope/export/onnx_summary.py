"""ONNX files as input: per-node rows, params from initializers, MACs from shape inference.

``cnnscope summary model.onnx`` reads the file's graph (weights are never loaded: external data
stays on disk), fixes the input shape, runs ONNX shape inference, and builds the same
:class:`~cnnscope.analysis.summary.Summary` as the PyTorch analysis, so every renderer works on it.

Conventions, the same as the PyTorch analysis:

- **MACs** (1 MAC = one multiply-accumulate) come from a registry of small per-op-type formulas
  (:data:`ONNX_MAC_FORMULAS`), each taking shapes and attributes, never tensors: Conv, ConvTranspose,
  Gemm, MatMul, Einsum and their quantized forms. Everything else (BatchNormalization, activations,
  Add, pooling, Softmax, LayerNormalization, ...) counts 0. FLOPs = 2 × MACs.
- **params** are the elements of the floating-point initializers, except the running mean and
  variance that BatchNormalization reads (inputs 3 and 4), which PyTorch keeps as buffers. Integer
  initializers (shapes, indices) are constants, not params. An initializer used by several nodes
  counts once in every row that contains them all, as a shared PyTorch parameter does.

For a file written by ``cnnscope export`` (BatchNorm kept, initializers not deduplicated) the totals
equal the PyTorch summary of the same model: params exactly, MACs to the multiply-accumulate for
every torchvision classification model (see ``docs/export.md`` for the measured table and the
cases where an exporter folds parameters, e.g. ``--fold-bn``, which change what the file holds).

Rows follow the module tree when node names carry the TorchScript exporter's scopes
(``/layer1/layer1.0/conv1/Conv`` → module ``layer1.0.conv1``): a module row per scope (its params
and MACs include its children's) and a row per node; a leaf module that became one node is one
row typed by the op (``layer1.0.conv1  Conv``). Files from other tools get one row per node.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..analysis.summary import LayerRow, Summary, Totals
from ..errors import CnnscopeError
from ..ops import formulas
from ..ops.uncounted import tally
from ..ops.registry import op_registrar
from .onnx_shapes import _FLOAT_TYPES, _dims_of, _prod, infer_shapes

Shape = tuple  # a tuple of ints (None where the file leaves a dimension unknown)

#: (input shapes, output shapes, attributes) -> MACs
OnnxMacFormula = Callable[[Sequence[Shape | None], Sequence[Shape | None], dict], int]
ONNX_MAC_FORMULAS: dict[str, OnnxMacFormula] = {}

#: ops whose output is a view or a copy of their input in PyTorch (not counted as activation bytes)
_ALIAS_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Constant", "Shape", "Size"}

#: (op type, input index) pairs that hold running statistics: PyTorch buffers, not parameters
_BUFFER_SLOTS = {("BatchNormalization", 3), ("BatchNormalization", 4)}

#: quantized files (``cnnscope quantize``, onnxruntime's quantizer): the slots that hold integer weights
#: (parameters, 1 byte each for int8) and those that hold scales and zero points (quantization
#: parameters: neither parameters nor activations; counted with the buffers' bytes)
_QUANT_WEIGHT_SLOTS = {("DequantizeLinear", 0), ("ConvInteger", 1), ("MatMulInteger", 1), ("QLinearConv", 3),
                       ("QLinearConv", 8), ("QLinearMatMul", 3)}
_QUANT_PARAM_SLOTS = {("DequantizeLinear", 1), ("DequantizeLinear", 2), ("QuantizeLinear", 1),
                      ("QuantizeLinear", 2), ("ConvInteger", 2), ("ConvInteger", 3), ("MatMulInteger", 2),
                      ("MatMulInteger", 3), *(("QLinearConv", i) for i in (1, 2, 4, 5, 6, 7)),
                      *(("QLinearMatMul", i) for i in (1, 2, 4, 5, 6, 7))}
#: a dynamic-quantization weight scale: a float initializer multiplied with DynamicQuantizeLinear's scale
_DYNAMIC_SCALE = ("Mul", "DynamicQuantizeLinear")



register_onnx_macs = op_registrar(ONNX_MAC_FORMULAS, "MAC formula")


@register_onnx_macs("Conv", "ConvInteger")
def conv_macs(inputs, outputs, attrs) -> int:
    """Every output element accumulates C_in/groups · K_h · K_w products: prod(out) · prod(W[1:])."""
    return formulas.conv_macs(outputs[0], inputs[1])


@register_onnx_macs("QLinearConv")
def qlinear_conv_macs(inputs, outputs, attrs) -> int:
    return formulas.conv_macs(outputs[0], inputs[3])


@register_onnx_macs("ConvTranspose")
def conv_transpose_macs(inputs, outputs, attrs) -> int:
    """Every input element is multiplied by the (C_out/groups) · K_h · K_w weights of its group."""
    return formulas.conv_transpose_macs(inputs[0], inputs[1])


@register_onnx_macs("Gemm")
def gemm_macs(inputs, outputs, attrs) -> int:
    """Y = A·B (+ C): M · K · N, with A and B transposed as the attributes say; the bias add is free."""
    a, b = inputs[0], inputs[1]
    m, k = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if attrs.get("transB", 0) else b[1]
    return int(m) * int(k) * int(n)


@register_onnx_macs("MatMul", "MatMulInteger")
def matmul_macs(inputs, outputs, attrs) -> int:
    """Every output element (batch dims broadcast) accumulates K products: prod(out) · K."""
    return formulas.matmul_macs(outputs[0], inputs[0][-1])


@register_onnx_macs("QLinearMatMul")
def qlinear_matmul_macs(inputs, outputs, attrs) -> int:
    return formulas.matmul_macs(outputs[0], inputs[0][-1])


@register_onnx_macs("Einsum")
def einsum_macs(inputs, outputs, attrs) -> int:
    """A product of two or more operands: every index of the equation, kept or summed, is one loop,
    so MACs = the product of all index sizes (ellipsis dims broadcast, aligned from the right)."""
    eq = attrs.get("equation", "")
    eq = eq.decode() if isinstance(eq, bytes) else eq
    terms = eq.replace(" ", "").split("->")[0].split(",")
    if len(terms) < 2:
        return 0
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, inputs):
        if "..." in term:
            head, tail = term.split("...")
            n_ell = len(shape) - len(head) - len(tail)
            letters = list(head) + [f"...{n_ell - 1 - i}" for i in range(n_ell)] + list(tail)
        else:
            letters = list(term)
        for letter, d in zip(letters, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(d))
    return _prod(sizes.values())


# --------------------------------------------------------------------------------------- reading


@dataclass
class _Init:
    name: str
    dims: tuple[int, ...]
    elem_type: int
    kind: str = "param"        # "param" | "buffer" | "constant"

    @property
    def numel(self) -> int:
        return _prod(self.dims)

    @property
    def nbytes(self) -> int:
        return self.numel * _elem_size(self.elem_type)


def _elem_size(elem_type: int) -> int:
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except Exception:
        return 4


def load_graph(path: str | os.PathLike):
    """The ModelProto without its external weight data (cheap even for a 2.5 GB model)."""
    import onnx

    from ..fileio import require_regular_file

    path = str(path)
    require_regular_file(path, "ONNX file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise CnnscopeError(f"'{path}' is not a readable ONNX file ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else 'parse error'})") from None
    if not model.graph.node:
        raise CnnscopeError(f"'{path}' is not an ONNX model (its graph has no nodes)")
    return model


def classify_initializers(graph) -> dict[str, _Init]:
    """Every initializer with its kind: ``param`` (counted as parameters: float ones, and the integer
    weights of a quantized file), ``buffer`` (BN running statistics, PyTorch buffers), ``quant``
    (scales and zero points of a quantized file) or ``constant`` (other non-float tensors: shapes, indices)."""
    inits = {t.name: _Init(t.name, tuple(int(d) for d in t.dims), t.data_type) for t in graph.initializer}
    uses: dict[str, set[tuple[str, int]]] = {}
    producer = {o: n.op_type for n in graph.node for o in n.output}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in inits:
                slot = (node.op_type, i)
                if node.op_type == "Mul" and any(producer.get(x) == "DynamicQuantizeLinear" for x in node.input):
                    slot = _DYNAMIC_SCALE
                uses.setdefault(name, set()).add(slot)
    for name, init in inits.items():
        used = uses.get(name) or set()
        if used and all(u in _QUANT_PARAM_SLOTS or u == _DYNAMIC_SCALE for u in used):
            init.kind = "quant"
        elif used & _QUANT_WEIGHT_SLOTS:
            init.kind = "param"
        elif init.elem_type not in _FLOAT_TYPES:
            init.kind = "constant"
        elif used and all(u in _BUFFER_SLOTS for u in used):
            init.kind = "buffer"
    return inits


def weight_views(graph, inits: dict[str, "_Init"]) -> dict[str, str]:
    """``DequantizeLinear`` outputs that are a quantized weight seen as float (output name -> the integer
    initializer): a view of a parameter, not an activation (onnxruntime fuses it into the int8 kernel)."""
    return {n.output[0]: n.input[0] for n in graph.node
            if n.op_type == "DequantizeLinear" and n.input and n.input[0] in inits and inits[n.input[0]].kind == "param"}


def count_nonzero_params(graph, inits: dict[str, _Init]) -> int | None:
    """Non-zero elements of the parameter initializers (unstructured sparsity); None when their data is
    not in the file as read (external data left on disk)."""
    import numpy as np
    from onnx import numpy_helper

    total = 0
    for t in graph.initializer:
        if inits[t.name].kind != "param":
            continue
        try:
            total += int(np.count_nonzero(numpy_helper.to_array(t)))
        except (ValueError, TypeError, OSError):
            return None
    return total


def count_params(model) -> int:
    """Parameters held by an ONNX ModelProto: float initializers except BN running statistics."""
    return sum(i.numel for i in classify_initializers(model.graph).values() if i.kind == "param")


def _real_inputs(graph) -> list:
    init_names = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in init_names]


def _fix_input_shapes(model, path: str, input_size, batch_size: int | None) -> list[list[int]]:
    """Give every graph input concrete dims (``input_size`` / ``batch_size`` fill the symbolic ones)."""
    from ..units import parse_input_size

    inputs = _real_inputs(model.graph)
    if not inputs:
        raise CnnscopeError(f"'{path}' has no graph inputs to analyse")
    fixed_shapes = []
    for idx, vi in enumerate(inputs):
        dims = _dims_of(vi.type)
        if dims is None:
            raise CnnscopeError(f"input '{vi.name}' of '{path}' has no shape in the file; re-export it with shapes")
        want: list[Any] = list(dims)
        if idx == 0 and input_size is not None:
            if len(dims) < 2:
                raise CnnscopeError(f"--input-size needs an N×C×H×W input; '{vi.name}' has rank {len(dims)}")
            default_c = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else 3
            chw = parse_input_size(input_size, default_channels=default_c)
            if len(dims) != 1 + len(chw):
                raise CnnscopeError(f"--input-size {input_size} has {len(chw)} dims but input '{vi.name}' of "
                                    f"'{path}' has {len(dims)} (N plus {len(dims) - 1})")
            for j, d in enumerate(chw, start=1):
                if isinstance(dims[j], int) and dims[j] > 0 and dims[j] != d:
                    raise CnnscopeError(
                        f"'{path}' fixes input '{vi.name}' to {'×'.join(map(str, dims))}; --input-size "
                        f"{'×'.join(map(str, chw))} does not fit (export again with that size, or drop --input-size)")
                want[j] = d
        if want and (not isinstance(want[0], int) or want[0] <= 0):
            want[0] = batch_size or 1
        elif want and batch_size not in (None, 1) and want[0] != batch_size:
            raise CnnscopeError(f"'{path}' fixes the batch size of input '{vi.name}' to {want[0]}; "
                                f"--batch-size {batch_size} does not fit (export with --dynamic-batch)")
        missing = [str(d) for d in want if not isinstance(d, int) or d <= 0]
        if missing:
            raise CnnscopeError(f"input '{vi.name}' of '{path}' has symbolic dims ({', '.join(missing)}); "
                                f"pass --input-size CxHxW to fix them")
        shape_proto = vi.type.tensor_type.shape
        for d, v in zip(shape_proto.dim, want):
            d.Clear()
            d.dim_value = int(v)
        fixed_shapes.append([int(v) for v in want])
    return fixed_shapes


def shapes_from_onnxruntime(path, input_shapes: list[list[int]], names: list[str], external: bool = False) -> dict:
    """Shapes ONNX inference cannot derive, measured by running the file once in onnxruntime.

    Static inference stops at shapes computed from other shapes with arithmetic it does not
    propagate (ShuffleNet's channel split: Shape → Div → Slice; Swin's window padding). Those
    values are made graph outputs and the file is run on a random input of the fixed size.
    ``external``: the file keeps its weights in external data (over 2 GB): the modified model is
    then written to a temporary folder, since it cannot be serialised to one protobuf.
    Returns {} (with a warning) when that is impossible, e.g. the weights are missing.
    The file's external weight data is never loaded (a summary must stay cheap and bounded): such
    shapes are left unknown, with a warning.
    """
    import tempfile
    import warnings

    import numpy as np
    import onnx

    if external:
        warnings.warn(f"{len(names)} shape(s) that ONNX shape inference leaves unknown are not measured: the file "
                      f"keeps its weights in external data, which a summary never loads")
        return {}
    try:
        import onnxruntime as ort

        model = onnx.load(str(path), load_external_data=False)
        known = {o.name for o in model.graph.output}
        for name in names:
            if name not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every value
        with tempfile.TemporaryDirectory() as tmp:
            if not external:
                sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            else:
                target = os.path.join(tmp, "model.onnx")
                onnx.save_model(model, target, save_as_external_data=True, location="model.onnx.data")
                sess = ort.InferenceSession(target, opts, providers=["CPUExecutionProvider"])
            rng = np.random.default_rng(0)
            feeds = {}
            for vi, shape in zip(_real_inputs(model.graph), input_shapes):
                dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
                feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
            wanted = [o.name for o in sess.get_outputs() if o.name in set(names)]
            values = sess.run(wanted, feeds)
            del sess
    except Exception as e:
        warnings.warn(f"could not measure {len(names)} shape(s) that ONNX shape inference leaves unknown "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})")
        return {}
    return {n: (tuple(int(d) for d in v.shape), _np_elem_type(v.dtype)) for n, v in zip(wanted, values)}


def _np_elem_type(dtype) -> int:
    import onnx

    try:
        return onnx.helper.np_dtype_to_tensor_dtype(dtype)
    except Exception:
        return 1


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _concrete(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


#: ONNX op types that count zero MACs on purpose (the PyTorch side's convention, see analysis.costs)
ONNX_ZERO_MACS = {
    "Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu", "Gelu",
    "Mish", "Softplus", "Softsign", "PRelu", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg",
    "Abs", "Erf", "Min", "Max", "Sum", "Mean", "Where", "Identity", "Dropout", "Cast", "CastLike",
    "Reciprocal", "Floor", "Ceil", "Round", "Not", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "And", "Or", "Xor", "Sign", "IsNaN", "IsInf", "Mod", "BitShift",
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "LpNormalization", "MeanVarianceNormalization", "RMSNormalization",
    "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "MaxRoiPool",
    "RoiAlign", "Resize", "Upsample", "Pad", "DepthToSpace", "SpaceToDepth", "GridSample",
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "Softmax", "LogSoftmax",
    "Hardmax", "TopK", "CumSum",
    "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Scatter", "ScatterElements",
    "ScatterND", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Expand", "Tile", "Shape",
    "Size", "Constant", "ConstantOfShape", "Range", "NonZero", "OneHot", "Trilu", "EyeLike",
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "QuantizeLinear",
    "DequantizeLinear", "DynamicQuantizeLinear",
}


def onnx_uncounted(nodes) -> list[dict]:
    """Node types with no MAC formula and no zero-on-purpose entry, as ``analysis.costs.uncounted_ops``."""
    return tally((n.op_type, module_path(n) or "") for n in nodes
                 if n.op_type not in ONNX_MAC_FORMULAS and n.op_type not in ONNX_ZERO_MACS)


def node_macs(node, shapes: dict) -> int | None:
    """MACs of one node by its op's formula; 0 for ops without one; None when shapes are unknown."""
    fn = ONNX_MAC_FORMULAS.get(node.op_type)
    if fn is None:
        return 0
    ins = [shapes.get(n, (None, 0))[0] if n else None for n in node.input]
    outs = [shapes.get(n, (None, 0))[0] if n else None for n in node.output]
    if not _concrete(outs[0] if outs else None) or not all(_concrete(s) for s in ins[:2] if s is not None) \
            or any(s is None for s in ins[:2]):
        return None
    return int(fn(ins, outs, _attrs(node)))


# ------------------------------------------------------------------------------------ module tree


def _dynamo_scopes(node) -> list[str] | None:
    for prop in getattr(node, "metadata_props", []):
        if prop.key == "pkg.torch.onnx.name_scopes":
            import ast

            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            return [str(s) for s in scopes] if isinstance(scopes, (list, tuple)) else None
    return None


def module_path(node) -> str | None:
    """The PyTorch module a node came from, when the exporter recorded it; else None.

    TorchScript exporter: scoped node names, each component the child's name relative to the
    previous one (``/features/features.1/conv/conv.0/conv.0.0/Conv`` → ``features.1.conv.0.0``).
    Dynamo exporter: the ``pkg.torch.onnx.name_scopes`` metadata, full module paths ending with
    the op's own name (``['', 'layer1', 'layer1.0', 'layer1.0.bn1', 'batch_norm']``).
    """
    scopes = _dynamo_scopes(node)
    if scopes is not None:
        modules = [s for s in scopes[:-1] if s]
        return modules[-1] if modules else ""
    name = node.name
    if not name.startswith("/"):
        return None
    parts = name.strip("/").split("/")[:-1]
    path, prev = "", ""
    for comp in parts:
        if prev and comp.startswith(prev + "."):
            path = path + comp[len(prev):]
        else:
            path = f"{path}.{comp}" if path else comp
        prev = comp
    return path


def node_label(node) -> str:
    """A node's own short name: ``Conv_1`` of ``/layer1/layer1.0/conv1/Conv_1``, the FX name for
    dynamo exports, else the node's name (or its first output's, or its op type)."""
    scopes = _dynamo_scopes(node)
    if scopes:
        return scopes[-1]
    if node.name.startswith("/"):
        return node.name.rsplit("/", 1)[-1]
    return node.name or (node.output[0] if node.output else node.op_type)


def _depth(path: str) -> int:
    return path.count(".") + 1 if path else 0


def _ancestors(path: str) -> list[str]:
    if not path:
        return []
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _shape_out(shape):
    if shape is None:
        return None
    return [d if isinstance(d, int) else str(d) for d in shape]


def _graph_analyses(model, shapes, weight_names) -> tuple[dict[str, Any], Any, Any]:
    """Value name -> RF, the total RF and the activations' liveness, by the PyTorch summary's engines
    (see :mod:`.onnx_graph`); a graph they cannot read gets neither, and a warning, never a wrong one."""
    from .onnx_graph import analyse_onnx

    try:
        return analyse_onnx(model, shapes, module_path, weight_names)
    except Exception as e:      # an ONNX construct the adapter does not map: leave the RF out, say so
        import warnings

        warnings.warn(f"receptive field and peak memory not computed for this ONNX graph ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:120] if str(e) else ''})")
        return {}, None, None


def onnx_summary(path: str | os.PathLike, input_size=None, batch_size: int | None = 1) -> Summary:
    """Analyse an ONNX file: per-node rows (grouped by module when the names say), params, MACs.

    ``input_size`` (``3x224x224``, ``224``) and ``batch_size`` fill the input dims the file leaves
    symbolic (``--dynamic-batch`` exports); dims the file fixes must agree with them.
    """
    import onnx

    model = load_graph(path)
    graph = model.graph
    inits = classify_initializers(graph)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer)
    nonzero = None if external else count_nonzero_params(graph, inits)   # before infer_shapes drops the data
    input_shapes = _fix_input_shapes(model, str(path), input_size, batch_size)
    input_bytes = sum(_prod(dims) * _elem_size(vi.type.tensor_type.elem_type)
                      for vi, dims in zip(_real_inputs(graph), input_shapes))
    from .ceil_pools import fix_ceil_mode_pools

    # shapes as onnxruntime runs them, not as ONNX inference keeps them; what cannot be fixed is measured
    _, unfixable = fix_ceil_mode_pools(model)
    shapes = infer_shapes(model)
    unknown_values = [o for n in graph.node if n.op_type != "Constant" for o in n.output
                      if o and not _concrete(shapes.get(o, (None, 0))[0])]
    if unfixable:
        from .ceil_pools import downstream_values

        unknown_values = sorted(set(unknown_values) | set(downstream_values(graph, unfixable)))
    if unknown_values:
        shapes.update(shapes_from_onnxruntime(path, input_shapes, unknown_values, external))

    views = weight_views(graph, inits)
    # rows: the compute nodes; a quantized file's QuantizeLinear/DequantizeLinear pairs belong to the
    # nodes they feed (their MACs are 0 and their tensors are counted in the totals below)
    nodes = [n for n in graph.node if n.op_type not in ("Constant", "QuantizeLinear", "DequantizeLinear")]
    paths = [module_path(n) for n in nodes]
    rf_of, rf_total, memory = _graph_analyses(model, shapes, set(inits))

    macs_of: list[int] = []
    unknown: list[str] = []
    for n in nodes:
        m = node_macs(n, shapes)
        if m is None:
            unknown.append(n.name or n.op_type)
            m = 0
        macs_of.append(m)
    if unknown:
        import warnings

        warnings.warn(f"{len(unknown)} node(s) have no inferred shapes, their MACs are not counted: "
                      f"{', '.join(unknown[:3])}{' …' if len(unknown) > 3 else ''}")

    def params_of(node_ids) -> int:
        names = {views.get(name, name) for i in node_ids for name in nodes[i].input}
        names = {name for name in names if name in inits and inits[name].kind == "param"}
        return sum(inits[n].numel for n in names)

    def rf(node):
        return rf_of.get(next((o for o in node.output if o), ""))

    def leaf(node, first=None) -> dict:
        """The torchinfo columns of a row: input shape (of ``first``, the block's first node), kernel."""
        src = first if first is not None else node
        x = next((i for i in src.input if i and i not in inits and i not in views), None)
        kernel = None
        if node.op_type in ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool") and first is None:
            attr = next((a for a in node.attribute if a.name == "kernel_shape"), None)
            if attr is not None:
                kernel = list(attr.ints)
            elif node.op_type.startswith("Conv") and len(node.input) > 1 and views.get(node.input[1], node.input[1]) in inits:
                kernel = list(inits[views.get(node.input[1], node.input[1])].dims[2:])
        return {"input_shape": _shape_out(shapes.get(x, (None, 0))[0]) if x else None, "kernel_shape": kernel}

    def out_shape(node):
        outs = [_shape_out(shapes.get(o, (None, 0))[0]) for o in node.output if o]
        if not outs:
            return None
        return outs[0] if len(outs) == 1 else outs

    # module tree: which nodes each scope holds (recursively), in order of first appearance
    members: dict[str, list[int]] = {}
    children: dict[str, set[str]] = {}
    for i, p in enumerate(paths):
        if not p:
            continue
        anc = _ancestors(p)
        for j, a in enumerate(anc):
            members.setdefault(a, []).append(i)
            if j + 1 < len(anc):
                children.setdefault(a, set()).add(anc[j + 1])
    direct: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        if p:
            direct.setdefault(p, []).append(i)
    merged = {s for s, idx in direct.items() if len(idx) == 1 and not children.get(s) and len(members[s]) == 1}

    rows: list[LayerRow] = []
    used_names: set[str] = set()

    def unique(name: str) -> str:
        base, k = name, 1
        while name in used_names:
            k += 1
            name = f"{base}_{k}"
        used_names.add(name)
        return name

    emitted: set[str] = set()
    for i, (node, p) in enumerate(zip(nodes, paths)):
        if p:
            for a in _ancestors(p):
                if a in emitted:
                    continue
                emitted.add(a)
                idx = members[a]
                if a in merged:
                    rows.append(LayerRow(unique(a), node.op_type, _depth(a), out_shape(node), params_of(idx),
                                         sum(macs_of[k] for k in idx), rf(node), **leaf(node)))
                else:
                    rows.append(LayerRow(unique(a), "module", _depth(a), out_shape(nodes[idx[-1]]), params_of(idx),
                                         sum(macs_of[k] for k in idx), rf(nodes[idx[-1]]),
                                         **leaf(nodes[idx[-1]], first=nodes[idx[0]])))
            if p in merged:
                continue
            rows.append(LayerRow(unique(f"{p}.{node_label(node)}"), node.op_type, _depth(p) + 1, out_shape(node),
                                 params_of([i]), macs_of[i], rf(node), **leaf(node)))
        else:
            rows.append(LayerRow(unique(node_label(node)), node.op_type, 1, out_shape(node), params_of([i]),
                                 macs_of[i], rf(node), **leaf(node)))

    params = sum(i.numel for i in inits.values() if i.kind == "param")
    for row in rows:
        row.params_percent = 100.0 * row.params / params if params else 0.0
    param_bytes = sum(i.nbytes for i in inits.values() if i.kind == "param")
    other_bytes = sum(i.nbytes for i in inits.values() if i.kind != "param")
    activation_bytes = 0
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for node in graph.node:            # the PyTorch summary's rule: new tensors that something reads
        if node.op_type in _ALIAS_OPS:
            continue
        for o in node.output:
            if o not in read or o in views:
                continue
            dims, et = shapes.get(o, (None, 0))
            if _concrete(dims):
                activation_bytes += _prod(dims) * _elem_size(et)
    macs = sum(macs_of)
    totals = Totals(params=params, trainable_params=params, param_bytes=param_bytes, buffer_bytes=other_bytes,
                    macs=macs, flops=2 * macs, activation_bytes=activation_bytes, receptive_field=rf_total,
                    nonzero_params=nonzero, input_bytes=input_bytes,
                    peak_activation_bytes=memory.peak_bytes if memory is not None else None,
                    peak_at=memory.to_dict()["at"] if memory is not None else None)
    from ..loading.history import onnx_history

    return Summary(str(path), input_shapes[0], totals, rows, None, onnx_uncounted(nodes), history=onnx_history(path))
