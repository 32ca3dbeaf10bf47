"""The channel rules: how each ATen op passes channel identity from its inputs to its outputs.

One small function per op family, registered by packet with :func:`register_rule` (the layout of
``cnnscope/analysis/costs.py``). A rule reads the recorded node, asks the
:class:`~cnnscope.transforms.coupling.Propagation` for the atoms of its inputs' dims, unites the
atoms that must be pruned together, and sets the atoms of its outputs. Ops without a rule go to
:func:`unknown`, which freezes every channel they read. Supporting a new op = adding one function.
"""
from __future__ import annotations

import torch

from typing import TYPE_CHECKING

from ..graph.dataflow import Node, ValueRef
from ..ops.args import swapped_dims
from ..ops.families import ADAPTIVE_POOLING, OTHER_POOLING, PADDING, POOLING, RESAMPLING
from .channel_registry import LITERAL_INDEX, UNKNOWN_OP, UNTRACKED, Block, register_rule

if TYPE_CHECKING:  # annotations only: coupling imports this module to register the rules
    from .coupling import Propagation


def _norm_dim(d: int, nd: int) -> int:
    return d + nd if d < 0 else d


def unknown(p: Propagation, node: Node) -> None:
    """No rule: freeze the channels of every input; outputs carry no atoms (blocked when read)."""
    p.unknown[node.packet] += 1
    for v in dict.fromkeys(node.inputs):
        p.block_value(v, UNKNOWN_OP)


# ------------------------------------------------------------------------- elementwise ops
#: same-shape ops that act on each element (or each channel) on their own, beyond the ops that
#: torch tags ``pointwise``
CHANNEL_LOCAL = (
    "aten.hardswish", "aten.hardswish_", "aten.native_dropout", "aten.dropout", "aten.bernoulli",
    "aten.bernoulli_", "aten._to_copy", "aten.copy_", "aten.copy", "aten.detach", "aten.alias",
    "aten.contiguous", "aten.lift_fresh", "aten.lift_fresh_copy", "aten.zeros_like", "aten.ones_like",
    "aten.empty_like", "aten.full_like", "aten.rand_like", "aten.randn_like", "aten.fill_", "aten.zero_",
    "aten.masked_fill", "aten.masked_fill_", "aten.where", "aten.rsub", "aten.clone",
)


@register_rule(*CHANNEL_LOCAL)
def pointwise(p: Propagation, node: Node) -> None:
    """Broadcasting elementwise op: dims aligned from the right share atoms position by position."""
    outs = [o for o in node.outputs]
    out_shape = p.shape(outs[0])
    nd = len(out_shape)
    merged: dict[tuple[int, ...], torch.Tensor] = {}
    inputs = list(dict.fromkeys(node.inputs))
    for v in inputs:
        shape = p.shape(v)
        shift = nd - len(shape)
        if shift < 0:
            return unknown(p, node)
        for b in p.blocks(v):
            dims = tuple(d + shift for d in b.dims)
            if any(shape[d] != out_shape[d + shift] for d in b.dims):
                p.atoms.block(b.atoms, UNTRACKED)      # a tracked dim broadcast: cannot follow
                continue
            if dims in merged:
                p.atoms.union(merged[dims], b.atoms)
            elif any(set(dims) & set(k) for k in merged):
                p.atoms.block(b.atoms, UNTRACKED)
                for k in [k for k in merged if set(dims) & set(k)]:
                    p.atoms.block(merged.pop(k), UNTRACKED)
            else:
                merged[dims] = b.atoms
    # inputs that cover a tracked dim without atoms of their own (parameters, or untracked values)
    for dims, atoms in list(merged.items()):
        if len(dims) != 1:
            continue
        d = dims[0]
        for v in inputs:
            shape = p.shape(v)
            k = d - (nd - len(shape))
            if k < 0 or shape[k] != out_shape[d] or shape[k] == 1:
                continue
            if not any(b.dims == (k,) for b in p.blocks(v)):
                p.bind(v, k, atoms)
    blocks = [Block(k, a) for k, a in merged.items()]
    for o in outs:
        if p.shape(o) == out_shape:
            p.set_blocks(o, blocks)
    if inputs:
        p.derive(node, inputs[0])


