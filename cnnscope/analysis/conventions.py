"""Every peer's counting convention, reproduced from the one recorded graph: why resnet50 is 4.09 G
here, 4.11 G in fvcore, 4.13 G in thop and 8.18 G in FlopCounterMode.

The graph is first broken down into op classes (:func:`breakdown`): MACs of convolutions, of matrix
products and of attention; the elements normalisation layers read; bias additions; pooling. Each
peer is then one small table of rules over those classes (or over the module calls, for the tools
that count per module through forward hooks), written from its source code:

- **torchvision** ``_ops`` (its model tables' "GFLOPS"): conv + matrix-product + attention MACs.
  This is cnnscope's own count.
- **2×MAC FLOPs**: twice that (1 MAC = 2 FLOPs: one multiply, one add).
- **FlopCounterMode** (``torch.utils.flop_counter``): 2 × the MACs of the ops in its registry — conv and
  matrix products; attention only through the fused CUDA kernels it registers (flash, efficient,
  cuDNN): on CPU PyTorch runs ``_scaled_dot_product_flash_attention_for_cpu``, which it does not count.
- **fvcore** (``FlopCountAnalysis``, 1 "flop" = 1 MAC): conv and matmul/linear (no bias), batch norm in
  eval 2 × its input elements with affine (1 without), layer/group/instance norm 5 × (4), adaptive
  average pooling 1 × its input elements, nearest/bilinear upsampling 1 × / 4 × the output elements;
  ``scaled_dot_product_attention`` has no handler (0).
- **thop** (``thop.profile``, module hooks): a conv ``out × C_in/g · K`` (no bias), a linear
  ``in_features × out``, a batch/layer/instance norm module ``4 × elements`` with affine (2 without),
  an adaptive average pool ``(kernel + 1) × out``, an average pool ``out``, an ``nn.Upsample`` 1 ×
  (nearest) or 11 × (bilinear) its output; activations, max pooling, group norm, functional ops and
  modules without a rule (``nn.MultiheadAttention``) count 0 (other upsampling modes: not reproduced).
- **ptflops** with ``backend="aten"``: conv and matrix products plus one per element of each bias
  addition; CPU attention is not counted (the kernel is not in its list).
- **torchinfo** (``total_mult_adds``, leaf modules that ran): a conv's weight and bias elements × output
  positions (batch included); any other leaf's ``weight``/``bias`` elements × the batch (a Linear on
  197 tokens counts its weights once: transformers come out ~100× low); ``nn.MultiheadAttention``
  (not a leaf) counts nothing.

Agreement with the installed peers is tested to 0.1% on resnet50, mobilenet_v2 and vit_b_16.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..graph.dataflow import Graph, ValueRef
from ..ops.families import ADAPTIVE_POOLING, ATTENTION, CONVOLUTION, MATRIX_PRODUCT, NORMALIZATION, RESAMPLING

_SOFTMAX = ("aten._softmax", "aten._safe_softmax", "aten.softmax")
_BATCH_NORMS = ("aten.native_batch_norm", "aten._native_batch_norm_legit", "aten._native_batch_norm_legit_no_training",
                "aten.batch_norm", "aten.cudnn_batch_norm")


@dataclass
class Breakdown:
    """The recorded forward by op class. MACs for products; elements (tensor entries) otherwise."""

    conv_macs: int = 0
    matmul_macs: int = 0          # linear, matmul, bmm… outside attention
    attention_macs: int = 0       # Q·Kᵀ and P·V, fused (sdpa) or decomposed (bmm → softmax → bmm)
    bias_elements: int = 0        # one addition per output element of a conv/addmm with a bias
    batch_norm_elements: int = 0
    batch_norm_affine_elements: int = 0
    other_norm_elements: int = 0  # layer/group/instance norm
    other_norm_affine_elements: int = 0
    adaptive_pool_input_elements: int = 0
    upsample_nearest_out: int = 0
    upsample_linear_out: int = 0
    #: per leaf-module call: (type name, output shape, input shape, own parameter shapes by name)
    module_calls: list = field(default_factory=list)

    @property
    def macs(self) -> int:
        return self.conv_macs + self.matmul_macs + self.attention_macs


def _attention_bmms(graph: Graph) -> set[int]:
    """Node indices of matrix products that are attention written out: a product whose result (through
    views and scaling) feeds a softmax whose result feeds another product (sdpa's math path)."""
    consumers = graph.consumers()

    def reaches(vid: int, targets: tuple[str, ...], depth: int = 6) -> list[int]:
        found, frontier = [], [vid]
        for _ in range(depth):
            nxt = []
            for v in frontier:
                for i in consumers.get(v, []):
                    n = graph.nodes[i]
                    if n.packet in targets:
                        found.append(i)
                    elif n.aliases or n.packet in ("aten.mul", "aten.div", "aten._unsafe_view", "aten.add",
                                                  "aten.expand", "aten.clone"):
                        nxt.extend(n.outputs)
            frontier = nxt
        return found

    products = ("aten.bmm", "aten.mm", "aten.baddbmm")
    out: set[int] = set()
    for node in graph.ops():
        if node.packet not in products:
            continue
        for s in reaches(node.outputs[0], _SOFTMAX):
            later = reaches(graph.nodes[s].outputs[0], products)
            if later:
                out.add(node.index)
                out.update(later)
    return out


def _global_mean(node, graph: Graph) -> bool:
    """``aten.mean(x, [-1, -2], keepdim=True)``: how adaptive average pooling to 1×1 is recorded."""
    if node.packet != "aten.mean":
        return False
    named = node.named_args()
    dims = named.get("dim") or []
    rank = len(graph.values[node.inputs[0]].shape)
    return bool(named.get("keepdim")) and rank >= 3 and sorted(d % rank for d in dims) == list(range(2, rank))


def breakdown(graph: Graph, model=None) -> Breakdown:
    b = Breakdown()
    attention = _attention_bmms(graph)
    for node in graph.ops():
        named = node.named_args()
        if node.packet in CONVOLUTION:
            b.conv_macs += node.macs
            if isinstance(named.get("bias"), ValueRef):
                b.bias_elements += graph.values[node.outputs[0]].numel
        elif node.packet in ATTENTION or node.index in attention:
            b.attention_macs += node.macs
        elif node.packet in MATRIX_PRODUCT:
            b.matmul_macs += node.macs
            if node.packet in ("aten.addmm", "aten.baddbmm", "aten.addmv"):
                b.bias_elements += graph.values[node.outputs[0]].numel
        elif node.packet in NORMALIZATION:
            n = graph.values[node.inputs[0]].numel
            affine = isinstance(named.get("weight"), ValueRef)
            if node.packet in _BATCH_NORMS:
                b.batch_norm_elements += n
                b.batch_norm_affine_elements += n if affine else 0
            else:
                b.other_norm_elements += n
                b.other_norm_affine_elements += n if affine else 0
        elif (node.packet in ADAPTIVE_POOLING and "avg" in node.packet) or _global_mean(node, graph):
            b.adaptive_pool_input_elements += graph.values[node.inputs[0]].numel
        elif node.packet in RESAMPLING:
            out = graph.values[node.outputs[0]].numel
            if "nearest" in node.packet:
                b.upsample_nearest_out += out
            else:
                b.upsample_linear_out += out
    leaves = {name for name in graph.modules if name and not any(m.startswith(name + ".") for m in graph.modules)}
    for call in graph.calls:
        if call.name not in leaves:
            continue
        params = {}
        if model is not None:
            mod = model.get_submodule(call.name)
            params = {n: tuple(p.shape) for n, p in mod.named_parameters(recurse=False)}
            extra = {"in_features": getattr(mod, "in_features", None), "mode": getattr(mod, "mode", None)}
        else:
            extra = {}
        out = graph.values[call.outputs[0]].shape if call.outputs else ()
        inp = graph.values[call.inputs[0]].shape if call.inputs else ()
        b.module_calls.append((graph.modules[call.name].type, tuple(out), tuple(inp), params, extra))
    return b


def _thop(b: Breakdown) -> int:
    total = 0
    for kind, out, inp, params, extra in b.module_calls:
        n_out = math.prod(out) if out else 0
        if kind.startswith("Conv") and "weight" in params:
            w = params["weight"]
            total += n_out * math.prod(w[1:])          # thop 0.1.1 counts no bias addition
        elif kind == "Linear" and extra.get("in_features"):
            total += extra["in_features"] * n_out
        elif kind.startswith(("BatchNorm", "LayerNorm", "InstanceNorm")):     # GroupNorm has no rule: 0
            affine = bool(params)
            total += 2 * math.prod(inp) * (2 if affine else 1)
        elif kind.startswith("AdaptiveAvgPool") and inp and out:
            kernel = math.prod(i // o for i, o in zip(inp[2:], out[2:]) if o)
            total += (kernel + 1) * n_out
        elif kind.startswith("AvgPool"):
            total += n_out
        elif kind == "Upsample":
            total += {"nearest": 1, "bilinear": 11}.get(extra.get("mode"), 0) * n_out
    return total


def _torchinfo(b: Breakdown) -> int:
    total = 0
    for kind, out, inp, params, extra in b.module_calls:
        if not out:
            continue
        for name, shape in params.items():
            numel = math.prod(shape)
            if name in ("weight", "bias"):
                if "Conv" in kind:
                    total += numel * math.prod(out[:1] + out[2:])
                else:
                    total += out[0] * numel
            elif "weight" in name or "bias" in name:
                total += math.prod(out[:2]) * numel
    return total


@dataclass(frozen=True)
class Convention:
    name: str
    unit: str                     # "MACs" or "FLOPs", as the tool reports
    count: Callable[[Breakdown], int]
    note: str


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("torchvision", "MACs", lambda b: b.macs, "conv + matrix products + attention (cnnscope's count)"),
    Convention("2xmac", "FLOPs", lambda b: 2 * b.macs, "2 FLOPs per MAC"),
    Convention("flopcountermode", "FLOPs", lambda b: 2 * (b.conv_macs + b.matmul_macs),
               "2 × conv and matrix products; CPU attention kernels are not in its registry"),
    Convention("fvcore", "MACs", lambda b: (b.conv_macs + b.matmul_macs + b.batch_norm_elements
                                            + b.batch_norm_affine_elements + 4 * b.other_norm_elements
                                            + b.other_norm_affine_elements + b.adaptive_pool_input_elements
                                            + b.upsample_nearest_out + 4 * b.upsample_linear_out),
               "conv + linear/matmul, + batch norm 2×elements (affine), layer norm 5×, adaptive pooling 1×; "
               "no attention"),
    Convention("thop", "MACs", _thop, "module hooks: conv and linear without bias, norm modules "
                                      "4×elements (affine), adaptive-pool modules; functional ops and "
                                      "MultiheadAttention 0"),
    Convention("ptflops-aten", "MACs", lambda b: b.conv_macs + b.matmul_macs + b.bias_elements,
               "conv + matrix products + one per bias element; CPU attention not counted"),
    Convention("torchinfo", "MACs", _torchinfo, "leaf modules: conv weights × output positions; other "
                                                "weights × batch (tokens are not counted)"),
)}


def convention_counts(analysis) -> dict:
    """``{"breakdown": {...}, "conventions": {name: {"value", "unit", "note", "ratio"}}}``; ``ratio`` is the
    value ÷ cnnscope's MACs in the tool's unit."""
    b = breakdown(analysis.graph, analysis.model)
    table = {}
    for c in CONVENTIONS.values():
        v = int(c.count(b))
        table[c.name] = {"value": v, "unit": c.unit, "note": c.note, "ratio": v / b.macs if b.macs else None}
    parts = {k: getattr(b, k) for k in ("conv_macs", "matmul_macs", "attention_macs", "bias_elements",
                                        "batch_norm_elements", "batch_norm_affine_elements", "other_norm_elements",
                                        "other_norm_affine_elements", "adaptive_pool_input_elements",
                                        "upsample_nearest_out", "upsample_linear_out")}
    return {"breakdown": parts, "conventions": table}
