"""The decomposition methods of ``reduce`` and ``factorize``, one registered class each.

A method says which convs it applies to (:meth:`why_not`), the rank at which it is exact
(:meth:`full_rank`), how a :class:`~cnnscope.transforms.rewrites.RankSpec` picks its rank
(:meth:`choose_rank`), the convs that replace a layer (:meth:`convs`, plain data for the plan step)
and their weights from the old kernel (:meth:`weights`, the linear algebra of :mod:`.decompose`).
Adding a factorization is one class here::

    @register_method
    class MyMethod(Method):
        name = "mine"
        help = "K×K → …"
        def convs(self, m, rank): ...
        def weights(self, w, site): ...
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import CnnscopeError, UnknownNameError
from . import decompose

#: method name -> the method (``reduce`` is the ``reduce`` command's; the rest are ``factorize --method``)
METHOD_REGISTRY: dict[str, "Method"] = {}


def register_method(cls: type["Method"]) -> type["Method"]:
    if cls.name in METHOD_REGISTRY:
        raise ValueError(f"decomposition method {cls.name!r} registered twice")
    METHOD_REGISTRY[cls.name] = cls()
    return cls


def get_method(name: str) -> "Method":
    try:
        return METHOD_REGISTRY[name]
    except KeyError:
        raise UnknownNameError("method", name, factorize_methods()) from None


def factorize_methods() -> tuple[str, ...]:
    """The ``factorize --method`` choices, in registration order."""
    return tuple(n for n, m in METHOD_REGISTRY.items() if m.command == "factorize")


def conv_spec(cin, cout, kernel, stride, padding, dilation, bias) -> dict:
    """One conv of a replacement, as the plan step stores it."""
    return {"in": int(cin), "out": int(cout), "kernel": [int(k) for k in kernel], "stride": [int(s) for s in stride],
            "padding": [int(p) for p in padding], "dilation": [int(d) for d in dilation], "bias": bool(bias)}


#: kernel, stride, padding and dilation of a 1×1 conv
ONE_BY_ONE = ((1, 1), (1, 1), (0, 0), (1, 1))


def geometry(m: nn.Conv2d) -> tuple:
    """``m``'s kernel, stride, padding and dilation: the K×K conv a replacement keeps."""
    return m.kernel_size, m.stride, m.padding, m.dilation


def _energy_rank(spec, w: torch.Tensor, spectra):
    """The rank(s) keeping ``spec.energy`` of the energy: ``spectra(w)`` gives one σ (an int back) or a
    tuple of them (a tuple of ranks back, Tucker-2's two sides)."""
    if w.device.type == "meta":
        raise CnnscopeError("--energy needs a model with weights")
    sigma = spectra(w)
    if isinstance(sigma, tuple):
        return tuple(decompose.rank_for_energy(s, spec.energy) for s in sigma)
    return decompose.rank_for_energy(sigma, spec.energy)


