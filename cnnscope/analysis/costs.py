"""MAC formulas, one small function per ATen operator, keyed by the op (as in torch's flop_counter).

Convention (torchvision's ``_ops``): 1 MAC = one multiply-accumulate of a convolution, linear
layer, matrix multiply or attention product. BatchNorm, activations, additions and pooling count
zero. FLOPs = 2 × MACs. Each formula takes the recorded node and the graph (for shapes) and
returns an integer; supporting a new operator means adding one function here.
"""
from __future__ import annotations

from typing import Callable

from ..graph.dataflow import Graph, Node, ValueRef
from .arithmetic import prod

MacFormula = Callable[[Node, Graph], int]
MAC_FORMULAS: dict[str, MacFormula] = {}


def register_macs(*packets: str) -> Callable[[MacFormula], MacFormula]:
    def deco(fn: MacFormula) -> MacFormula:
        for p in packets:
            MAC_FORMULAS[p] = fn
        return fn

    return deco


def _shape(node: Node, graph: Graph, i: int) -> tuple[int, ...]:
    a = node.args[i]
    assert isinstance(a, ValueRef)
    return graph.shape(a)


@register_macs("aten.convolution", "aten._convolution", "aten.cudnn_convolution", "aten.mkldnn_convolution")
def convolution_macs(node: Node, graph: Graph) -> int:
    x, w = _shape(node, graph, 0), _shape(node, graph, 1)
    out = graph.shape(node.outputs[0])
    transposed = bool(node.args[6]) if len(node.args) > 6 else False
    if transposed:
        # every input position is multiplied by each (C_out/groups)·K weights of its group
        return prod(x) * prod(w[1:])
    # every output position accumulates C_in/groups · K_h · K_w products
    return prod(out) * prod(w[1:])


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


@register_macs("aten.mv")
def mv_macs(node: Node, graph: Graph) -> int:
    m, k = _shape(node, graph, 0)
    return m * k


@register_macs("aten.dot", "aten.vdot")
def dot_macs(node: Node, graph: Graph) -> int:
    return _shape(node, graph, 0)[0]


@register_macs(
    "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention",
    "aten.scaled_dot_product_attention",
    "aten._scaled_dot_product_attention_math",
)
def sdpa_macs(node: Node, graph: Graph) -> int:
    q, k, v = (_shape(node, graph, i) for i in range(3))
    *batch, s_q, d = q
    s_k = k[-2]
    d_v = v[-1]
    # Q·Kᵀ (s_q × d × s_k) then softmax(·)·V (s_q × s_k × d_v), per batch and head
    return prod(batch) * s_q * s_k * (d + d_v)


def annotate_macs(graph: Graph) -> int:
    """Fill ``node.macs`` for every op node; return the model total (MACs, not FLOPs)."""
    total = 0
    for node in graph.ops():
        fn = MAC_FORMULAS.get(node.packet)
        if fn is not None:
            node.macs = int(fn(node, graph))
            total += node.macs
    return total
