"""*Find*: which channels must be removed together, read from the one recorded dataflow graph.

Removing output channel 5 of a conv also removes input channel 5 of every layer that reads it, the
5th entry of the BatchNorm after it, of the residual branch it is added to, the 5th block of 49
inputs of the Linear after a flatten, and so on. This module derives those couplings by following
*channel identity* through the recorded ATen ops, one small rule per op packet (the way
``cnnscope/analysis/costs.py`` keys MAC formulas), and never by looking at module types.

Vocabulary
- **atom**: one index of one tracked tensor dimension. A conv creates fresh atoms for its output
  channels; a ReLU passes its input's atoms on; ``cat`` concatenates its inputs' atoms; a flatten
  repeats each channel's atom H·W times; a channel shuffle permutes them.
- **class**: atoms that must be kept or removed together (a union-find over atoms). A residual
  ``add`` unites the atoms of its two inputs position by position.
- **slot**: one dimension of one parameter or buffer (``layer1.0.conv1.weight`` dim 0); each
  position of a slot holds an atom, hence belongs to a class. Pruning a class removes its positions
  from every slot.
- **group**: the classes that touch exactly the same slots (e.g. the 64 output channels of a conv
  and everything coupled to them); ``--ratio`` applies per group.

Safety: a class is prunable only if it was *anchored* (created by a conv/linear output, so removing
it means removing filters) and never *blocked*. Atoms are blocked when they reach the network input
or output (its size must not change), an op without a rule (``unknown``: its inputs' channels are
frozen, never silently mis-indexed), an index or slice with literal positions, or ``--ignore``.

Grouped convolutions keep their number of groups: the same within-group positions are removed in
every group (ResNeXt 32x4d → 32x2d). Depthwise convs (one input channel per group) couple each
input channel with its outputs, so removing a channel removes its group.
"""
from __future__ import annotations

import contextlib
import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from ..errors import CnnscopeError, UnknownNameError
from ..graph.dataflow import Graph, Node, ValueRef
from . import channel_rules
from .channel_registry import IGNORED, INPUT, OUTPUT, REASONS, RULES, UNKNOWN_OP, UNTRACKED, Block

