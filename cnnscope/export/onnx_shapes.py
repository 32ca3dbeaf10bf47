"""ONNX shapes without weight data: every value's dims from the file and ONNX shape inference.

Below both ``onnx_summary`` (which analyses a file) and ``ceil_pools`` (which fixes the pools ONNX
inference gets wrong), so neither needs the other to read shapes.
"""
from __future__ import annotations

_FLOAT_TYPES = {1, 10, 11, 16, 17, 18, 19, 20, 23}  # float, float16, double, bfloat16, float8 variants, float4


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def _dims_of(type_proto) -> tuple | None:
    t = type_proto.tensor_type if type_proto.HasField("tensor_type") else None
    if t is None or not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)


def weightless_copy(model):
    """A copy of ``model`` for shape inference only: the same nodes, inputs and outputs, with the large
    float initializers replaced by typed inputs of their shapes (so no weight data is copied)."""
    import onnx

    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = light.graph
    g.name = model.graph.name
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    names = {v.name for v in model.graph.input}
    for t in model.graph.initializer:
        if t.data_type in _FLOAT_TYPES and _prod(t.dims) > 64:
            if t.name not in names:
                g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        else:
            g.initializer.append(t)
    return light


def infer_shapes(model) -> dict[str, tuple[tuple | None, int]]:
    """name -> (dims, elem_type) for every value the file or ONNX shape inference knows.

    Large initializers are turned into typed graph inputs first: inference needs only their
    shapes, and serialising hundreds of MB of weights into the inference engine and back is what
    would otherwise dominate the time. ``model`` is modified (its weight data is dropped).
    """
    import onnx

    init_shapes = {t.name: (tuple(int(d) for d in t.dims), t.data_type) for t in model.graph.initializer}
    big_ones = {t.name for t in model.graph.initializer if t.data_type in _FLOAT_TYPES and _prod(t.dims) > 64}
    small = [t for t in model.graph.initializer if t.name not in big_ones]
    big = [t for t in model.graph.initializer if t.name in big_ones]
    input_names = {v.name for v in model.graph.input}
    new_inputs = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                  for t in big if t.name not in input_names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(small)
    model.graph.input.extend(new_inputs)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:  # a malformed model: fall back to the shapes the file carries
        import warnings

        warnings.warn(f"ONNX shape inference failed ({str(e).splitlines()[0][:120]}); using the shapes in the file")
        inferred = model
    g = inferred.graph
    shapes: dict[str, tuple[tuple | None, int]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = _dims_of(vi.type)
        shapes[vi.name] = (dims, vi.type.tensor_type.elem_type)
    shapes.update(init_shapes)
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    shapes[node.output[0]] = (tuple(int(d) for d in a.t.dims), a.t.data_type)
    return shapes