class Method:
    """A way to write one K×K conv as a few smaller ones; subclasses fill in the geometry and weights."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    command: ClassVar[str] = "factorize"
    #: whether --rank/--ratio/--energy apply (stack's widths are fixed by the kernel)
    takes_rank: ClassVar[bool] = True
    #: whether --activation may go between the new convs (only where exactness is not promised)
    takes_activation: ClassVar[bool] = False

    def why_not(self, m: nn.Conv2d) -> str | None:
        """Why this method does not apply to ``m`` (plain-conv checks are the caller's), or None."""
        return None

    def full_rank(self, m: nn.Conv2d) -> Any:
        """The rank at which the factorization is exact."""
        o, i, (kh, kw) = m.out_channels, m.in_channels, m.kernel_size
        return decompose.full_rank(self.name, o, i, kh, kw)

    def singular_values(self, w: torch.Tensor):
        return decompose.singular_values(self.name, w)

    def choose_rank(self, spec, name: str, w: torch.Tensor, full):
        """The rank ``spec`` (a RankSpec) picks at layer ``name`` against ``full``."""
        if spec.rank == "full":
            return full
        if isinstance(spec.rank, int):
            if spec.rank > full:
                raise CnnscopeError(f"--rank {spec.rank} is above the full rank {full} of {name} ({self.name}); "
                                    f"use --rank full, a smaller rank, or --layers to leave {name} out")
            return spec.rank
        if spec.energy is not None:
            return _energy_rank(spec, w, self.singular_values)
        return max(1, min(full, math.ceil(spec.ratio * full - 1e-9)))

    def convs(self, m: nn.Conv2d, rank) -> list[dict]:
        raise NotImplementedError

    def weights(self, w: torch.Tensor, site: dict) -> list[torch.Tensor]:
        """The new convs' weights, in the order they are applied, from the old kernel ``w``."""
        rank = tuple(site["rank"]) if isinstance(site.get("rank"), list) else site.get("rank")
        return decompose.FACTORS[self.name](w, rank).weights


@register_method
class Reduce(Method):
    name = "reduce"
    help = "1×1 (C_in → R) then K×K (R → C_out): GoogLeNet's channel reduction"
    command = "reduce"

    def why_not(self, m):
        kh, kw = m.kernel_size
        return f"{kh}×{kw} kernel: reduce applies before K×K convs with K ≥ 3" if min(kh, kw) < 3 else None

    def convs(self, m, rank):
        return [conv_spec(m.in_channels, rank, *ONE_BY_ONE, False),
                conv_spec(rank, m.out_channels, *geometry(m), m.bias is not None)]


@register_method
class Stack(Method):
    name = "stack"
    help = "K×K → (K−1)/2 stacked 3×3 (VGG), fitted by alternating least squares"
    takes_rank = False
    takes_activation = True

    def why_not(self, m):
        kh, kw = m.kernel_size
        if kh != kw or kh < 5 or kh % 2 == 0:
            return f"{kh}×{kw} kernel: stack applies to odd square kernels of 5×5 and larger"
        if m.dilation != (1, 1):
            return "dilated conv"
        if m.padding[0] != m.padding[1] or m.stride[0] != m.stride[1]:
            return "non-square stride/padding"
        return None

    def full_rank(self, m):
        return None

    def choose_rank(self, spec, name, w, full):
        return None

    def convs(self, m, rank=None):
        n = (m.kernel_size[0] - 1) // 2
        c = min(m.in_channels, m.out_channels)
        widths = [m.in_channels] + [c] * (n - 1) + [m.out_channels]
        p = m.padding[0]
        pads = [p // n + (1 if j < p % n else 0) for j in range(n)]
        s = m.stride[0]
        return [conv_spec(widths[j], widths[j + 1], (3, 3), (s, s) if j == n - 1 else (1, 1), (pads[j], pads[j]),
                          (1, 1), m.bias is not None and j == n - 1) for j in range(n)]

    def weights(self, w, site):
        return decompose.stack_factors(w, site["convs"][0]["out"])[0].weights


@register_method
class Asym(Method):
    name = "asym"
    help = "n×n → 1×n then n×1 sharing R channels (Jaderberg et al. 2014)"

    def why_not(self, m):
        kh, kw = m.kernel_size
        return f"{kh}×{kw} kernel is already one-dimensional" if kh < 2 or kw < 2 else None

    def convs(self, m, rank):
        (kh, kw), s, p, d, b = m.kernel_size, m.stride, m.padding, m.dilation, m.bias is not None
        return [conv_spec(m.in_channels, rank, (1, kw), (1, s[1]), (0, p[1]), (1, d[1]), False),
                conv_spec(rank, m.out_channels, (kh, 1), (s[0], 1), (p[0], 0), (d[0], 1), b)]


@register_method
class LowRank(Method):
    name = "lowrank"
    help = "K×K (C_in → R) then 1×1 (R → C_out): a truncated SVD of the output side"

    def convs(self, m, rank):
        return [conv_spec(m.in_channels, rank, *geometry(m), False),
                conv_spec(rank, m.out_channels, *ONE_BY_ONE, m.bias is not None)]


@register_method
class Tucker2(Method):
    name = "tucker2"
    help = "1×1 (C_in → R_in), K×K core, 1×1 (R_out → C_out) (Kim et al. 2016)"

    def why_not(self, m):
        kh, kw = m.kernel_size
        return "1×1 kernel: tucker2 keeps the kernel, use lowrank for 1×1 convs" if kh == kw == 1 else None

    def full_rank(self, m):
        return (m.in_channels, m.out_channels)

    def choose_rank(self, spec, name, w, full):
        """A pair (R_in, R_out), each side chosen the way a single rank is against its own full rank."""
        if isinstance(spec.rank, int) and spec.rank > max(full):
            raise CnnscopeError(f"--rank {spec.rank} is above the full ranks {full} of {name} (tucker2); use "
                                f"--rank full, a smaller rank, or --layers to leave {name} out")
        if isinstance(spec.rank, int):
            return tuple(min(spec.rank, f) for f in full)
        if spec.energy is not None:
            return _energy_rank(spec, w, decompose.tucker2_singular_values)
        if spec.rank == "full":
            return full
        lowrank = METHOD_REGISTRY["lowrank"]
        return tuple(Method.choose_rank(lowrank, spec, name, w, f) for f in full)

    def convs(self, m, rank):
        r_in, r_out = rank
        return [conv_spec(m.in_channels, r_in, *ONE_BY_ONE, False),
                conv_spec(r_in, r_out, *geometry(m), False),
                conv_spec(r_out, m.out_channels, *ONE_BY_ONE, m.bias is not None)]
