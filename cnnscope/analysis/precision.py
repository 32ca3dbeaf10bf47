"""Precision what-if: the bytes a model's weights and activations would take in another dtype, read
from the recorded graph — the model is not converted and nothing is allocated.

Rules (bytes per element):

- ``float32`` 4, ``float16`` and ``bfloat16`` 2: every floating-point parameter, buffer and
  activation takes that size; integer tensors (indices, ``num_batches_tracked``) keep theirs.
- ``int8`` (the ONNX QDQ / onnxruntime static-quantization layout, per-channel weights): a weight of
  a convolution or matrix product (conv, linear, matmul, attention projections — found in the graph
  as the weight operand of those ops) is 1 B an element plus one float32 scale and one int8 zero
  point per output channel (its first dim): ``numel + 5·C_out``; their biases are int32 (4 B);
  every other floating parameter and buffer (normalisation γ/β and statistics, embeddings, class
  tokens) stays float32; activations are 1 B an element (their per-tensor scale and zero point,
  5 B a tensor, are not counted).
"""
from __future__ import annotations

from typing import Callable

from ..graph.dataflow import Graph, Value
from ..ops.families import CONVOLUTION, MATRIX_PRODUCT
from .memory import storage_roots

#: bytes per element of each what-if dtype
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
#: per output channel of an int8 weight: a float32 scale and an int8 zero point
INT8_CHANNEL_BYTES = 5

_BIAS_ARGS = ("bias", "self")       # conv/linear "bias"; addmm/addmv/baddbmm "self" (the added term)


def check_dtype(dtype: str | None) -> None:
    if dtype is not None and dtype not in DTYPE_BYTES:
        from ..errors import UnknownNameError

        raise UnknownNameError("dtype", dtype, list(DTYPE_BYTES))


def activation_itemsize(dtype: str | None) -> Callable[[Value], int]:
    """Bytes per element of a recorded value under ``dtype`` (None: as recorded)."""
    if dtype is None:
        return lambda v: v.itemsize
    size = DTYPE_BYTES[dtype]
    return lambda v: size if _floating(v.dtype) else v.itemsize


def _floating(dtype: str) -> bool:
    return "float" in dtype or "bfloat" in dtype or "half" in dtype


def quantized_weights(graph: Graph) -> tuple[set[str], set[str]]:
    """(parameter names used as the weight of a conv or matrix product, those used as its bias),
    through views (``weight.t()``) to the parameter itself."""
    root = storage_roots(graph)
    name_of = {vid: name for name, vid in graph.param_values.items()}
    weights, biases = set(), set()
    for node in graph.ops():
        if node.packet not in CONVOLUTION and node.packet not in MATRIX_PRODUCT and node.packet != "aten.linear":
            continue
        named = node.named_args()
        bias_ids = {named[k].id for k in _BIAS_ARGS if k in named and hasattr(named[k], "id")}
        for v in node.inputs:
            name = name_of.get(root.get(v, v))
            if name is None:
                continue
            (biases if v in bias_ids else weights).add(name)
    return weights, biases - weights


def weight_bytes(model, graph: Graph, dtype: str | None) -> tuple[int, int]:
    """(parameter bytes, buffer bytes) of ``model`` (meta or real) under ``dtype``; each shared
    parameter counted once."""
    names: dict[int, set[str]] = {}
    params = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in names:
            names[id(p)] = set()
            params.append(p)
        names[id(p)].add(name)
    buffers = list(model.named_buffers())
    if dtype is None:
        return (sum(p.numel() * p.element_size() for p in params),
                sum(b.numel() * b.element_size() for _, b in buffers))
    size = DTYPE_BYTES[dtype]
    if dtype != "int8":
        def cost(t):
            return t.numel() * (size if t.is_floating_point() else t.element_size())

        return sum(cost(p) for p in params), sum(cost(b) for _, b in buffers)
    weights, biases = quantized_weights(graph)
    total = 0
    for p in params:
        if names[id(p)] & weights and p.dim() >= 1:
            total += p.numel() + INT8_CHANNEL_BYTES * p.shape[0]
        elif names[id(p)] & biases:
            total += 4 * p.numel()
        else:
            total += p.numel() * (4 if p.is_floating_point() else p.element_size())
    buffer_total = sum(b.numel() * (4 if b.is_floating_point() else b.element_size()) for _, b in buffers)
    return total, buffer_total
