"""Receptive field (RF) of every tensor of the recorded dataflow graph, exact on any DAG.

Definitions (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019), per spatial axis (h, w): output index ``i`` sees the input pixels
``[i·S − P, i·S − P + r − 1]`` — ``r`` the size, ``S`` the effective stride ("jump") and ``P`` the
effective padding. The numbers are those of an unbounded image: near the border the region is
clipped to the image. A window op (conv, pooling) with kernel K, stride s, padding p, dilation d
gives ``r' = r + (K − 1)·d·S``, ``S' = S·s``, ``P' = P + p·S``.

One pass over the graph's nodes, in recording order, gives every value an :class:`RF`:

- ``None`` — the value does not derive from the image (parameters, constants, masks, shapes);
- spatial — one :class:`AxisRF` per spatial axis, plus the *layout*: which tensor dimensions hold
  which spatial axis, tracked through view/reshape/permute/flatten (ConvNeXt runs its MLP on an
  ``(N·H·W) × C`` matrix; the RF passes through because the matrix product mixes only channels);
- global — some op mixed every spatial position: global/adaptive pooling to 1×1, a mean over H×W,
  a matrix product or softmax over a dimension that holds spatial positions (flatten → linear,
  self-attention), anything multiplied by such a value (squeeze-and-excitation). Global is
  contagious: a value that reads a global value is global.

Where paths merge (add, mul, cat, …) the RF is the union of the incoming regions, i.e. its bounding
interval. ``misaligned`` flags a merge whose paths have different centres or different strides;
``approximate`` flags an RF that is not exact for every position: an envelope (the true region
lies inside the interval) after upsampling, non-divisible adaptive pooling, strided transposed
convs or a merge of paths with different strides; exact only away from the border after
reflection/replication padding. Ops without a rule that read an image-derived value make their
output global — conservative — and say so in ``notes``.

RF rules live in a registry keyed by ATen op packet, one small function per op kind; ops that torch
tags ``pointwise`` use the union rule unless they have their own. Normalisation layers (BatchNorm,
LayerNorm, GroupNorm) are RF-neutral: their statistics are treated like parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Union

from ..graph.dataflow import Graph, Node, ValueRef
from ..ops.args import conv_args, per_axis, pool_args, spatial_rank, swapped_dims
from ..ops.families import (ADAPTIVE_POOLING, ALONG_DIM, ATTENTION, CONCATENATION, CONVOLUTION, NORMALIZATION,
                             PADDING, PERMUTES, POOLING, REDUCTIONS, RESAMPLING, RESHAPES, SPLITS)
from ..ops.registry import op_registrar

Num = Union[int, Fraction]
#: one factor of a tensor dimension: (spatial axis index, size), axis -1 for anything else
Factor = tuple[int, int]
Layout = tuple[tuple[Factor, ...], ...]

MAX_NOTES = 4


# -- the value types ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AxisRF:
    """Along one axis, output index i sees input pixels ``[i·jump − padding, i·jump − padding + size − 1]``."""

    size: Num
    jump: Num
    padding: Num

    @property
    def last(self) -> Num:
        """Offset of the last pixel seen by index 0 (the region is ``[−padding, last]``)."""
        return self.size - 1 - self.padding

    def interval(self, i: int) -> tuple[Num, Num]:
        start = i * self.jump - self.padding
        return start, start + self.size - 1

    def window(self, k: Num, s: Num = 1, p: Num = 0, d: Num = 1) -> AxisRF:
        """Through a window op: ``r + (k − 1)·d·j``, ``j·s``, ``P + p·j``."""
        return AxisRF(_norm(self.size + (k - 1) * d * self.jump), _norm(self.jump * s),
                      _norm(self.padding + p * self.jump))


IDENTITY = AxisRF(1, 1, 0)


@dataclass(frozen=True)
class RF:
    """The receptive field of one tensor: per-axis RFs and layout, or global (``axes is None``)."""

    axes: tuple[AxisRF, ...] | None
    layout: Layout = ()
    misaligned: bool = False
    approximate: bool = False
    notes: tuple[str, ...] = ()

    @property
    def is_global(self) -> bool:
        return self.axes is None

    def to_json(self) -> dict | str:
        """``{"size": [h, w], "stride": [h, w], "padding": [h, w]}`` or ``"global"``.

        An approximate (envelope) RF is rounded outwards to whole pixels; its stride may be
        fractional (after upsampling). ``misaligned``/``approximate``/``notes`` appear only when set.
        """
        if self.axes is None:
            return "global"
        size, stride, pad = [], [], []
        for ax in self.axes:
            p = math.ceil(ax.padding)
            size.append(int(math.ceil(ax.size + (p - ax.padding))))
            pad.append(int(p))
            stride.append(json_number(ax.jump))
        out: dict[str, Any] = {"size": size, "stride": stride, "padding": pad}
        if self.misaligned:
            out["misaligned"] = True
        if self.approximate:
            out["approximate"] = True
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _norm(x: Num) -> Num:
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def json_number(x: Num) -> int | float:
    x = _norm(x)
    return x if isinstance(x, int) else round(float(x), 4)


def _notes(*groups: tuple[str, ...]) -> tuple[str, ...]:
    seen: list[str] = []
    for g in groups:
        for n in g:
            if n not in seen and len(seen) < MAX_NOTES:
                seen.append(n)
    return tuple(seen)


def global_rf(note: str | None = None, notes: tuple[str, ...] = ()) -> RF:
    return RF(None, notes=_notes(notes, (note,) if note else ()))


# -- layouts ------------------------------------------------------------------------------------
def _other(size: int) -> tuple[Factor, ...]:
    return ((-1, size),) if size > 1 else ()


def _dim_size(factors: tuple[Factor, ...]) -> int:
    return math.prod(s for _, s in factors)


def _positions(factors: tuple[Factor, ...]) -> int:
    """How many spatial positions a dimension spans (1 when it holds no spatial axis)."""
    return math.prod(s for a, s in factors if a >= 0)


def _has_spatial(factors: tuple[Factor, ...]) -> bool:
    return any(a >= 0 for a, _ in factors)


def image_layout(shape: tuple[int, ...]) -> Layout:
    """(N, C, H, W, …): batch and channels are 'other', the trailing dims are spatial axes 0, 1, …"""
    return (_other(shape[0]), _other(shape[1])) + tuple(((a, s),) for a, s in enumerate(shape[2:]))


def view_layout(layout: Layout, out_shape: tuple[int, ...]) -> Layout | None:
    """The layout after a row-major reshape to ``out_shape``; None when a spatial axis is split."""
    spatial: list[tuple[int, int, int]] = []      # (axis, size, stride in elements)
    stride = 1
    for dim in reversed(layout):
        for a, s in reversed(dim):
            if a >= 0:
                spatial.append((a, s, stride))
            stride *= s
    out_strides = [1] * len(out_shape)
    st = 1
    for k in range(len(out_shape) - 1, -1, -1):
        out_strides[k] = st
        st *= out_shape[k]
    placed: list[list[tuple[int, int, int]]] = [[] for _ in out_shape]
    used_unit: set[int] = set()
    for a, s, sigma in spatial:
        target = None
        if s == 1:   # a one-pixel axis: keep it in its own size-1 dim when there is one
            for k in range(len(out_shape) - 1, -1, -1):
                if out_shape[k] == 1 and out_strides[k] == sigma and k not in used_unit:
                    target = k
                    used_unit.add(k)
                    break
        if target is None:
            for k, (d, st_k) in enumerate(zip(out_shape, out_strides)):
                if d > 1 and st_k <= sigma and sigma * s <= st_k * d and sigma % st_k == 0 \
                        and (st_k * d) % (sigma * s) == 0:
                    target = k
                    break
        if target is None:
            if s == 1:
                target = 0
            else:
                return None
        placed[target].append((a, s, sigma))
    out: list[tuple[Factor, ...]] = []
    for k, items in enumerate(placed):
        items.sort(key=lambda t: (-t[2] * t[1], -t[2], t[0]))
        outer = out_strides[k] * out_shape[k]
        fs: list[Factor] = []
        for a, s, sigma in items:
            gap = outer // (sigma * s)
            if gap > 1:
                fs.append((-1, gap))
            fs.append((a, s))
            outer = sigma
        gap = outer // out_strides[k]
        if gap > 1:
            fs.append((-1, gap))
        out.append(tuple(fs))
    return tuple(out)


# -- merging paths ------------------------------------------------------------------------------
def union_axes(items: list[tuple[AxisRF, Num]], n: int) -> tuple[AxisRF, bool, bool]:
    """Union of paths along one axis: (axis RF, misaligned, approximate).

    ``items`` are (path RF, the path's jump as seen from the output index: 0 for a broadcast
    path), ``n`` the output's positions along the axis. Equal jumps give the exact bounding
    interval; different centres mark it misaligned. Different jumps give an envelope valid for
    the ``n`` positions (misaligned and approximate).
    """
    if len(items) == 1 and (n <= 1 or items[0][1] == items[0][0].jump):
        return items[0][0], False, False
    pad = max(ax.padding for ax, _ in items)
    last = max(ax.last for ax, _ in items)
    misaligned = len({ax.last - ax.padding for ax, _ in items}) > 1
    if n <= 1:
        return AxisRF(_norm(pad + last + 1), max(ax.jump for ax, _ in items), pad), misaligned, False
    jumps = {j for _, j in items}
    if len(jumps) == 1:
        return AxisRF(_norm(pad + last + 1), jumps.pop(), pad), misaligned, False
    top = max(jumps)
    pad = max(ax.padding + (n - 1) * (top - j) for ax, j in items)
    return AxisRF(_norm(pad + last + 1), top, _norm(pad)), True, True


def merge(parts: list[tuple[RF, Layout]], out_shape: tuple[int, ...], where: str) -> RF:
    """Union of spatial RFs whose layouts are already aligned (right-aligned broadcasting) to the output."""
    rank = len(out_shape)
    if len({len(rf.axes) for rf, _ in parts}) > 1:
        return _mismatch(where, parts)
    first = parts[0][1]
    if all(lay == first for _, lay in parts[1:]) and tuple(map(_dim_size, first)) == tuple(out_shape):
        return _merge_same_layout(parts, first, where)
    out_layout: list[tuple[Factor, ...]] = []
    for d in range(rank):
        size = out_shape[d]
        chosen = None
        for _, lay in parts:
            f = lay[d]
            if _dim_size(f) == size:
                if chosen is None:
                    chosen = f
                elif f != chosen:
                    return _mismatch(where, parts)
        if chosen is None:   # every path is broadcast along d
            labels = {a for _, lay in parts for a, _ in lay[d] if a >= 0}
            if len(labels) > 1:
                return _mismatch(where, parts)
            chosen = ((labels.pop(), size),) if labels else _other(size)
        out_layout.append(chosen)
    where_out = {a: (d, s) for d, f in enumerate(out_layout) for a, s in f if a >= 0}
    axes: list[AxisRF] = []
    misaligned = approximate = False
    for a in range(len(parts[0][0].axes)):
        d_s = where_out.get(a)
        n = d_s[1] if d_s else 1
        items = []
        for rf, lay in parts:
            pos = next(((d, s) for d, f in enumerate(lay) for b, s in f if b == a), None)
            if pos is not None and pos[1] > 1 and pos != d_s:
                return _mismatch(where, parts)
            items.append((rf.axes[a], rf.axes[a].jump if pos == d_s else 0))
        ax, mis, approx = union_axes(items, n)
        axes.append(ax)
        misaligned |= mis
        approximate |= approx
    return _finish_merge(parts, tuple(axes), out_layout, misaligned, approximate, where)


def _merge_same_layout(parts: list[tuple[RF, Layout]], layout: Layout, where: str) -> RF:
    """The common case (residual add, channel concat): every path indexes the output the same way."""
    positions = {a: s for f in layout for a, s in f if a >= 0}
    axes = []
    misaligned = approximate = False
    for a in range(len(parts[0][0].axes)):
        n = positions.get(a, 1)
        ax, mis, approx = union_axes([(rf.axes[a], rf.axes[a].jump) for rf, _ in parts], n)
        axes.append(ax)
        misaligned |= mis
        approximate |= approx
    return _finish_merge(parts, tuple(axes), layout, misaligned, approximate, where)


def _finish_merge(parts, axes, layout, misaligned: bool, approximate: bool, where: str) -> RF:
    inherited_mis = any(rf.misaligned for rf, _ in parts)
    inherited_approx = any(rf.approximate for rf, _ in parts)
    notes = _notes(*(rf.notes for rf, _ in parts))
    if misaligned and not inherited_mis:
        notes = _notes(notes, (f"misaligned merge at {where}: the paths' regions have different centres or strides",))
    if approximate and not inherited_approx:
        notes = _notes(notes, (f"approximate from {where}: paths with different strides; the RF is an envelope",))
    return RF(tuple(axes), tuple(layout), misaligned or inherited_mis, approximate or inherited_approx, notes)


def _mismatch(where: str, parts) -> RF:
    return global_rf(f"global at {where}: its inputs hold the spatial axes in different dimensions "
                     f"(conservative)", _notes(*(rf.notes for rf, _ in parts)))


def _aligned(rf: RF, rank: int) -> Layout:
    """Right-align a layout to ``rank`` dims (broadcasting)."""
    return ((),) * (rank - len(rf.layout)) + rf.layout


# -- the rule registry ----------------------------------------------------------------------------
class Context:
    """What a rule sees: the node, the graph's shapes, and the RFs computed so far."""

    __slots__ = ("graph", "rfs", "node")

    def __init__(self, graph: Graph, rfs: dict[int, RF]) -> None:
        self.graph = graph
        self.rfs = rfs
        self.node: Node | None = None

    def rf(self, ref: Any) -> RF | None:
        return self.rfs.get(ref.id) if isinstance(ref, ValueRef) else None

    def shape(self, ref: ValueRef) -> tuple[int, ...]:
        return self.graph.values[ref.id].shape

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        return self.graph.values[self.node.outputs[i]].shape

    @property
    def where(self) -> str:
        return f"{self.node.scope or 'the model'} ({self.node.packet})"


