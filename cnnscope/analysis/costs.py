"""MAC formulas, one small function per ATen operator, keyed by the op (as in torch's flop_counter).

Convention (torchvision's ``_ops``): 1 MAC = one multiply-accumulate of a convolution, linear
layer, matrix multiply or attention product. BatchNorm, activations, additions and pooling count
zero. FLOPs = 2 × MACs. Each formula takes the recorded node and the graph (for shapes) and
returns an integer; supporting a new operator means adding one function here.

Nothing counts zero by accident: an op without a formula is either zero *on purpose* (a view, an
elementwise op torch tags ``pointwise``, or a packet of :data:`ZERO_MACS`: normalisation, pooling,
resampling, padding, reductions, data movement, creation) or *uncounted*, and
:func:`uncounted_ops` lists those with where they ran, for the summary to report and ``check
--fail-on-uncounted`` to refuse.
"""
from __future__ import annotations

from typing import Callable

from ..graph.dataflow import Graph, Node, ValueRef
from ..ops import formulas
from ..ops.families import (ADAPTIVE_POOLING, ALONG_DIM, ATTENTION, CONCATENATION, CONVOLUTION, NORMALIZATION,
                             OTHER_POOLING, PADDING, PERMUTES, POOLING, REDUCTIONS, RESAMPLING, RESHAPES, SPLITS)
from ..ops.uncounted import tally
from ..ops.registry import op_registrar

MacFormula = Callable[[Node, Graph], int]
MAC_FORMULAS: dict[str, MacFormula] = {}


register_macs = op_registrar(MAC_FORMULAS, "MAC formula")


def _shape(node: Node, graph: Graph, i: int) -> tuple[int, ...]:
    a = node.args[i]
    assert isinstance(a, ValueRef)
    return graph.shape(a)


@register_macs(*CONVOLUTION)
def convolution_macs(node: Node, graph: Graph) -> int:
    x, w = _shape(node, graph, 0), _shape(node, graph, 1)
    if node.named_args().get("transposed"):
        return formulas.conv_transpose_macs(x, w)
    return formulas.conv_macs(graph.shape(node.outputs[0]), w)


@register_macs("aten.mm")
def mm_macs(node: Node, graph: Graph) -> int:
    (m, k), (_, n) = _shape(node, graph, 0), _shape(node, graph, 1)
    return m * k * n


@register_macs("aten.addmm")
def addmm_macs(node: Node, graph: Graph) -> int:
    (m, k), (_, n) = _shape(node, graph, 1), _shape(node, graph, 2)
    return m * k * n


@register_macs("aten.bmm")
def bmm_macs(node: Node, graph: Graph) -> int:
    (b, m, k), (_, _, n) = _shape(node, graph, 0), _shape(node, graph, 1)
    return b * m * k * n


@register_macs("aten.baddbmm")
def baddbmm_macs(node: Node, graph: Graph) -> int:
    (b, m, k), (_, _, n) = _shape(node, graph, 1), _shape(node, graph, 2)
    return b * m * k * n


@register_macs("aten.addmv")
def addmv_macs(node: Node, graph: Graph) -> int:
    """addmv(bias, M (m × k), v (k)): m·k products."""
    m, k = _shape(node, graph, 1)
    return m * k


@register_macs("aten.addbmm")
def addbmm_macs(node: Node, graph: Graph) -> int:
    """addbmm(C, A (b × m × k), B (b × k × n)): the b products of m·k·n, summed into one m × n."""
    (b, m, k), (_, _, n) = _shape(node, graph, 1), _shape(node, graph, 2)
    return b * m * k * n


@register_macs("aten.mv")
def mv_macs(node: Node, graph: Graph) -> int:
    m, k = _shape(node, graph, 0)
    return m * k


@register_macs("aten.dot", "aten.vdot")
def dot_macs(node: Node, graph: Graph) -> int:
    return _shape(node, graph, 0)[0]


@register_macs(*ATTENTION)
def sdpa_macs(node: Node, graph: Graph) -> int:
    return formulas.attention_macs(*(_shape(node, graph, i) for i in range(3)))