@register_rule("aten._prelu_kernel", "aten.prelu")
def prelu(p: Propagation, node: Node) -> None:
    """``F.prelu`` reshapes its weight to broadcast (1, C, 1, 1) before ``_prelu_kernel``: an
    ordinary broadcasting op. ``aten.prelu`` itself takes the (C,) weight for dim 1."""
    if node.packet == "aten._prelu_kernel":
        return pointwise(p, node)
    a = node.named_args()
    x, w = a["self"], a["weight"]
    if p.shape(w) and p.shape(w)[0] > 1:
        p.bind(w, 0, p.dim_atoms(x, 1), role="scale")
    p.set_blocks(node.outputs[0], p.blocks(x))


# --------------------------------------------------------------------------- convolution
@register_rule("aten.convolution", "aten._convolution")
def convolution(p: Propagation, node: Node) -> None:
    """Output channels are new atoms (the filters, weight dim 0 and the bias); input channels are
    weight dim 1. Grouped: the same within-group positions in every group; depthwise (one input
    channel per group): each input channel with its group's outputs."""
    a = node.named_args()
    x, w, b = a["input"], a["weight"], a["bias"]
    g = int(a["groups"])
    out = node.outputs[0]
    if a["transposed"]:
        cin, cout_g = p.shape(w)[0], p.shape(w)[1]
        cout = cout_g * g
        xa = p.dim_atoms(x, 1)
        if g == 1:
            p.bind(w, 0, xa, role="conv_in")
            oa = p.dim_atoms(w, 1, role="conv_out")
        elif cin // g == 1:
            p.bind(w, 0, xa, role="conv_in")
            oa = p.atoms.new(cout)
            p.atoms.union(oa.view(g, cout_g), xa.view(g, 1).expand(g, cout_g))
        else:
            p.atoms.tie(xa.view(g, cin // g))
            p.bind(w, 0, xa, role="conv_in")
            oa = p.dim_atoms(w, 1, role="conv_out").repeat(g)
        p.atoms.anchor(oa)
    else:
        cout, cin_g = p.shape(w)[0], p.shape(w)[1]
        oa = p.dim_atoms(w, 0, role="conv_out")
        p.atoms.anchor(oa)
        if g == 1:
            p.bind(w, 1, p.dim_atoms(x, 1), role="conv_in")
        elif cin_g == 1:
            xa = p.dim_atoms(x, 1)
            p.atoms.union(oa.view(g, cout // g), xa.view(g, 1).expand(g, cout // g))
        else:
            xa = p.dim_atoms(x, 1).view(g, cin_g)
            p.atoms.tie(xa)
            p.bind(w, 1, xa[0], role="conv_in")
            p.atoms.tie(oa.view(g, cout // g))
    p.bind(b, 0, oa, role="bias")
    p.set_blocks(out, [Block((1,), oa)])


# ---------------------------------------------------------------------------- matmuls
def _matmul(p: Propagation, node: Node, a_in, b_in, bias=None) -> None:
    """``out[m, n] = Σ_k a[m, k]·b[k, n]`` (+ bias[n]): a's dim 1 is b's dim 0; out dim 1 is b's dim 1.
    When ``b`` derives from a parameter (``aten.t(linear.weight)``), its dim 1 holds new features."""
    p.materialize(b_in)
    ka = p.dim_atoms(a_in, 1)
    p.bind(b_in, 0, ka)
    na = p.dim_atoms(b_in, 1)
    if p.vid(b_in) in p.param_derived:
        p.atoms.anchor(na)
    if bias is not None:
        bshape = p.shape(bias)
        if bshape and bshape[-1] == na.numel() and na.numel() > 1:
            p.bind(bias, len(bshape) - 1, na, role="bias")
    blocks = [Block((1,), na)]
    for blk in p.blocks(a_in):
        if blk.dims == (0,):
            blocks.append(blk)
    p.set_blocks(node.outputs[0], blocks)


@register_rule("aten.addmm")
def addmm(p: Propagation, node: Node) -> None:
    a = node.named_args()
    _matmul(p, node, a["mat1"], a["mat2"], a["self"])


@register_rule("aten.mm")
def mm(p: Propagation, node: Node) -> None:
    a = node.named_args()
    _matmul(p, node, a["self"], a["mat2"])


# ------------------------------------------------------------------------ normalisation
@register_rule("aten.native_batch_norm", "aten._native_batch_norm_legit_no_training",
               "aten._native_batch_norm_legit", "aten.cudnn_batch_norm", "aten.miopen_batch_norm",
               "aten._batch_norm_with_update", "aten._batch_norm_no_update", "aten._native_batch_norm_legit_functional")
def batch_norm(p: Propagation, node: Node) -> None:
    """Per-channel scale, shift and running statistics: every (C,) tensor argument is dim 1 of x."""
    x = node.args[0]
    c = p.shape(x)[1]
    xa = p.dim_atoms(x, 1)
    roles = {"weight": "norm", "bias": "norm_bias", "running_mean": "stat", "running_var": "stat"}
    for name, v in node.named_args().items():
        if isinstance(v, ValueRef) and v != x and p.shape(v) == (c,):
            p.bind(v, 0, xa, role=roles.get(name, "stat"))
    p.set_blocks(node.outputs[0], p.blocks(x))
    for o in node.outputs[1:]:
        if p.shape(o) == (c,):
            p.set_blocks(o, [Block((0,), xa)])


@register_rule("aten.native_layer_norm")
def layer_norm(p: Propagation, node: Node) -> None:
    """Normalises over the last len(normalized_shape) dims; weight/bias dims are those dims."""
    a = node.named_args()
    x = a["input"]
    nd = len(p.shape(x))
    k = len(a["normalized_shape"])
    for i in range(k):
        d = nd - k + i
        if p.shape(x)[d] == 1:
            continue
        xa = p.dim_atoms(x, d)
        p.bind(a["weight"], i, xa, role="norm")
        p.bind(a["bias"], i, xa, role="norm_bias")
    p.set_blocks(node.outputs[0], p.blocks(x))


@register_rule("aten.native_group_norm")
def group_norm(p: Propagation, node: Node) -> None:
    """Groups of C/G consecutive channels share statistics: keep G, remove the same positions in
    every group."""
    a = node.named_args()
    x = a["input"]
    groups = int(a["group"])
    xa = p.dim_atoms(x, 1)
    if groups > 1:
        p.atoms.tie(xa.view(groups, -1))
    p.bind(a["weight"], 0, xa, role="norm")
    p.bind(a["bias"], 0, xa, role="norm_bias")
    p.set_blocks(node.outputs[0], p.blocks(x))


# ------------------------------------------------------------------------- shape ops
def _permute_blocks(blocks: list[Block], perm: list[int]) -> list[Block]:
    """out dim k = in dim perm[k]."""
    inv = {src: k for k, src in enumerate(perm)}
    out = []
    for b in blocks:
        new = [inv[d] for d in b.dims]
        order = sorted(range(len(new)), key=lambda i: new[i])
        out.append(Block(tuple(new[i] for i in order), b.atoms.permute(order) if len(order) > 1 else b.atoms))
    return out


@register_rule("aten.permute")
def permute(p: Propagation, node: Node) -> None:
    x = node.args[0]
    p.materialize(x)
    nd = len(p.shape(x))
    perm = [_norm_dim(d, nd) for d in node.named_args()["dims"]]
    p.set_blocks(node.outputs[0], _permute_blocks(p.blocks(x), perm))
    p.derive(node, x)


@register_rule("aten.transpose", "aten.swapaxes", "aten.swapdims", "aten.t", "aten.numpy_T")
def transpose(p: Propagation, node: Node) -> None:
    x = node.args[0]
    p.materialize(x)
    nd = len(p.shape(x))
    perm = list(range(nd))
    if node.packet in ("aten.t", "aten.numpy_T"):
        perm = perm[::-1] if nd == 2 or node.packet == "aten.numpy_T" else perm
    else:
        d0, d1 = (_norm_dim(d, nd) for d in swapped_dims(node.named_args()))
        perm[d0], perm[d1] = perm[d1], perm[d0]
    p.set_blocks(node.outputs[0], _permute_blocks(p.blocks(x), perm))
    p.derive(node, x)


def _reshape_groups(ins: tuple[int, ...], outs: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair runs of input and output dims with equal products (how a view regroups memory)."""
    if 0 in ins or 0 in outs:
        return None
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(ins) and j < len(outs):
        gi, gj = [i], [j]
        pi, pj = ins[i], outs[j]
        i += 1
        j += 1
        while pi != pj:
            if pi < pj:
                if i >= len(ins):
                    return None
                gi.append(i)
                pi *= ins[i]
                i += 1
            else:
                if j >= len(outs):
                    return None
                gj.append(j)
                pj *= outs[j]
                j += 1
        groups.append((gi, gj))
    if not groups:
        return None
    while i < len(ins):          # trailing size-1 dims join the last group
        if ins[i] != 1:
            return None
        groups[-1][0].append(i)
        i += 1
    while j < len(outs):
        if outs[j] != 1:
            return None
        groups[-1][1].append(j)
        j += 1
    return groups


def _varying_dims(t: torch.Tensor) -> list[int]:
    return [k for k in range(t.dim()) if t.shape[k] > 1 and not bool((t == t.narrow(k, 0, 1)).all())]


@register_rule("aten.view", "aten._unsafe_view", "aten.reshape", "aten.view_copy", "aten._reshape_alias",
               "aten._reshape_copy", "aten.unflatten", "aten.flatten")
def view(p: Propagation, node: Node) -> None:
    """A reshape regroups dims. A channel dim merged with the spatial dims after it (flatten before
    a Linear) repeats each channel's atom H·W times; a channel dim split in two (channel shuffle's
    ``view(N, g, C/g, H, W)``) keeps the outer factor and removes the same inner positions in every
    outer row, so the runtime reshape of the pruned tensor lines up with the recorded one."""
    x = node.args[0]
    p.materialize(x)
    ins, outs = p.shape(x), p.shape(node.outputs[0])
    groups = _reshape_groups(ins, outs)
    if groups is None:
        return unknown(p, node)
    by_group: dict[int, list[Block]] = {}
    for b in p.blocks(x):
        home = [k for k, (gi, _) in enumerate(groups) if set(b.dims) <= set(gi)]
        if not home:
            p.atoms.block(b.atoms, UNTRACKED)
        else:
            by_group.setdefault(home[0], []).append(b)
    new: list[Block] = []
    for k, blocks in by_group.items():
        if len(blocks) > 1:                      # two tracked dims merged: cannot represent
            for b in blocks:
                p.atoms.block(b.atoms, UNTRACKED)
            continue
        b = blocks[0]
        gi, gj = groups[k]
        view_shape = [ins[d] if d in b.dims else 1 for d in gi]
        full = b.atoms.reshape(view_shape).expand([ins[d] for d in gi]).reshape([outs[d] for d in gj])
        varying = _varying_dims(full)
        if not varying:
            continue
        reduced = full
        for k in reversed(range(full.dim())):
            if k not in varying:
                reduced = reduced.select(k, 0)
        if len(varying) > 1:
            if len(b.dims) != 1:
                p.atoms.block(b.atoms, UNTRACKED)
                continue
            p.atoms.tie(reduced.reshape(-1, reduced.shape[-1]))
        new.append(Block(tuple(gj[k] for k in varying), reduced))
    p.set_blocks(node.outputs[0], new)
    p.derive(node, x)


@register_rule("aten.as_strided_")
def restride(p: Propagation, node: Node) -> None:
    """Meta kernels re-stride fresh outputs in place (adaptive pooling): same logical tensor."""
    x = node.args[0]
    if p.shape(node.outputs[0]) != p.shape(x):
        return unknown(p, node)
    p.set_blocks(node.outputs[0], p.blocks(x))


@register_rule("aten.expand", "aten.expand_copy")
def expand(p: Propagation, node: Node) -> None:
    x = node.args[0]
    ins, outs = p.shape(x), p.shape(node.outputs[0])
    shift = len(outs) - len(ins)
    new = []
    for b in p.blocks(x):
        if any(ins[d] != outs[d + shift] for d in b.dims):
            p.atoms.block(b.atoms, UNTRACKED)
            continue
        new.append(Block(tuple(d + shift for d in b.dims), b.atoms))
    p.set_blocks(node.outputs[0], new)
    p.derive(node, x)


@register_rule("aten.unsqueeze", "aten.unsqueeze_copy")
def unsqueeze(p: Propagation, node: Node) -> None:
    x = node.args[0]
    nd_out = len(p.shape(node.outputs[0]))
    d = _norm_dim(node.named_args()["dim"], nd_out)
    p.set_blocks(node.outputs[0], [Block(tuple(k + (k >= d) for k in b.dims), b.atoms) for b in p.blocks(x)])
    p.derive(node, x)


@register_rule("aten.squeeze", "aten.squeeze_copy")
def squeeze(p: Propagation, node: Node) -> None:
    x = node.args[0]
    ins = p.shape(x)
    a = node.named_args()
    if "dim" in a and a["dim"] is not None:
        ds = a["dim"] if isinstance(a["dim"], (list, tuple)) else [a["dim"]]
        removed = {_norm_dim(d, len(ins)) for d in ds if ins[_norm_dim(d, len(ins))] == 1}
    else:
        removed = {d for d, s in enumerate(ins) if s == 1}
    new = []
    for b in p.blocks(x):
        if set(b.dims) & removed:
            continue          # a size-1 channel dim: nothing to prune there
        new.append(Block(tuple(d - sum(r < d for r in removed) for d in b.dims), b.atoms))
    p.set_blocks(node.outputs[0], new)
    p.derive(node, x)


@register_rule("aten.select", "aten.select_copy")
def select(p: Propagation, node: Node) -> None:
    """``x[:, 3]`` reads a fixed position: the channels of that dim can no longer move."""
    x = node.args[0]
    d = _norm_dim(node.named_args()["dim"], len(p.shape(x)))
    new = []
    for b in p.blocks(x):
        if d in b.dims:
            p.atoms.block(b.atoms, LITERAL_INDEX)
        else:
            new.append(Block(tuple(k - (k > d) for k in b.dims), b.atoms))
    p.set_blocks(node.outputs[0], new)


@register_rule("aten.slice", "aten.slice_copy")
def slice_(p: Propagation, node: Node) -> None:
    """A full slice passes atoms on; a partial slice of a tracked dim uses literal positions."""
    x = node.args[0]
    a = node.named_args()
    d = _norm_dim(a["dim"], len(p.shape(x)))
    full = p.shape(node.outputs[0])[d] == p.shape(x)[d]
    new = []
    for b in p.blocks(x):
        if d in b.dims and not full:
            p.atoms.block(b.atoms, LITERAL_INDEX)
        else:
            new.append(b)
    p.set_blocks(node.outputs[0], new)
    p.derive(node, x)


@register_rule("aten.cat", "aten.concat", "aten.concatenate")
def cat(p: Propagation, node: Node) -> None:
    """Concatenation along a dim concatenates the inputs' atoms there (offsets are implicit); the
    other dims are coupled as in an elementwise op."""
    a = node.named_args()
    tensors = [t for t in a["tensors"] if isinstance(t, ValueRef) and p.shape(t) != (0,)]
    out = node.outputs[0]
    nd = len(p.shape(out))
    d = _norm_dim(a["dim"], nd)
    pieces = [p.dim_atoms(t, d) for t in tensors]
    blocks = [Block((d,), torch.cat(pieces))]
    others: dict[tuple[int, ...], torch.Tensor] = {}
    for t in tensors:
        for b in p.blocks(t):
            if d in b.dims:
                continue
            if b.dims in others:
                p.atoms.union(others[b.dims], b.atoms)
            else:
                others[b.dims] = b.atoms
    blocks += [Block(k, v) for k, v in others.items() if not (set(k) & {d})]
    p.set_blocks(out, blocks)


@register_rule("aten.split", "aten.split_with_sizes", "aten.unsafe_split", "aten.unsafe_split_with_sizes",
               "aten.split_copy", "aten.split_with_sizes_copy", "aten.chunk", "aten.tensor_split")
def split(p: Propagation, node: Node) -> None:
    """Split along a tracked dim into equal pieces (``chunk``, ShuffleNetV2): piece k gets atoms
    k·n … k·n+n−1, and the same positions are removed in every piece so ``chunk`` of the pruned
    tensor splits where the recorded one did. Unequal pieces have literal sizes: blocked."""
    x = node.args[0]
    a = node.named_args()
    nd = len(p.shape(x))
    d = _norm_dim(a.get("dim", 0), nd)
    sizes = [p.shape(o)[d] for o in node.outputs]
    equal = len(set(sizes)) == 1
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    outs: list[list[Block]] = [[] for _ in node.outputs]
    for b in p.blocks(x):
        if d not in b.dims:
            for o in outs:
                o.append(b)
            continue
        if b.dims != (d,) or not equal:
            p.atoms.block(b.atoms, LITERAL_INDEX)
            continue
        p.atoms.tie(b.atoms.view(len(sizes), sizes[0]))
        for k, o in enumerate(outs):
            o.append(Block((d,), b.atoms[offsets[k]: offsets[k] + sizes[k]]))
    for o, blocks in zip(node.outputs, outs):
        p.set_blocks(o, blocks)


@register_rule("aten.unbind", "aten.unbind_copy")
def unbind(p: Propagation, node: Node) -> None:
    x = node.args[0]
    d = _norm_dim(node.named_args().get("dim", 0), len(p.shape(x)))
    new = []
    for b in p.blocks(x):
        if d in b.dims:
            p.atoms.block(b.atoms, LITERAL_INDEX)
        else:
            new.append(Block(tuple(k - (k > d) for k in b.dims), b.atoms))
    for o in node.outputs:
        p.set_blocks(o, new)


# --------------------------------------------------------------------------- reductions
def _reduced_dims(node: Node, nd: int) -> tuple[set[int], bool]:
    a = node.named_args()
    dims = a.get("dim")
    if node.packet in ("aten.mean", "aten.sum") and node.op._overloadname == "default":
        dims = None
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        reduced = set(range(nd))
    elif isinstance(dims, int):
        reduced = {_norm_dim(dims, nd)}
    else:
        reduced = {_norm_dim(int(d), nd) for d in dims}
    return reduced, bool(a.get("keepdim", False))


@register_rule("aten.mean", "aten.sum", "aten.amax", "aten.amin", "aten.max", "aten.min", "aten.var",
               "aten.std", "aten.var_mean", "aten.std_mean", "aten.logsumexp", "aten.prod", "aten.norm",
               "aten.linalg_vector_norm")
def reduction(p: Propagation, node: Node) -> None:
    """Reducing the spatial dims (global average pooling, SE) passes the channels on; reducing a
    channel dim mixes channels, so those stay."""
    x = node.args[0]
    nd = len(p.shape(x))
    if node.packet in ("aten.max", "aten.min") and node.op._overloadname == "default":
        reduced, keep = set(range(nd)), False
    else:
        reduced, keep = _reduced_dims(node, nd)
    new = []
    for b in p.blocks(x):
        if set(b.dims) & reduced:
            p.atoms.block(b.atoms, UNTRACKED)
            continue
        dims = b.dims if keep else tuple(k - sum(r < k for r in reduced) for k in b.dims)
        new.append(Block(dims, b.atoms))
    for o in node.outputs:
        p.set_blocks(o, new)


@register_rule("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten.cumsum")
def along_dim(p: Propagation, node: Node) -> None:
    """An op that mixes values along one dim: channels there stay, the other dims pass."""
    x = node.args[0]
    d = _norm_dim(node.named_args()["dim"], len(p.shape(x)))
    new = []
    for b in p.blocks(x):
        if d in b.dims:
            p.atoms.block(b.atoms, UNTRACKED)
        else:
            new.append(b)
    p.set_blocks(node.outputs[0], new)


# ------------------------------------------------------------------------------ spatial ops
@register_rule(*(POOLING | ADAPTIVE_POOLING | OTHER_POOLING | RESAMPLING | (PADDING - {"aten.constant_pad_nd"})))
def spatial(p: Propagation, node: Node) -> None:
    """Pooling, upsampling and padding act on the last 1/2/3 dims; the channels pass through."""
    x = node.args[0]
    nd = len(p.shape(x))
    k = 3 if "3d" in node.packet else 1 if "1d" in node.packet else 2
    new = []
    for b in p.blocks(x):
        if any(d >= nd - k for d in b.dims):
            p.atoms.block(b.atoms, UNTRACKED)
        else:
            new.append(b)
    for o in node.outputs:
        if len(p.shape(o)) == nd:
            p.set_blocks(o, new)


@register_rule("aten.constant_pad_nd", "aten.pad", "aten._pad_circular", "aten._pad_enum")
def constant_pad(p: Propagation, node: Node) -> None:
    """Padding a dim by literal amounts: fine for spatial dims, blocks a padded channel dim."""
    x = node.args[0]
    nd = len(p.shape(x))
    pad = list(node.named_args()["pad"])
    padded = {nd - 1 - i for i in range(len(pad) // 2) if pad[2 * i] or pad[2 * i + 1]}
    new = []
    for b in p.blocks(x):
        if set(b.dims) & padded:
            p.atoms.block(b.atoms, LITERAL_INDEX)
        else:
            new.append(b)
    p.set_blocks(node.outputs[0], new)
