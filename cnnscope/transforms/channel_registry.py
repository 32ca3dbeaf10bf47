"""The vocabulary channel rules share with the coupling pass: why atoms are blocked, a :class:`Block`
of atoms, and the rule registry (one small function per ATen op packet, see ``channel_rules``).

It sits below both ``channel_rules`` (which registers the rules) and ``coupling`` (which runs them),
so neither imports the other's module at import time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from ..graph.dataflow import Node
from ..ops.registry import op_registrar

if TYPE_CHECKING:  # annotations only: the pass that calls the rules
    from .coupling import Propagation

# -------------------------------------------------------------------------------- block reasons
INPUT, OUTPUT, UNKNOWN_OP, LITERAL_INDEX, IGNORED, UNTRACKED = 1, 2, 4, 8, 16, 32
REASONS = {
    INPUT: "reaches the network input",
    OUTPUT: "reaches the network output (its size is kept)",
    UNKNOWN_OP: "read by an op without a channel rule",
    LITERAL_INDEX: "indexed or sliced at fixed positions",
    IGNORED: "matched by --ignore",
    UNTRACKED: "comes from a tensor cnnscope cannot follow",
}


@dataclass
class Block:
    """Atoms of one or more tensor dims: ``atoms.shape`` = the sizes of ``dims`` (ascending)."""

    dims: tuple[int, ...]
    atoms: torch.Tensor


# ------------------------------------------------------------------------------------- rules
Rule = Callable[["Propagation", Node], None]
RULES: dict[str, Rule] = {}


#: register the channel rule of one or more ATen op packets (``@register_rule("aten.convolution")``)
register_rule = op_registrar(RULES, "channel rule")