RuleResult = Union[RF, list, None]
Rule = Callable[[Node, Context], RuleResult]
RF_RULES: dict[str, Rule] = {}
#: ops whose output does not depend on their inputs' values (only shapes/dtypes)
NO_DEPENDENCE: set[str] = {
    "aten.empty_like", "aten.zeros_like", "aten.ones_like", "aten.full_like", "aten.rand_like", "aten.randn_like",
    "aten.new_zeros", "aten.new_ones", "aten.new_empty", "aten.new_full", "aten.new_empty_strided", "aten.zero_",
    "aten.fill_", "aten.fill", "aten.bernoulli_", "aten.bernoulli", "aten.uniform_", "aten.normal_",
    "aten.randint_like", "aten.sym_size", "aten.sym_stride", "aten.sym_numel",
}


register_rf = op_registrar(RF_RULES, "receptive-field rule")


_POINTWISE_TAGGED: dict[str, bool] = {}


def _rule_for(node: Node) -> Rule | None:
    """The op's registered rule; ops torch tags ``pointwise`` fall back to the union rule."""
    rule = RF_RULES.get(node.packet)
    if rule is None and node.op is not None:
        tagged = _POINTWISE_TAGGED.get(node.target)
        if tagged is None:
            import torch

            tagged = _POINTWISE_TAGGED[node.target] = torch.Tag.pointwise in getattr(node.op, "tags", ())
        if tagged:
            return pointwise_rf
    return rule