#: packets that count zero MACs on purpose (the convention: only conv/linear/matmul/attention products
#: are MACs), besides views and the ops torch tags pointwise (activations, additions, casts)
ZERO_MACS: set[str] = set(NORMALIZATION | POOLING | ADAPTIVE_POOLING | OTHER_POOLING | RESAMPLING | PADDING
                         | RESHAPES | PERMUTES | REDUCTIONS | ALONG_DIM | SPLITS | CONCATENATION) | {
    "aten.grid_sampler_2d", "aten.pixel_shuffle", "aten.pixel_unshuffle", "aten.channel_shuffle",
    "aten.native_channel_shuffle",
    # data movement and creation
    "aten.cat", "aten.stack", "aten.clone", "aten._to_copy", "aten.copy_", "aten.copy", "aten.index",
    "aten.index_select", "aten.gather", "aten.scatter", "aten.scatter_add", "aten.index_put_",
    "aten.index_put", "aten.masked_fill", "aten.masked_fill_", "aten.where", "aten.embedding", "aten.roll",
    "aten.flip", "aten.repeat", "aten.tile", "aten.constant_pad_nd", "aten.split_with_sizes", "aten.split",
    "aten.unbind", "aten.empty", "aten.empty_like", "aten.zeros", "aten.zeros_like", "aten.ones",
    "aten.ones_like", "aten.full", "aten.full_like", "aten.arange", "aten.new_zeros", "aten.new_ones",
    "aten.new_empty", "aten.new_full", "aten.new_empty_strided", "aten.empty_strided", "aten.fill_",
    "aten.zero_", "aten.rand", "aten.randn", "aten.rand_like", "aten.randn_like", "aten.bernoulli",
    "aten.bernoulli_", "aten.uniform_", "aten.normal_", "aten.native_dropout", "aten.lift_fresh_copy",
    "aten.scalar_tensor", "aten.linspace", "aten.tril", "aten.triu", "aten.one_hot", "aten.searchsorted",
    "aten.bucketize", "aten.nonzero", "aten.sym_size", "aten.sym_stride", "aten.sym_numel", "aten._unsafe_index",
    "aten.slice_scatter", "aten.select_scatter", "aten.diagonal_scatter", "aten.as_strided_scatter",
    "aten.masked_scatter", "aten.glu", "aten.prelu", "aten._prelu_kernel", "aten.hardswish",
    "aten.hardsigmoid", "aten.hardswish_", "aten.hardsigmoid_", "aten.gelu_", "aten.mish", "aten.mish_",
    "aten.softplus", "aten.elu_", "aten.leaky_relu_", "aten.clamp_", "aten.clamp_min_", "aten.item",
    "aten._local_scalar_dense", "aten.detach", "aten.alias", "aten.contiguous", "aten.resize_",
    "aten._unsafe_view", "aten.as_strided_", "aten.as_strided",
}


def is_zero_on_purpose(node: Node) -> bool:
    """A view, a pointwise-tagged op, or a :data:`ZERO_MACS` packet: 0 MACs by the convention."""
    if node.packet in ZERO_MACS or (node.aliases and not node.in_place):
        return True
    import torch

    return node.op is not None and torch.Tag.pointwise in getattr(node.op, "tags", ())


def annotate_macs(graph: Graph) -> int:
    """Fill ``node.macs`` for every op node; return the model total (MACs, not FLOPs)."""
    total = 0
    for node in graph.ops():
        fn = MAC_FORMULAS.get(node.packet)
        if fn is not None:
            node.macs = int(fn(node, graph))
            total += node.macs
    return total


def uncounted_ops(graph: Graph) -> list[dict]:
    """Ops that ran and count 0 MACs with neither a formula nor a zero-on-purpose registration:
    ``[{"op": "aten._fft_r2c", "count": 2, "modules": ["block.spectral"]}]``, most frequent first."""
    return tally((n.packet, n.scope) for n in graph.ops()
                 if n.packet not in MAC_FORMULAS and not is_zero_on_purpose(n))
