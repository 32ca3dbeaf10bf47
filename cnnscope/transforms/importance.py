"""*Score*: how much each channel class matters, so pruning removes the least important first.

A class (see :mod:`cnnscope.transforms.coupling`) owns positions in several tensors: a conv's
filters, the next conv's input slices, a BatchNorm's scale, a Linear's 7×7 block of inputs. Its
importance aggregates over those members (DepGraph's group importance): each member contributes its
per-position magnitude divided by that member's mean, so a 3×3×512 filter and a BatchNorm scale
weigh the same, and the class's importance is the mean over its positions. Only the order inside a
group matters for ``--scope layer``; ``--scope global`` further divides by the group's mean.

Criteria (registry keyed by name; adding one = one function):

- ``l1`` (default): L1 norm of the weights (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
- ``l2``: L2 norm of the weights.
- ``bn``: |γ| of the normalisation layers (Liu et al. 2017, "network slimming"); classes without a
  BatchNorm/LayerNorm/GroupNorm member fall back to ``l1``.
- ``random``: uniform random, seeded: the baseline every criterion must beat.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import CnnscopeError, UnknownNameError
from .coupling import Coupling, Slot, one_thread

Criterion = Callable[[Coupling, dict[str, torch.Tensor], int], tuple[torch.Tensor, list[str]]]
CRITERIA: dict[str, tuple[Criterion, str]] = {}


def register_criterion(name: str, help: str) -> Callable[[Criterion], Criterion]:
    def deco(fn: Criterion) -> Criterion:
        CRITERIA[name] = (fn, help)
        return fn

    return deco


def _per_position(magnitude: torch.Tensor, dim: int, p: int) -> torch.Tensor:
    """Lp norm of each slice ``t.select(dim, i)``, from ``|t|`` (p=1) or ``t²`` (p=2)."""
    others = [d for d in range(magnitude.dim()) if d != dim]
    total = magnitude.sum(dim=others) if others else magnitude
    return total if p == 1 else total.sqrt()


def _aggregate(coupling: Coupling, tensors: dict[str, torch.Tensor], use: Callable[[Slot, torch.Tensor], bool],
               p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean normalised magnitude per class, number of member positions per class)."""
    n = coupling.num_classes
    total = torch.zeros(n)
    count = torch.zeros(n)
    magnitudes: dict[str, torch.Tensor] = {}     # |t| or t² once per tensor, shared by its dims
    for s in coupling.slots:
        t = tensors.get(s.tensor)
        if t is None or not use(s, t):
            continue
        if s.tensor not in magnitudes:
            t = t.detach().float()
            magnitudes[s.tensor] = t.abs() if p == 1 else t * t
        pos = _per_position(magnitudes[s.tensor], s.dim, p).cpu()
        mean = pos.mean()
        if mean > 0:
            pos = pos / mean
        total.index_add_(0, s.classes, pos)
        count.index_add_(0, s.classes, torch.ones(s.size))
    return total / count.clamp(min=1), count


def _is_weight(s: Slot, t: torch.Tensor) -> bool:
    """Conv/linear weights (≥ 2-D) and normalisation scales; not biases or running statistics."""
    return not s.is_buffer and (t.dim() >= 2 or s.role == "norm")


@register_criterion("l1", "L1 norm of every coupled weight slice (Li et al. 2017)")
def l1(coupling: Coupling, tensors: dict[str, torch.Tensor], seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    return _aggregate(coupling, tensors, _is_weight, 1)[0], []


@register_criterion("l2", "L2 norm of every coupled weight slice")
def l2(coupling: Coupling, tensors: dict[str, torch.Tensor], seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    return _aggregate(coupling, tensors, _is_weight, 2)[0], []


@register_criterion("bn", "|γ| of the BatchNorm (or LayerNorm/GroupNorm) scale (network slimming)")
def bn(coupling: Coupling, tensors: dict[str, torch.Tensor], seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    gamma, count = _aggregate(coupling, tensors, lambda s, t: s.role == "norm" and not s.is_buffer, 1)
    missing = count == 0
    notes = []
    if bool(missing.any()):
        fallback = l1(coupling, tensors)[0]
        gamma = torch.where(missing, fallback, gamma)
        lacking = sorted({g.name for g in coupling.groups if g.removable and bool(missing[g.classes].all())})
        if lacking:
            shown = ", ".join(lacking[:3]) + (f" (+{len(lacking) - 3} more)" if len(lacking) > 3 else "")
            notes.append(f"criterion bn: {len(lacking)} channel group(s) have no normalisation layer "
                         f"({shown}); they were ranked by l1")
    tied = [g.name for g in coupling.groups if g.removable and not bool(missing[g.classes].any())
            and float(gamma[g.classes].max() - gamma[g.classes].min()) == 0.0]
    if tied:
        shown = ", ".join(tied[:3]) + (f" (+{len(tied) - 3} more)" if len(tied) > 3 else "")
        notes.append(f"criterion bn: every |γ| is equal within {len(tied)} channel group(s) ({shown}), as a fresh "
                     f"init leaves them (γ = 1), so which channels go there is arbitrary; "
                     f"pass trained --weights, or use --criterion l1")
    return gamma, notes


@register_criterion("random", "uniform random ranking, seeded (a baseline)")
def random(coupling: Coupling, tensors: dict[str, torch.Tensor], seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    return torch.rand(coupling.num_classes, generator=torch.Generator().manual_seed(seed)), []


def check_criterion(name: str) -> str:
    if name not in CRITERIA:
        raise UnknownNameError("criterion", name, list(CRITERIA),
                               hint="choose one of " + ", ".join(CRITERIA))
    return name


def score(criterion: str, coupling: Coupling, tensors: dict[str, torch.Tensor],
          seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Importance per class (higher = keep) and notes for the user."""
    fn = CRITERIA[check_criterion(criterion)][0]
    if criterion != "random" and any(t.device.type == "meta" for t in tensors.values()):
        raise CnnscopeError(f"criterion {criterion} needs real weights but the model is on the meta device; "
                            f"load it with cnnscope.load_model, or use --criterion random")
    with torch.no_grad(), one_thread():
        return fn(coupling, tensors, seed)