# -- rules: elementwise, normalisation, copies --------------------------------------------------
@register_rf("aten.hardswish", "aten.hardswish_", "aten.hardsigmoid", "aten.hardsigmoid_", "aten.copy_",
             "aten.copy", "aten._to_copy", "aten.alias", "aten.detach", "aten.lift_fresh_copy", "aten.clone",
             "aten.contiguous", "aten.masked_fill", "aten.masked_fill_", "aten.where", "aten.dropout",
             "aten.native_dropout", "aten.feature_dropout", "aten.prelu", "aten._prelu_kernel", "aten.glu",
             "aten.elu", "aten.elu_", "aten.selu", "aten.celu", "aten.leaky_relu", "aten.leaky_relu_",
             "aten.softplus", "aten.mish", "aten.mish_", "aten.threshold", "aten.gelu_", "aten.type_as",
             "aten._conj", "aten.lerp", "aten.addcmul", "aten.addcdiv", "aten.clamp_", "aten.clamp_min_")
def pointwise_rf(node: Node, ctx: Context) -> RuleResult:
    """Elementwise ops (with broadcasting): each output position sees the union of its inputs' regions."""
    out_shape = ctx.out_shape()
    rank = len(out_shape)
    parts = []
    for a in _tensor_args(node):
        rf = ctx.rf(a)
        if rf is not None:
            if len(rf.layout) > rank:
                return global_rf(f"global at {ctx.where}: output rank below input rank (conservative)", rf.notes)
            parts.append((rf, _aligned(rf, rank)))
    if not parts:
        return None
    if len(parts) == 1 and parts[0][1] == parts[0][0].layout and tuple(map(_dim_size, parts[0][1])) == out_shape:
        return parts[0][0]
    return merge(parts, out_shape, ctx.where)


def _tensor_args(node: Node) -> list[ValueRef]:
    out = []
    for a in list(node.args) + list(node.kwargs.values()):
        if isinstance(a, ValueRef):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(x for x in a if isinstance(x, ValueRef))
    return out