@contextlib.contextmanager
def one_thread():
    """Run bookkeeping on small integer tensors single-threaded.

    Sorting a few hundred thousand indices takes ~10 ms on one thread but can take 30× longer
    with two threads on a busy machine (OpenMP workers wait for cores); none of this is heavy math.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class Atoms:
    """Union-find over channel atoms, plus per-atom flags resolved per class at the end."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self._blocked: list[tuple[torch.Tensor, int]] = []
        self._anchored: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.parent)

    def new(self, n: int, *, blocked: int = 0, anchored: bool = False) -> torch.Tensor:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        atoms = torch.arange(start, start + n)
        if blocked:
            self._blocked.append((atoms, blocked))
        if anchored:
            self._anchored.append(atoms)
        return atoms

    def union(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Unite ``a[i]`` with ``b[i]`` for every i (same shapes, or ``b`` broadcast to ``a``)."""
        if a.shape != b.shape:
            b = b.expand(a.shape)
        parent = self.parent
        for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist()):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            while parent[y] != y:
                parent[y] = parent[parent[y]]
                y = parent[y]
            if x != y:
                if x < y:
                    parent[y] = x
                else:
                    parent[x] = y

    def tie(self, atoms: torch.Tensor) -> None:
        """Unite every row of a 2-D atom table with its first row (position j of each row together)."""
        if atoms.dim() == 2 and atoms.shape[0] > 1:
            self.union(atoms[1:], atoms[0].expand(atoms.shape[0] - 1, atoms.shape[1]))

    def block(self, atoms: torch.Tensor, reason: int) -> None:
        self._blocked.append((atoms.reshape(-1), reason))

    def anchor(self, atoms: torch.Tensor) -> None:
        self._anchored.append(atoms.reshape(-1))

    def resolve(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(root of every atom, reason bits per root, anchored per root); vectorised pointer jumping."""
        root = torch.tensor(self.parent, dtype=torch.long)
        while True:
            nxt = root[root]
            if torch.equal(nxt, root):
                break
            root = nxt
        n = len(self.parent)
        reasons = torch.zeros(n, dtype=torch.long)
        for atoms, bit in self._blocked:
            if atoms.numel():
                reasons[root[atoms]] |= bit
        anchored = torch.zeros(n, dtype=torch.bool)
        if self._anchored:
            anchored[root[torch.cat(self._anchored)]] = True
        return root, reasons, anchored


class SlotTable:
    """Atoms of parameter/buffer dimensions, shared by every graph pass (keyed by tensor name)."""

    def __init__(self) -> None:
        self.by_name: dict[str, dict[int, torch.Tensor]] = {}
        self.role: dict[tuple[str, int], str] = {}
        self.frozen: dict[str, int] = {}   # tensor name -> reason bit: every dim of it stays whole


class Propagation:
    """One pass over one graph: every value's channel atoms, rule by rule, in execution order."""

    def __init__(self, graph: Graph, atoms: Atoms, slots: SlotTable, unknown: Counter) -> None:
        self.graph = graph
        self.atoms = atoms
        self.slots = slots
        self.unknown = unknown
        self.blocks_of: dict[int, list[Block]] = {}
        self.tensor_name: dict[int, str] = {}
        self.param_derived: set[int] = set()
        self.from_input = set(graph.inputs)   # values computed from the network input alone
        for node in graph.nodes:
            if node.kind in ("param", "buffer"):
                self.tensor_name[node.outputs[0]] = node.target
                self.param_derived.add(node.outputs[0])

    # -- value helpers ---------------------------------------------------------------------------
    def shape(self, v: ValueRef | int) -> tuple[int, ...]:
        return self.graph.shape(v)

    def vid(self, v: ValueRef | int) -> int:
        return v.id if isinstance(v, ValueRef) else v

    def blocks(self, v: ValueRef | int) -> list[Block]:
        v = self.vid(v)
        name = self.tensor_name.get(v)
        if name is not None:
            return [Block((d,), a) for d, a in sorted(self.slots.by_name.get(name, {}).items())]
        return self.blocks_of.get(v, [])

    def set_blocks(self, v: ValueRef | int, blocks: list[Block]) -> None:
        v = self.vid(v)
        if v in self.tensor_name:      # an op writing into a parameter in place: keep the slot's atoms
            return
        self.blocks_of[v] = [b for b in blocks if b.atoms.numel()]

    def block_value(self, v: ValueRef | int, reason: int) -> None:
        v = self.vid(v)
        for b in self.blocks(v):
            self.atoms.block(b.atoms, reason)
        name = self.tensor_name.get(v)
        if name is not None and reason in (UNKNOWN_OP, UNTRACKED):
            self.slots.frozen.setdefault(name, reason)   # also dims that get atoms later

    def dim_atoms(self, v: ValueRef | int, dim: int, role: str | None = None) -> torch.Tensor:
        """The atoms of dimension ``dim`` of value ``v``, created if it has none yet.

        A parameter's dimension gets fresh, unblocked atoms: its meaning is whatever the op reading
        it says. Any other value without atoms came from somewhere cnnscope could not follow, so
        its fresh atoms are blocked.
        """
        v = self.vid(v)
        size = self.shape(v)[dim]
        name = self.tensor_name.get(v)
        if name is not None:
            dims = self.slots.by_name.setdefault(name, {})
            if dim not in dims:
                dims[dim] = self.atoms.new(size)
            if role:
                self.slots.role.setdefault((name, dim), role)
            return dims[dim]
        blocks = self.blocks_of.setdefault(v, [])
        for b in blocks:
            if b.dims == (dim,):
                return b.atoms
            if dim in b.dims:                       # part of a multi-dim block: give up on it
                self.atoms.block(b.atoms, UNTRACKED)
                blocks.remove(b)
                break
        fresh = self.atoms.new(size, blocked=INPUT if v in self.from_input else UNTRACKED)
        blocks.append(Block((dim,), fresh))
        return fresh

    def bind(self, v: ValueRef | int | None, dim: int, atoms: torch.Tensor, role: str | None = None) -> None:
        """Couple dimension ``dim`` of ``v`` to ``atoms`` position by position."""
        if v is None:
            return
        v = self.vid(v)
        shape = self.shape(v)
        if dim >= len(shape) or shape[dim] != atoms.numel():
            self.block_value(v, UNTRACKED)
            self.atoms.block(atoms, UNTRACKED)
            return
        name = self.tensor_name.get(v)
        if name is not None:
            dims = self.slots.by_name.setdefault(name, {})
            if role:
                self.slots.role.setdefault((name, dim), role)
            if dim not in dims:
                dims[dim] = atoms
                return
        self.atoms.union(self.dim_atoms(v, dim), atoms)

    def materialize(self, v: ValueRef | int) -> None:
        """Give every dimension of a parameter atoms (before a view/transpose reshapes it)."""
        v = self.vid(v)
        if v in self.tensor_name:
            for d, size in enumerate(self.shape(v)):
                if size > 1:
                    self.dim_atoms(v, d)

    def derive(self, node: Node, src: ValueRef | int) -> None:
        if self.vid(src) in self.param_derived:
            self.param_derived.update(node.outputs)

    # -- the pass --------------------------------------------------------------------------------
    def run(self) -> None:
        g = self.graph
        for node in g.nodes:
            if node.kind != "op":
                continue
            rule = RULES.get(node.packet)
            if rule is None and node.op is not None and torch.Tag.pointwise in node.op.tags:
                rule = channel_rules.pointwise
            if rule is None:
                if not node.inputs:        # factories (empty, zeros, arange): no channel identity
                    continue
                rule = channel_rules.unknown
            sources = [v for v in node.inputs if v not in self.tensor_name]
            if sources and all(v in self.from_input for v in sources):
                self.from_input.update(node.outputs)     # e.g. GoogLeNet's input transform
            try:
                rule(self, node)
            except (IndexError, KeyError, TypeError, ValueError, RuntimeError, AttributeError):
                # a rule met an argument layout it does not know: treat the op as unknown (safe)
                for o in node.outputs:
                    self.set_blocks(o, [])
                channel_rules.unknown(self, node)
        for v in g.outputs:
            self.block_value(v, OUTPUT)
        for v in g.inputs:
            self.block_value(v, INPUT)


# ===================================================================================== result
@dataclass
class Slot:
    """One dimension of one parameter or buffer, with the class of each of its positions."""

    tensor: str
    dim: int
    size: int
    module: str
    is_buffer: bool
    role: str
    classes: torch.Tensor     # (size,) class index per position


@dataclass
class ChannelGroup:
    """Classes that touch the same slots; ``--ratio`` removes that fraction of its classes."""

    index: int
    classes: torch.Tensor     # class indices
    slots: list[int]          # indices into Coupling.slots
    prunable: torch.Tensor    # (len(classes),) bool: anchored and never blocked
    reasons: int              # OR of the block reasons of its classes
    name: str                 # the layer that produces these channels (or the first member)
    channels: int             # positions of the group in its producing slot

    @property
    def size(self) -> int:
        return int(self.classes.numel())

    @property
    def removable(self) -> int:
        """How many classes may go: prunable ones, keeping at least one channel."""
        return min(int(self.prunable.sum()), self.size - 1)

    def why_not(self) -> str:
        bits = [text for bit, text in REASONS.items() if self.reasons & bit]
        if bits:
            return "; ".join(bits)
        if not bool(self.prunable.any()):
            return "not produced by a conv/linear layer"
        return "a single channel"


@dataclass
class Coupling:
    slots: list[Slot]
    groups: list[ChannelGroup]
    num_classes: int
    class_group: torch.Tensor            # (num_classes,) group index
    unknown_ops: Counter = field(default_factory=Counter)
    frozen: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def kept_positions(self, removed: torch.Tensor) -> dict[tuple[str, int], torch.Tensor]:
        """For every slot that loses positions: the positions it keeps (ascending)."""
        out = {}
        for s in self.slots:
            keep = ~removed[s.classes]
            if not bool(keep.all()):
                out[(s.tensor, s.dim)] = keep.nonzero().flatten()
        return out


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def ignored_modules(model: nn.Module, patterns: Iterable[str]) -> set[str]:
    """Module names (with parameters) matched by the ``--ignore`` globs, or by a parent's match."""
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    all_names = [n for n, _ in model.named_modules() if n]
    matched: set[str] = set()
    for pat in patterns:
        hit = {n for n in names if any(fnmatch.fnmatchcase(prefix, pat) for prefix in _prefixes(n))}
        if not hit:
            raise UnknownNameError("layer for --ignore", pat, all_names,
                                   hint="it matches no layer with weights; globs match qualified module "
                                        "names such as layer4.* or features.0")
        matched |= hit
    return matched


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def find_coupling(graphs: list[Graph], model: nn.Module, ignore: Iterable[str] = ()) -> Coupling:
    """Couple the channels of ``model`` as recorded in ``graphs`` (usually one: the eval-mode graph).

    ``model`` (meta or real) gives module types and tensor shapes. Every graph adds its constraints
    to the same union-find, so a train-mode graph (auxiliary heads) and the eval-mode graph agree.
    """
    with one_thread():
        return _find_coupling(graphs, model, ignore)


def _find_coupling(graphs: list[Graph], model: nn.Module, ignore: Iterable[str]) -> Coupling:
    atoms = Atoms()
    slots = SlotTable()
    unknown_ops: Counter = Counter()
    for graph in graphs:
        Propagation(graph, atoms, slots, unknown_ops).run()

    buffers = {n for n, _ in model.named_buffers()}
    ignored = ignored_modules(model, ignore) if ignore else set()
    for name, reason in slots.frozen.items():
        for a in slots.by_name.get(name, {}).values():
            atoms.block(a, reason)
    for name, dims in slots.by_name.items():
        if _owner(name) in ignored:
            for a in dims.values():
                atoms.block(a, IGNORED)

    root, reasons, anchored = atoms.resolve()
    entries = [(name, dim, a) for name, dims in slots.by_name.items() for dim, a in sorted(dims.items())]
    if not entries:
        raise CnnscopeError("the model has no parameters whose channels could be pruned")
    used_roots = torch.unique(torch.cat([root[a] for _, _, a in entries]))
    compact = torch.full((len(atoms),), -1, dtype=torch.long)
    compact[used_roots] = torch.arange(used_roots.numel())
    n = int(used_roots.numel())
    class_reasons = reasons[used_roots]
    class_prunable = anchored[used_roots] & (class_reasons == 0)

    # group classes by the set of slots they touch: a random 62-bit key per slot, summed per class
    slot_list: list[Slot] = []
    for name, dim, a in entries:
        slot_list.append(Slot(name, dim, int(a.numel()), _owner(name), name in buffers,
                              slots.role.get((name, dim), ""), compact[root[a]]))
    n_slots = len(slot_list)
    slot_of = torch.cat([torch.full((s.size,), i, dtype=torch.long) for i, s in enumerate(slot_list)])
    class_of = torch.cat([s.classes for s in slot_list])
    pairs = torch.unique(class_of * n_slots + slot_of)           # each (class, slot) once
    pair_class, pair_slot = pairs // n_slots, pairs % n_slots
    keys = torch.randint(1, 2**62, (n_slots,), generator=torch.Generator().manual_seed(20170))
    signature = torch.zeros(n, dtype=torch.long).index_add_(0, pair_class, keys[pair_slot])
    _, class_group = torch.unique(signature, return_inverse=True)
    n_groups = int(class_group.max()) + 1
    group_pairs = torch.unique(class_group[pair_class] * n_slots + pair_slot)
    group_slots: list[list[int]] = [[] for _ in range(n_groups)]
    for gidx, sidx in zip((group_pairs // n_slots).tolist(), (group_pairs % n_slots).tolist()):
        group_slots[gidx].append(sidx)

    order = torch.argsort(class_group, stable=True)
    counts = torch.bincount(class_group, minlength=n_groups).tolist()
    groups: list[ChannelGroup] = []
    start = 0
    for gidx in range(n_groups):
        cls = order[start: start + counts[gidx]]
        start += counts[gidx]
        members = group_slots[gidx]
        producer = next((slot_list[i] for i in members if slot_list[i].role == "conv_out"), None)
        if producer is None:
            producer = next((slot_list[i] for i in members if slot_list[i].dim == 0
                             and not slot_list[i].is_buffer and slot_list[i].role != "bias"), slot_list[members[0]])
        in_group = class_group[producer.classes] == gidx
        reason_bits = 0
        for bit in torch.unique(class_reasons[cls]).tolist():
            reason_bits |= bit
        groups.append(ChannelGroup(gidx, cls, members, class_prunable[cls], reason_bits, producer.module,
                                   int(in_group.sum())))
    # stable, readable order: by first appearance of the producing slot
    first_slot = {g.index: min(g.slots) for g in groups}
    groups.sort(key=lambda g: first_slot[g.index])
    remap = torch.empty(n_groups, dtype=torch.long)
    for new_index, g in enumerate(groups):
        remap[g.index] = new_index
        g.index = new_index
    return Coupling(slot_list, groups, n, remap[class_group] if n_groups else class_group, unknown_ops,
                    dict(slots.frozen), sorted(ignored))
