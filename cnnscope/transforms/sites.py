"""Where a rewrite can apply, read from the ONE recorded graph (``Analysis.graph``).

A *site* is a Conv2d module qualified name (plus, for ``stride``, the pooling module it absorbs).
Everything here is structure only: it reads the meta model's modules and the graph's module calls,
never real weights, so ``advise`` can use it on any model.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from torch import nn

#: modules a value may pass through between a conv and the pool that ``stride`` absorbs: per-channel
#: affine (BN) keeps the fold exact; element-wise activations make stride-2 an approximation
AFFINE = (nn.BatchNorm2d,)
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardtanh,
               nn.Sigmoid, nn.Tanh, nn.PReLU, nn.Identity)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class ConvSite:
    name: str
    conv: nn.Conv2d
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    is_stem: bool


@dataclass
class StrideSite:
    conv: ConvSite
    pool: str
    path: list[str]                       # modules between conv and pool (BN/activations)
    stride: tuple[int, int]
    padding: tuple[int, int]
    fold: bool                            # exact conv+avg-pool fold (larger kernel)
    kernel: tuple[int, int]


@dataclass
class Sites:
    found: list = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)     # {"name", "reason"}

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"name": name, "reason": reason})


def matches(name: str, layers: list[str] | tuple[str, ...] | None) -> bool:
    """``name`` or one of its enclosing modules matches a glob of ``layers`` (so ``'*branch5x5_2'``
    selects the conv inside Inception's ``BasicConv2d`` block ``Mixed_5b.branch5x5_2``)."""
    if not layers:
        return True
    parts = name.split(".")
    prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return any(fnmatch.fnmatchcase(p, g) for g in layers for p in prefixes)


def conv_sites(analysis, layers=None) -> list[ConvSite]:
    """Every Conv2d called exactly once, in call order; the first one called is the stem."""
    graph, modules = analysis.graph, dict(analysis.model.named_modules())
    counts: dict[str, int] = {}
    for c in graph.calls:
        counts[c.name] = counts.get(c.name, 0) + 1
    out, first = [], True
    for c in graph.calls:
        m = modules.get(c.name)
        if not isinstance(m, nn.Conv2d) or counts[c.name] != 1 or not c.inputs or not c.outputs:
            continue
        site = ConvSite(c.name, m, graph.values[c.inputs[0]].shape, graph.values[c.outputs[0]].shape, first)
        first = False
        if matches(c.name, layers):
            out.append(site)
    return out


def plain_conv_reason(m: nn.Conv2d) -> str | None:
    """Why a conv cannot be decomposed (None if it can)."""
    if m.groups != 1:
        return f"grouped conv (groups={m.groups})"
    if m.padding_mode != "zeros":
        return f"padding mode {m.padding_mode}"
    if isinstance(m.padding, str):
        return f"padding '{m.padding}'"
    return None


def _out(h: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    from ..analysis.arithmetic import output_size

    return output_size(h, k, s, p, d, ceil).size


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def stride_sites(analysis, layers=None) -> Sites:
    """Convs (stride 1) whose output reaches a stride-2 pool only through BN/activation modules with a
    single consumer. The conv gets the pool's stride and a padding for which its output size equals
    the pooled size at the analysed input size; otherwise the site is skipped with the reason."""
    graph, modules = analysis.graph, dict(analysis.model.named_modules())
    consumers = graph.consumers()
    calls_by_input: dict[tuple[str, int], object] = {}
    for c in graph.calls:
        for v in c.inputs:
            calls_by_input.setdefault((c.name, v), c)
    result = Sites()
    for site in conv_sites(analysis, layers):
        m = site.conv
        v = graph.calls_of(site.name)[0].outputs[0]
        path, pool = [], None
        while True:
            readers = consumers.get(v, [])
            if len(readers) != 1:
                break
            scope = graph.nodes[readers[0]].scope
            call = calls_by_input.get((scope, v))
            mod = modules.get(scope)
            if call is None or mod is None or len(call.outputs) != 1:
                break
            if isinstance(mod, POOLS):
                pool = scope
                break
            if not isinstance(mod, AFFINE + ELEMENTWISE):
                break
            path.append(scope)
            v = call.outputs[0]
        if pool is None:
            continue
        p_mod = modules[pool]
        why = plain_conv_reason(m)
        if len(graph.calls_of(pool)) != 1:
            why = f"pool {pool} is called more than once"

        if _pair(m.stride) != (1, 1):
            why = f"conv stride is {m.stride}, not 1"
        pk, ps, pp = _pair(p_mod.kernel_size), _pair(p_mod.stride or p_mod.kernel_size), _pair(p_mod.padding)
        if why is None and (ps[0] < 2 or ps[1] < 2):
            why = f"pool {pool} does not downsample (stride {ps})"
        if why is None and isinstance(p_mod, nn.MaxPool2d) and _pair(p_mod.dilation) != (1, 1):
            why = f"pool {pool} is dilated"
        if why:
            result.skip(site.name, why)
            continue
        pool_out = graph.values[graph.calls_of(pool)[0].outputs[0]].shape
        fold = (isinstance(p_mod, nn.AvgPool2d) and pk == ps and pp == (0, 0) and pk[0] == pk[1]
                and not p_mod.ceil_mode and all(isinstance(modules[n], AFFINE) for n in path))
        kernel, dil = _pair(m.kernel_size), _pair(m.dilation)
        if fold:
            k = pk[0]
            kernel = (kernel[0] + k - 1, kernel[1] + k - 1)
            if dil != (1, 1):
                fold = False
                kernel = _pair(m.kernel_size)
        h, w = site.input_shape[-2:]
        pads = []
        for dim, size in ((0, h), (1, w)):
            want = pool_out[-2 + dim]
            p0 = _pair(m.padding)[dim]
            cands = sorted(range(0, kernel[dim]), key=lambda p: (abs(p - p0), -p))
            found = next((p for p in cands if _out(size, kernel[dim], ps[dim], p, dil[dim]) == want), None)
            pads.append(found)
        if None in pads:
            result.skip(site.name, f"no padding makes a stride-{ps[0]} conv output {tuple(pool_out[-2:])} "
                                   f"(the size after {pool}) from input {tuple(site.input_shape[-2:])}")
            continue
        result.found.append(StrideSite(site, pool, path, ps, tuple(pads), fold, kernel))
    return result