@register_rf(*NORMALIZATION)
def normalization_rf(node: Node, ctx: Context) -> RuleResult:
    """RF-neutral: statistics are treated like parameters; only the normalised output carries the RF."""
    rf = ctx.rf(node.args[0])
    return [rf] + [None] * (len(node.outputs) - 1)


# -- rules: convolution and pooling ---------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One axis of a window op: kernel, stride, padding (left), dilation, ceil mode."""

    k: Num
    s: Num
    p: Num
    d: Num = 1
    ceil: bool = False


#: op packet -> fn(node, graph) -> (windows for the last len(windows) dims, dims mixed entirely)
WINDOWS: dict[str, Callable[[Node, Graph], tuple[list[Window], tuple[int, ...], bool]]] = {}


register_window = op_registrar(WINDOWS, "window decoder")


@register_window(*CONVOLUTION)
def conv_windows(node: Node, graph: Graph):
    """convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    w = graph.shape(node.named_args()["weight"])
    c = conv_args(node.named_args(), len(w) - 2)
    k = list(w[2:])
    if not c.transposed:
        return [Window(kk, ss, pp, dd) for kk, ss, pp, dd in zip(k, c.stride, c.padding, c.dilation)], (1,), True
    # transposed: output o reads inputs (o + p − t·d)/s for taps t; envelope with jump 1/s
    wins = [Window(Fraction((kk - 1) * dd, ss) + 1, Fraction(1, ss), Fraction((kk - 1) * dd - pp, ss))
            for kk, ss, pp, dd in zip(k, c.stride, c.padding, c.dilation)]
    return wins, (1,), all(ss == 1 for ss in c.stride)


@register_window(*POOLING)
def pool_windows(node: Node, graph: Graph):
    """max_pool/avg_pool(input, kernel_size, stride=[] (= kernel), padding=0, [dilation=1], ceil_mode=False)."""
    a = pool_args(node.named_args(), spatial_rank(node.packet))
    return [Window(k, s, p, d, a.ceil_mode) for k, s, p, d in zip(a.kernel, a.stride, a.padding, a.dilation)], (), True


def _index_window(lo: list[int], hi: list[int], n_in: int) -> tuple[Window, bool]:
    """The tightest window (k, s = n_in/n_out, p) whose region contains input indices lo[o]..hi[o] for every o."""
    n_out = len(lo)
    jump = _norm(Fraction(n_in, n_out))
    pad = max(o * jump - lo[o] for o in range(n_out))
    ext = max(hi[o] - o * jump for o in range(n_out))
    exact = all(lo[o] == o * jump - pad and hi[o] == o * jump + ext for o in range(n_out))
    return Window(_norm(pad + ext + 1), jump, _norm(pad)), exact


def adaptive_windows(n_in: int, n_out: int) -> tuple[Window, bool]:
    """Adaptive pooling: window o covers ``[⌊o·n/m⌋, ⌈(o+1)·n/m⌉ − 1]`` (PyTorch's rule)."""
    lo = [(o * n_in) // n_out for o in range(n_out)]
    hi = [-(-((o + 1) * n_in) // n_out) - 1 for o in range(n_out)]
    return _index_window(lo, hi, n_in)


@register_window(*ADAPTIVE_POOLING)
def adaptive_pool_windows(node: Node, graph: Graph):
    x = graph.shape(node.args[0])
    out = graph.values[node.outputs[0]].shape
    n = spatial_rank(node.packet)
    wins, exact = [], True
    for n_in, n_out in zip(x[-n:], out[-n:]):
        w, ex = adaptive_windows(n_in, n_out)
        wins.append(w)
        exact &= ex
    return wins, (), exact


ADAPTIVE_POOLS = ADAPTIVE_POOLING


def _upsample_index_maps(kind: str, n_in: int, n_out: int, align_corners: bool, scale: Any):
    """Input indices read by each output index of an interpolation (PyTorch's source-index rules)."""
    if align_corners:
        step = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
    elif scale is not None and scale > 0:
        step = 1 / Fraction(scale)
    else:
        step = Fraction(n_in, n_out)
    lo, hi = [], []
    for o in range(n_out):
        if kind == "nearest":
            i = min(math.floor(o * step), n_in - 1)
            lo.append(i)
            hi.append(i)
            continue
        if kind == "nearest_exact":
            i = min(math.floor((o + Fraction(1, 2)) * step), n_in - 1)
            lo.append(i)
            hi.append(i)
            continue
        src = o * step if align_corners else max((o + Fraction(1, 2)) * step - Fraction(1, 2), Fraction(0))
        i0 = min(math.floor(src), n_in - 1)
        if kind == "cubic":
            lo.append(max(i0 - 1, 0))
            hi.append(min(i0 + 2, n_in - 1))
        else:
            lo.append(i0)
            hi.append(min(i0 + 1, n_in - 1))
    return lo, hi


@register_window(*RESAMPLING)
def upsample_windows(node: Node, graph: Graph):
    """upsample_*(input, output_size, [align_corners], scales…) or the ``.vec`` overloads with scale_factors."""
    name = node.packet
    kind = "nearest_exact" if "nearest_exact" in name else "nearest" if "nearest" in name else \
        "cubic" if "bicubic" in name else "linear"
    x = graph.shape(node.args[0])
    out = graph.values[node.outputs[0]].shape
    n = len(x) - 2
    b = node.named_args()
    align = bool(b.get("align_corners") or False)
    if b.get("scale_factors"):
        scales = list(b["scale_factors"])
    else:
        scales = [b.get(k) for k in {1: ["scales"], 2: ["scales_h", "scales_w"],
                                     3: ["scales_d", "scales_h", "scales_w"]}.get(n, [])] or [None] * n
    wins, exact = [], True
    for t in range(n):
        lo, hi = _upsample_index_maps(kind, x[2 + t], out[2 + t], align, scales[t])
        w, ex = _index_window(lo, hi, x[2 + t])
        wins.append(w)
        exact &= ex
    return wins, (), exact


def _apply_windows(ctx: Context, rf: RF, in_shape, out_shape, windows: list[Window], mixed: tuple[int, ...],
                   exact: bool) -> RF:
    lay = rf.layout
    rank = len(lay)
    for d in mixed:
        if _positions(lay[d]) > 1:
            return global_rf(f"global at {ctx.where}: it mixes dimension {d}, which holds spatial positions", rf.notes)
    axes = list(rf.axes)
    new = list(lay)
    nd = len(windows)
    for d in range(rank - nd):
        if d in mixed or out_shape[d] != in_shape[d]:
            new[d] = _other(out_shape[d])
    for t, w in enumerate(windows):
        d = rank - nd + t
        f = lay[d]
        labels = [a for a, _ in f if a >= 0]
        if not labels:
            new[d] = _other(out_shape[d])
            continue
        if len(f) != 1:
            return global_rf(f"global at {ctx.where}: a window over a dimension that mixes spatial positions with "
                             f"other data (conservative)", rf.notes)
        a = labels[0]
        axes[a] = axes[a].window(w.k, w.s, w.p, w.d)
        new[d] = ((a, out_shape[d]),)
    notes = rf.notes
    if not exact and not rf.approximate:
        notes = _notes(notes, (f"approximate from {ctx.where}: the region is an envelope of what each position reads",))
    return RF(tuple(axes), tuple(new), rf.misaligned, rf.approximate or not exact, notes)


@register_rf(*WINDOWS)
def window_rf(node: Node, ctx: Context) -> RuleResult:
    """Conv, pooling, adaptive pooling and interpolation: ``r + (K − 1)·d·j``, ``j·S``, ``P + p·j``."""
    rf = ctx.rf(node.args[0])
    if rf is None:
        return None
    in_shape = ctx.shape(node.args[0])
    out_shape = ctx.out_shape()
    windows, mixed, exact = WINDOWS[node.packet](node, ctx.graph)
    if node.packet in ADAPTIVE_POOLS:
        sp = [(n_in, n_out) for n_in, n_out, f in zip(in_shape[-len(windows):], out_shape[-len(windows):],
                                                       rf.layout[-len(windows):]) if _has_spatial(f)]
        if sp and all(o == 1 for _, o in sp) and any(i > 1 for i, _ in sp):
            return global_rf(f"global at {ctx.where}: pooling to 1×1")
    if len(rf.layout) != len(in_shape):
        return global_rf(f"global at {ctx.where}: unexpected layout (conservative)", rf.notes)
    return _apply_windows(ctx, rf, in_shape, out_shape, windows, mixed, exact)



@register_rf("aten.pixel_unshuffle", "aten.pixel_shuffle")
def pixel_shuffle_rf(node: Node, ctx: Context) -> RuleResult:
    """pixel_unshuffle(r): a window k = s = r over H and W; pixel_shuffle(r): like nearest upsampling by r."""
    rf = ctx.rf(node.args[0])
    b = node.named_args()
    r = int(b.get("upscale_factor", b.get("downscale_factor")))
    in_shape, out_shape = ctx.shape(node.args[0]), ctx.out_shape()
    if "unshuffle" in node.packet:
        wins, exact = [Window(r, r, 0), Window(r, r, 0)], True
    else:
        wins, exact = [], True
        for n_in, n_out in zip(in_shape[-2:], out_shape[-2:]):
            w, ex = _index_window([o // r for o in range(n_out)], [o // r for o in range(n_out)], n_in)
            wins.append(w)
            exact &= ex
    return _apply_windows(ctx, rf, in_shape, out_shape, wins, (len(in_shape) - 3,), exact)


# -- rules: padding, slicing, concatenation ---------------------------------------------------------
def _shift_dim(ctx: Context, rf: RF, d: int, offset: int, step: int, size: int, exact: bool = True) -> RF | None:
    """Output index i of dim d reads input index ``offset + i·step``; None if d mixes spatial and other data."""
    f = rf.layout[d]
    if not _has_spatial(f):
        return RF(rf.axes, rf.layout[:d] + (_other(size),) + rf.layout[d + 1:], rf.misaligned, rf.approximate,
                  rf.notes)
    if len(f) != 1:
        return None
    a = f[0][0]
    axes = list(rf.axes)
    axes[a] = axes[a].window(1, step, -offset)
    return RF(tuple(axes), rf.layout[:d] + (((a, size),) if size >= 1 else (),) + rf.layout[d + 1:],
              rf.misaligned, rf.approximate or not exact, rf.notes)


def _dim(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


@register_rf(*PADDING)
def pad_rf(node: Node, ctx: Context) -> RuleResult:
    """pad(input, [left_last, right_last, left_2nd_last, …]): output index i reads input i − left.

    Exact for zero (constant) padding; reflection/replication padding is exact away from the border
    only (border outputs read mirrored or repeated pixels), so it is flagged approximate. Circular
    padding has no rule: it wraps around, which is conservatively global.
    """
    rf = ctx.rf(node.args[0])
    b = node.named_args()
    pads = list(b["pad"] if "pad" in b else b["padding"])
    out_shape = ctx.out_shape()
    rank = len(out_shape)
    exact = "constant" in node.packet
    for t in range(len(pads) // 2):
        d = rank - 1 - t
        new = _shift_dim(ctx, rf, d, -int(pads[2 * t]), 1, out_shape[d], exact)
        if new is None:
            return global_rf(f"global at {ctx.where}: padding a dimension that mixes spatial and other data "
                             f"(conservative)", rf.notes)
        rf = new
    if not exact:
        rf = RF(rf.axes, rf.layout, rf.misaligned, True,
                _notes(rf.notes, (f"approximate from {ctx.where}: exact away from the border; border outputs read "
                                  f"mirrored/replicated pixels",)))
    return rf


@register_rf("aten.slice")
def slice_rf(node: Node, ctx: Context) -> RuleResult:
    """slice(input, dim=0, start=None, end=None, step=1)."""
    rf = ctx.rf(node.args[0])
    in_shape = ctx.shape(node.args[0])
    b = node.named_args()
    d = _dim(int(b.get("dim", 0)), len(in_shape))
    start = b.get("start")
    step = int(b.get("step", 1) or 1)
    n = in_shape[d]
    start = 0 if start is None else int(start)
    start = max(0, min(n, start + n if start < 0 else start))
    new = _shift_dim(ctx, rf, d, start, step, ctx.out_shape()[d])
    return new if new is not None else global_rf(
        f"global at {ctx.where}: slicing a dimension that mixes spatial and other data (conservative)", rf.notes)


@register_rf("aten.select")
def select_rf(node: Node, ctx: Context) -> RuleResult:
    """select(input, dim, index): a spatial axis is fixed at that index (it keeps its RF, leaves the layout)."""
    rf = ctx.rf(node.args[0])
    in_shape = ctx.shape(node.args[0])
    b = node.named_args()
    d = _dim(int(b["dim"]), len(in_shape))
    idx = int(b["index"])
    idx = idx + in_shape[d] if idx < 0 else idx
    f = rf.layout[d]
    axes = rf.axes
    if _has_spatial(f):
        if len(f) != 1:
            return global_rf(f"global at {ctx.where}: selecting in a dimension that mixes spatial and other data "
                             f"(conservative)", rf.notes)
        a = f[0][0]
        axes = tuple(ax.window(1, 1, -idx) if b == a else ax for b, ax in enumerate(rf.axes))
    return RF(axes, rf.layout[:d] + rf.layout[d + 1:], rf.misaligned, rf.approximate, rf.notes)


@register_rf(*SPLITS)
def split_rf(node: Node, ctx: Context) -> RuleResult:
    """split(input, size or sizes, dim): each chunk is a slice; a channel split keeps the RF (ShuffleNet)."""
    rf = ctx.rf(node.args[0])
    in_shape = ctx.shape(node.args[0])
    d = _dim(int(node.named_args().get("dim", 0)), len(in_shape))
    out, offset = [], 0
    for vid in node.outputs:
        size = ctx.graph.values[vid].shape[d]
        new = _shift_dim(ctx, rf, d, offset, 1, size)
        out.append(new if new is not None else global_rf(
            f"global at {ctx.where}: splitting a dimension that mixes spatial and other data (conservative)", rf.notes))
        offset += size
    return out


@register_rf("aten.unbind")
def unbind_rf(node: Node, ctx: Context) -> RuleResult:
    rf = ctx.rf(node.args[0])
    in_shape = ctx.shape(node.args[0])
    d = _dim(int(node.named_args().get("dim", 0)), len(in_shape))
    if _has_spatial(rf.layout[d]):
        return global_rf(f"global at {ctx.where}: unbinding a spatial dimension (conservative)", rf.notes)
    return [RF(rf.axes, rf.layout[:d] + rf.layout[d + 1:], rf.misaligned, rf.approximate, rf.notes)
            for _ in node.outputs]


@register_rf(*CONCATENATION)
def cat_rf(node: Node, ctx: Context) -> RuleResult:
    """Concatenation: along channels, the union of the branches (Inception, DenseNet); along a spatial
    axis each part is shifted by its offset."""
    tensors = node.args[0]
    out_shape = ctx.out_shape()
    rank = len(out_shape)
    stack = node.packet == "aten.stack"
    d = _dim(int(node.named_args().get("dim", 0)), rank)
    parts, offset = [], 0
    for t in tensors:
        rf = ctx.rf(t)
        size = ctx.shape(t)[d] if not stack and len(ctx.shape(t)) > d else 1
        if rf is not None:
            lay = rf.layout[:d] + ((),) + rf.layout[d:] if stack else rf.layout
            if len(lay) != rank:
                return global_rf(f"global at {ctx.where}: unexpected layout (conservative)", rf.notes)
            f = lay[d]
            if _has_spatial(f):
                if len(f) != 1:
                    return global_rf(f"global at {ctx.where}: concatenating along a dimension that mixes spatial "
                                     f"and other data (conservative)", rf.notes)
                a = f[0][0]
                axes = tuple(ax.window(1, 1, offset) if b == a else ax for b, ax in enumerate(rf.axes))
                rf = RF(axes, lay, rf.misaligned, rf.approximate, rf.notes)
            lay = lay[:d] + (_other(out_shape[d]) if not _has_spatial(f) else ((f[0][0], out_shape[d]),),) + lay[d + 1:]
            parts.append((rf, lay))
        offset += size
    if len(parts) == 1 and parts[0][0].layout == parts[0][1] and not _has_spatial(parts[0][1][d]):
        return parts[0][0]
    result = merge(parts, out_shape, ctx.where)
    if not result.is_global and _has_spatial(result.layout[d]) and len(parts) > 1:
        result = RF(result.axes, result.layout, True, True,
                    _notes(result.notes, (f"approximate from {ctx.where}: concatenation along a spatial axis",)))
    return result


# -- rules: views and layout changes ---------------------------------------------------------------
@register_rf(*RESHAPES)
def view_rf(node: Node, ctx: Context) -> RuleResult:
    """A reshape keeps every position's RF; the layout follows the spatial axes into their new dims."""
    rf = ctx.rf(node.args[0])
    lay = view_layout(rf.layout, ctx.out_shape())
    if lay is None:
        return global_rf(f"global at {ctx.where}: the reshape splits a spatial axis (e.g. into windows); "
                         f"the layout is not followed further (conservative)", rf.notes)
    return RF(rf.axes, lay, rf.misaligned, rf.approximate, rf.notes)


@register_rf(*PERMUTES)
def permute_rf(node: Node, ctx: Context) -> RuleResult:
    rf = ctx.rf(node.args[0])
    rank = len(rf.layout)
    order = list(range(rank))
    if node.packet == "aten.permute":
        order = [_dim(int(d), rank) for d in node.named_args()["dims"]]
    elif node.packet in ("aten.movedim",):
        b = node.named_args()
        src, dst = per_axis(b["source"], 1), per_axis(b["destination"], 1)
        src = [_dim(int(s), rank) for s in src]
        dst = [_dim(int(s), rank) for s in dst]
        rest = [d for d in range(rank) if d not in src]
        order = [None] * rank
        for s, t in zip(src, dst):
            order[t] = s
        it = iter(rest)
        order = [o if o is not None else next(it) for o in order]
    elif rank >= 2:
        pair = swapped_dims(node.named_args())
        if pair:                                    # transpose(self, dim0, dim1), swapaxes(…, axis0, axis1)
            a, b = _dim(pair[0], rank), _dim(pair[1], rank)
        else:
            a, b = rank - 2, rank - 1
        order[a], order[b] = order[b], order[a]
    return RF(rf.axes, tuple(rf.layout[d] for d in order), rf.misaligned, rf.approximate, rf.notes)


@register_rf("aten.expand", "aten.expand_as", "aten.broadcast_to", "aten.expand_copy")
def expand_rf(node: Node, ctx: Context) -> RuleResult:
    """Broadcast copies: an expanded one-pixel spatial axis shows every output index the same pixel (jump 0)."""
    rf = ctx.rf(node.args[0])
    out_shape = ctx.out_shape()
    return merge([(rf, _aligned(rf, len(out_shape)))], out_shape, ctx.where)


@register_rf("aten.as_strided", "aten.as_strided_")
def as_strided_rf(node: Node, ctx: Context) -> RuleResult:
    """Arbitrary strides: exact only when it keeps the shape and no dim holds more than one pixel."""
    rf = ctx.rf(node.args[0])
    if tuple(ctx.out_shape()) == tuple(ctx.shape(node.args[0])) and all(_positions(f) == 1 for f in rf.layout):
        return rf
    return global_rf(f"global at {ctx.where}: as_strided may reorder positions (conservative)", rf.notes)


# -- rules: reductions, softmax, matrix products, attention -----------------------------------------
def _reduce(ctx: Context, rf: RF, dims: list[int], keepdim: bool, what: str) -> RF:
    rank = len(rf.layout)
    dims = list(range(rank)) if not dims else [_dim(int(d), rank) for d in dims]
    if math.prod(_positions(rf.layout[d]) for d in dims) > 1:
        return global_rf(f"global at {ctx.where}: {what} over spatial positions")
    if keepdim:
        lay = tuple(tuple(f for f in rf.layout[d] if f[0] >= 0) if d in dims else rf.layout[d] for d in range(rank))
    else:
        lay = tuple(rf.layout[d] for d in range(rank) if d not in dims)
    return RF(rf.axes, lay, rf.misaligned, rf.approximate, rf.notes)


@register_rf(*REDUCTIONS)
def reduction_rf(node: Node, ctx: Context) -> RuleResult:
    """mean/sum/max/norm over dims: global when they cover more than one spatial position."""
    b = node.named_args()
    if isinstance(b.get("other"), ValueRef):      # max.other / min.other: elementwise
        return pointwise_rf(node, ctx)
    rf = ctx.rf(node.args[0])
    dim = b.get("dim")
    dims = [] if dim is None else per_axis(dim, 1)
    res = _reduce(ctx, rf, dims, bool(b.get("keepdim", False)), "a reduction")
    return [res] * len(node.outputs)


@register_rf(*ALONG_DIM)
def along_dim_rf(node: Node, ctx: Context) -> RuleResult:
    """Ops that mix one dim (softmax, cumsum): global when that dim holds several spatial positions."""
    rf = ctx.rf(node.args[0])
    d = _dim(int(node.named_args().get("dim", -1)), len(rf.layout))
    if _positions(rf.layout[d]) > 1:
        return global_rf(f"global at {ctx.where}: mixes spatial positions")
    if node.packet == "aten.topk":
        return global_rf(f"global at {ctx.where}: selects positions by value (conservative)")
    return [rf] * len(node.outputs)


def _matmul(ctx: Context, a_ref: Any, b_ref: Any, extra: list[Any]) -> RF | None:
    """(…, M, K) @ (…, K, N): global if K holds spatial positions; otherwise rows keep a's positions
    and columns b's, and the RF is their union (ConvNeXt's MLP on an (N·H·W) × C matrix)."""
    out_shape = ctx.out_shape()
    rank = len(out_shape)
    a_vec, b_vec = len(ctx.shape(a_ref)) == 1, len(ctx.shape(b_ref)) == 1
    parts = []
    for ref, role in ((a_ref, "a"), (b_ref, "b")):
        rf = ctx.rf(ref)
        if rf is None:
            continue
        lay = rf.layout
        if role == "a":
            lay = ((),) + lay if a_vec else lay
            contracted, lay = lay[-1], lay[:-1] + ((),)
        else:
            lay = lay + ((),) if b_vec else lay
            contracted, lay = lay[-2], lay[:-2] + ((), lay[-1])
        if _positions(contracted) > 1:
            return global_rf(f"global at {ctx.where}: a matrix product over spatial positions")
        if b_vec:
            lay = lay[:-1]
        if a_vec:
            lay = lay[:-2] + lay[-1:] if not b_vec else lay[:-1]
        parts.append((rf, ((),) * (rank - len(lay)) + lay))
    for ref in extra:
        rf = ctx.rf(ref)
        if rf is not None:
            parts.append((rf, _aligned(rf, rank)))
    if not parts:
        return None
    carriers = [lay for _, lay in parts if any(_positions(f) > 1 for f in lay)]
    if any(c != carriers[0] for c in carriers[1:]):
        return global_rf(f"global at {ctx.where}: pairs positions of two image-derived operands (attention-like)")
    return merge(parts, out_shape, ctx.where)


@register_rf("aten.mm", "aten.bmm", "aten.matmul", "aten.mv", "aten.dot", "aten.vdot")
def mm_rf(node: Node, ctx: Context) -> RuleResult:
    return _matmul(ctx, node.args[0], node.args[1], [])


@register_rf("aten.addmm", "aten.baddbmm", "aten.addmv", "aten.addbmm")
def addmm_rf(node: Node, ctx: Context) -> RuleResult:
    return _matmul(ctx, node.args[1], node.args[2], [node.args[0]])


@register_rf("aten.linear")
def linear_rf(node: Node, ctx: Context) -> RuleResult:
    """linear(input, weight, bias): a matrix product over the input's last dim."""
    rf = ctx.rf(node.args[0])
    if rf is None or any(ctx.rf(a) is not None for a in node.args[1:] if isinstance(a, ValueRef)):
        return global_rf(f"global at {ctx.where}: image-derived weights (conservative)")
    if _positions(rf.layout[-1]) > 1:
        return global_rf(f"global at {ctx.where}: a linear layer over spatial positions")
    return RF(rf.axes, rf.layout[:-1] + (_other(ctx.out_shape()[-1]),), rf.misaligned, rf.approximate, rf.notes)


@register_rf(*ATTENTION)
def attention_rf(node: Node, ctx: Context) -> RuleResult:
    """Self-attention: every query reads every key, so it is global once the keys are image positions."""
    rfs = [ctx.rf(a) for a in node.args[:3]]
    if any(rf is not None and len(rf.layout) >= 2 and _positions(rf.layout[-2]) > 1 for rf in rfs[1:]):
        return global_rf(f"global at {ctx.where}: self-attention over spatial positions")
    q = rfs[0]
    if q is None:
        return global_rf(f"global at {ctx.where}: attention (conservative)")
    parts = [(rf, _aligned(rf, len(ctx.out_shape()))) for rf in rfs if rf is not None]
    return [merge(parts, ctx.out_shape(), ctx.where)] + [None] * (len(node.outputs) - 1)


# -- the pass -------------------------------------------------------------------------------------
@dataclass
class RFResult:
    """Every value's RF (values that do not derive from the image are absent) and where it became global."""

    rfs: dict[int, RF]
    #: the RF of the last spatial feature map read by an op that made the network global (None if none did)
    before_global: RF | None = None
    #: index of that op's node
    global_node: int | None = None


def spatial_image_inputs(graph: Graph) -> list[int]:
    """Graph inputs that are images: floating point, N×C×spatial…"""
    return [v for v in graph.inputs if len(graph.values[v].shape) >= 3 and "float" in graph.values[v].dtype]


def analyse(graph: Graph) -> RFResult:
    """One pass over the nodes, in recording order (a topological order of the dataflow graph)."""
    rfs: dict[int, RF] = {}
    for vid in spatial_image_inputs(graph):
        shape = graph.values[vid].shape
        rfs[vid] = RF((IDENTITY,) * (len(shape) - 2), image_layout(shape))
    result = RFResult(rfs)
    ctx = Context(graph, rfs)
    for node in graph.nodes:
        if node.kind != "op":
            continue
        ins = [rfs[v] for v in node.inputs if v in rfs]
        if not ins or node.packet in NO_DEPENDENCE:
            continue
        globals_in = [rf for rf in ins if rf.is_global]
        if globals_in:
            out: RuleResult = global_rf(notes=_notes(*(rf.notes for rf in globals_in)))
        else:
            rule = _rule_for(node)
            if rule is None:
                out = global_rf(f"global at {node.scope or 'the model'}: no receptive-field rule for {node.packet} "
                                f"(conservative)", _notes(*(rf.notes for rf in ins)))
            else:
                ctx.node = node
                out = rule(node, ctx)
        outs = out if isinstance(out, list) else _broadcast_result(out, node, graph)
        made_global = False
        for vid, rf in zip(node.outputs, outs):
            if rf is not None:
                rfs[vid] = rf
                made_global |= rf.is_global
        if made_global and not globals_in:
            spatial = [rf for rf in ins if not rf.is_global]
            result.before_global = max(spatial, key=_extent)
            result.global_node = node.index
    return result


def _extent(rf: RF) -> Num:
    return sum(ax.size for ax in rf.axes)


def _broadcast_result(rf: RF | None, node: Node, graph: Graph) -> list[RF | None]:
    """A single result applies to every output of the same shape as the first (e.g. max-pool's indices)."""
    if len(node.outputs) <= 1:
        return [rf]
    first = graph.values[node.outputs[0]].shape
    return [rf if (rf is not None and (rf.is_global or graph.values[v].shape == first)) else None
            for v in node.outputs]


def receptive_fields(graph: Graph) -> dict[int, RF]:
    """value id -> :class:`RF`; values that do not derive from the image are absent (non-spatial)."""
    return analyse(graph).rfs


def total_receptive_field(graph: Graph, result: RFResult | None = None) -> RF | None:
    """The RF of the last feature map before the network becomes global; else of the first spatial output."""
    result = result or analyse(graph)
    if result.before_global is not None:
        return result.before_global
    for v in graph.outputs:
        rf = result.rfs.get(v)
        if rf is not None and not rf.is_global:
            return rf
    return None


def receptive_fields_by_call(graph: Graph) -> tuple[list[Any], Any]:
    """The JSON RF of each module call's first output (aligned with ``graph.calls``; None where the output
    does not derive from the image), and the total (see :func:`total_receptive_field`)."""
    result = analyse(graph)
    by_call = []
    for call in graph.calls:
        rf = result.rfs.get(call.outputs[0]) if call.outputs else None
        by_call.append(rf.to_json() if rf is not None else None)
    total = total_receptive_field(graph, result)
    return by_call, (total.to_json() if total is not None else None)


def receptive_fields_by_module(graph: Graph) -> tuple[dict[str, Any], Any]:
    """Module name -> JSON RF of its (first call's first) output, and the total (see :func:`total_receptive_field`)."""
    by_call, total = receptive_fields_by_call(graph)
    by_module: dict[str, Any] = {}
    for call, rf in zip(graph.calls, by_call):
        if call.name not in by_module and call.outputs:
            by_module[call.name] = rf
    return by_module, total
