"""Training cost of one step: backward MACs per op, and training memory.

Read from a training recording (:func:`cnnscope.analysis.engine.analyze` with ``training=True``:
train mode, autograd on, on meta tensors), which knows for every value whether it requires a
gradient and which values autograd saved for the backward.

**Backward MACs** (1 MAC = one multiply-accumulate; exact per op, never "2 × forward"): for a product
``C = A·B`` (M×K · K×N) the input gradient ``dA = dC·Bᵀ`` and the weight gradient ``dB = Aᵀ·dC`` each
take M·N·K MACs — the forward's — and only the ones whose operand requires a gradient are computed.
So a convolution costs its forward MACs once for the gradient of its input (skipped for the first
layer: the image needs none) and once for its weight's (skipped when frozen); a product of two
activations (attention's Q·Kᵀ) costs both. Attention: dV = Pᵀ·dO and dP = dO·Vᵀ (s_q·s_k·d_v each),
dQ = dS·K and dK = dSᵀ·Q (s_q·s_k·d each), each only when needed. Bias gradients are sums (0 MACs),
and like the forward, normalisation, activations and pooling count 0. This is what
``torch.utils.flop_counter.FlopCounterMode`` counts on a real forward + backward (FLOPs = 2 × MACs).

**Training memory** (bytes): parameters + their gradients (trainable ones) + optimizer state (SGD with
momentum: one buffer per trainable parameter; Adam/AdamW: two; plain SGD: none) + the activations
autograd saves for the backward (each storage once: a view or an in-place result saved twice counts
once; weights are not activations). Not modelled: the backward's own temporaries and workspace, the
allocator's caching.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..graph.dataflow import Graph, Node, ValueRef
from ..ops import formulas
from ..ops.families import ATTENTION, CONVOLUTION
from ..ops.registry import op_registrar
from .memory import storage_roots

#: optimizer -> state buffers per trainable parameter element
OPTIMIZER_STATES = {"sgd": 1, "sgd-nomomentum": 0, "adam": 2, "adamw": 2}

BackwardFormula = Callable[[Node, Graph], int]
BACKWARD_MACS: dict[str, BackwardFormula] = {}
register_backward_macs = op_registrar(BACKWARD_MACS, "backward MAC formula")


def _needs(graph: Graph, ref) -> bool:
    return isinstance(ref, ValueRef) and graph.values[ref.id].requires_grad


def _shape(graph: Graph, ref) -> tuple[int, ...]:
    return graph.shape(ref)


@register_backward_macs(*CONVOLUTION)
def conv_backward(node: Node, graph: Graph) -> int:
    named = node.named_args()
    x, w = named.get("input", named.get("self")), named["weight"]
    return node.macs * (_needs(graph, x) + _needs(graph, w))


def _product(node: Node, graph: Graph, a, b) -> int:
    """C = A·B: dA and dB each cost the forward's MACs, when that operand needs a gradient."""
    return node.macs * (_needs(graph, a) + _needs(graph, b))


@register_backward_macs("aten.mm", "aten.bmm", "aten.mv", "aten.dot", "aten.vdot")
def mm_backward(node: Node, graph: Graph) -> int:
    return _product(node, graph, node.args[0], node.args[1])


@register_backward_macs("aten.addmm", "aten.baddbmm", "aten.addmv", "aten.addbmm")
def addmm_backward(node: Node, graph: Graph) -> int:
    """The added term's gradient is dC itself (free); the product's two as for mm."""
    return _product(node, graph, node.args[1], node.args[2])


@register_backward_macs(*ATTENTION)
def attention_backward(node: Node, graph: Graph) -> int:
    q, k, v = node.args[:3]
    qs, ks, vs = _shape(graph, q), _shape(graph, k), _shape(graph, v)
    *batch, s_q, d = qs
    s_k, d_v = ks[-2], vs[-1]
    per = formulas.prod(batch) * s_q * s_k
    need_q, need_k, need_v = _needs(graph, q), _needs(graph, k), _needs(graph, v)
    return per * (d_v * need_v + d_v * (need_q or need_k) + d * need_q + d * need_k)


@dataclass
class TrainingCost:
    """One training step of the recorded model (MACs and bytes; see the module docstring)."""

    forward_macs: int
    backward_macs: int
    optimizer: str
    param_bytes: int
    grad_bytes: int
    optimizer_state_bytes: int
    saved_activation_bytes: int
    #: module name -> backward MACs of the ops it ran (its children's included)
    backward_by_module: dict[str, int]

    @property
    def step_macs(self) -> int:
        return self.forward_macs + self.backward_macs

    @property
    def memory_bytes(self) -> int:
        return self.param_bytes + self.grad_bytes + self.optimizer_state_bytes + self.saved_activation_bytes

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "forward_macs": self.forward_macs, "backward_macs": self.backward_macs,
                "step_macs": self.step_macs, "step_flops": 2 * self.step_macs, "param_bytes": self.param_bytes,
                "grad_bytes": self.grad_bytes, "optimizer_state_bytes": self.optimizer_state_bytes,
                "saved_activation_bytes": self.saved_activation_bytes, "memory_bytes": self.memory_bytes}


def backward_macs(graph: Graph) -> dict[int, int]:
    """node index -> backward MACs, for the ops that have any."""
    out = {}
    for node in graph.ops():
        fn = BACKWARD_MACS.get(node.packet)
        if fn is not None and node.macs:
            m = int(fn(node, graph))
            if m:
                out[node.index] = m
    return out


def saved_activation_bytes(graph: Graph) -> int:
    """Bytes of the storages autograd keeps for the backward, each once, weights excluded."""
    root = storage_roots(graph)
    storages = {root.get(v, v) for v in graph.saved}
    return sum(graph.values[r].nbytes for r in storages
               if graph.nodes[graph.values[r].producer].kind in ("op", "input"))


def check_optimizer(optimizer: str) -> None:
    if optimizer not in OPTIMIZER_STATES:
        from ..errors import UnknownNameError

        raise UnknownNameError("optimizer", optimizer, list(OPTIMIZER_STATES))


def training_cost(analysis, optimizer: str = "sgd") -> TrainingCost:
    """The cost of one training step from a training recording (``analyze(..., training=True)``)."""
    graph = analysis.graph
    if not graph.training:
        raise ValueError("training_cost needs a training recording: analyze(..., training=True)")
    check_optimizer(optimizer)
    per_node = backward_macs(graph)
    by_module: dict[str, int] = {}
    for index, m in per_node.items():
        scope = graph.nodes[index].scope
        while True:
            by_module[scope] = by_module.get(scope, 0) + m
            if not scope:
                break
            scope = scope.rsplit(".", 1)[0] if "." in scope else ""
    seen: set[int] = set()
    param_bytes = trainable_bytes = 0
    for p in analysis.model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        param_bytes += p.numel() * p.element_size()
        trainable_bytes += p.numel() * p.element_size() if p.requires_grad else 0
    return TrainingCost(graph.totals.get("macs", 0), sum(per_node.values()), optimizer, param_bytes, trainable_bytes,
                        OPTIMIZER_STATES[optimizer] * trainable_bytes, saved_activation_bytes(graph), by_module)
