"""The dataflow graph: one recording of a model's forward pass that every analysis reads.

Nodes are the operations that ran, at the ATen level (so functional ops such as ``+``,
``torch.cat``, ``F.interpolate`` and attention are seen exactly like module calls), plus source
nodes for the input, parameters, buffers and constants. Values are the tensors flowing between
them, with shapes. Every op node carries the qualified name of the innermost module that ran it
(its *scope*), and :class:`ModuleCall` records each module invocation with the values that went in
and came out, so analyses can work at op level (MACs, receptive field) or module level (pruning,
rewrites).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ..ops.args import bind_schema


@dataclass(frozen=True)
class ValueRef:
    """Stands in for a tensor inside a node's recorded args."""

    id: int


@dataclass
class Value:
    id: int
    shape: tuple[int, ...]
    dtype: str
    itemsize: int
    producer: int                 # index of the node that produced it
    output_index: int = 0
    requires_grad: bool = False   # only recorded for a training graph (see tracer.trace(training=True))

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


@dataclass
class Node:
    index: int
    kind: str                     # "input" | "param" | "buffer" | "const" | "op"
    target: str                   # ATen op name (``aten.convolution.default``) or tensor name
    scope: str                    # innermost module that ran it ('' = the model itself)
    args: tuple = ()              # recorded args, tensors replaced by ValueRef
    kwargs: dict = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)   # value ids read, in argument order
    outputs: list[int] = field(default_factory=list)  # value ids written
    op: Any = None                # the torch OpOverload (not serialised)
    aliases: bool = False         # output is a view of / the same memory as an input
    macs: int = 0                 # multiply-accumulates, filled by the cost registry
    in_place: bool = False        # writes its output into an input's memory (``relu_``, ``add_``)

    @property
    def writes(self) -> bool:
        """Whether the op writes its outputs' bytes: new tensors and in-place updates do, views do not."""
        return self.in_place or not self.aliases

    def named_args(self) -> dict[str, Any]:
        """The recorded arguments by schema name, defaults filled in (positional keys without a schema)."""
        return bind_schema(getattr(self.op, "_schema", None), self.args, self.kwargs)

    @property
    def packet(self) -> str:
        """``aten.convolution`` for ``aten.convolution.default``."""
        return self.target.rsplit(".", 1)[0] if self.kind == "op" else self.kind


@dataclass
class ModuleInfo:
    name: str
    type: str
    depth: int
    params: int                   # recursive, each shared parameter counted once
    own_params: int
    trainable_params: int


@dataclass
class ModuleCall:
    name: str
    inputs: list[int]
    outputs: list[int]
    first_node: int               # node index range [first_node, last_node) that ran inside
    last_node: int = -1


@dataclass
class Graph:
    nodes: list[Node]
    values: dict[int, Value]
    calls: list[ModuleCall]
    modules: dict[str, ModuleInfo]
    inputs: list[int]
    outputs: list[int]
    param_values: dict[str, int]  # parameter/buffer name -> value id
    totals: dict[str, int] = field(default_factory=dict)
    training: bool = False        # recorded in train mode with autograd on
    saved: list[int] = field(default_factory=list)    # training: value ids autograd saved for the backward

    def shape(self, ref: ValueRef | int) -> tuple[int, ...]:
        return self.values[ref.id if isinstance(ref, ValueRef) else ref].shape

    def producer(self, value_id: int) -> Node:
        return self.nodes[self.values[value_id].producer]

    def ops(self) -> Iterator[Node]:
        return (n for n in self.nodes if n.kind == "op")

    def consumers(self) -> dict[int, list[int]]:
        """value id -> indices of the nodes that read it."""
        out: dict[int, list[int]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n.index)
        return out

    def calls_of(self, name: str) -> list[ModuleCall]:
        return [c for c in self.calls if c.name == name]

    def nodes_in(self, name: str) -> Iterator[Node]:
        """Op nodes run by module ``name`` or its descendants."""
        prefix = name + "."
        for n in self.ops():
            if name == "" or n.scope == name or n.scope.startswith(prefix):
                yield n
