"""The documents' three ways to cut computation, as replayable rewrites of a (trained) model.

* ``reduce``    — a 1×1 conv before a K×K conv shrinks its input channels (GoogLeNet).
* ``stride``    — a stride-2 conv replaces conv (stride 1) + pooling: it computes a quarter of its outputs.
* ``factorize`` — ``stack`` (K×K → (K−1)/2 stacked 3×3, optionally with an activation between them),
  ``asym`` (n×n → 1×n then n×1), ``lowrank`` (K×K conv to R channels then 1×1) and ``tucker2``
  (1×1, K×K core, 1×1), initialised by SVD (see :mod:`.decompose`).

Each rewrite is split in three: *plan* (structure only, from the analysis graph of the meta model, so
``advise`` can use it), the registered plan *step* (replays the structure on any model, meta included),
and *init* (fills the new layers from the old weights, only for real models). Step data is plain:
``{"kind": "factorize", "method": "asym", "sites": [{"name", "convs": [{in, out, kernel, stride,
padding, dilation, bias}]}]}`` — a site's module is replaced by an ``nn.Sequential`` of those convs
(with ``"activation": "relu"``, a ReLU between consecutive convs).
``stride`` sites are ``{"name", "pool", "kernel", "stride", "padding"}``: the conv gets the new
geometry and the pool becomes ``nn.Identity``.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CnnscopeError, UnknownNameError
from ..progress import Progress, no_progress
from ..loading.plan import register_plan_step
from . import decompose
from .common import TransformResult
from .methods import conv_spec as _spec
from .methods import factorize_methods, get_method
from .sites import conv_sites, plain_conv_reason, stride_sites

METHODS = factorize_methods()        # the factorize --method choices (see .methods)
#: activations ``stack --activation`` can put between the stacked convs
ACTIVATIONS = {"none": None, "relu": nn.ReLU}
DEFAULT_RATIO = 0.25


# ------------------------------------------------------------------------------------ replay steps
def _get(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name) if name else model


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(_get(model, parent), child, new)


def _conv(spec: dict, device, dtype) -> nn.Conv2d:
    return nn.Conv2d(spec["in"], spec["out"], tuple(spec["kernel"]), stride=tuple(spec["stride"]),
                     padding=tuple(spec["padding"]), dilation=tuple(spec["dilation"]), bias=bool(spec["bias"]),
                     device=device, dtype=dtype)


def _replace_with_convs(model: nn.Module, step: dict) -> nn.Module:
    act = ACTIVATIONS[step.get("activation") or "none"]
    for site in step["sites"]:
        old = _get(model, site["name"])
        w = old.weight
        layers: list[nn.Module] = []
        for j, c in enumerate(site["convs"]):
            if j and act is not None:
                layers.append(act())
            layers.append(_conv(c, w.device, w.dtype))
        _set(model, site["name"], nn.Sequential(*layers))
    return model


@register_plan_step("reduce")
def apply_reduce(model: nn.Module, step: dict) -> nn.Module:
    return _replace_with_convs(model, step)


@register_plan_step("factorize")
def apply_factorize(model: nn.Module, step: dict) -> nn.Module:
    return _replace_with_convs(model, step)


@register_plan_step("stride")
def apply_stride(model: nn.Module, step: dict) -> nn.Module:
    for site in step["sites"]:
        old = _get(model, site["name"])
        spec = {"in": old.in_channels, "out": old.out_channels, "kernel": site["kernel"], "stride": site["stride"],
                "padding": site["padding"], "dilation": list(old.dilation), "bias": old.bias is not None}
        _set(model, site["name"], _conv(spec, old.weight.device, old.weight.dtype))
        _set(model, site["pool"], nn.Identity())
    return model


# ------------------------------------------------------------------------------------ rank choice
@dataclass
class RankSpec:
    """How many intermediate channels: exactly one of rank (int or "full"), ratio, energy."""

    rank: int | str | None = None
    ratio: float | None = None
    energy: float | None = None

    @classmethod
    def parse(cls, rank=None, ratio=None, energy=None) -> "RankSpec":
        from ..units import parse_fraction

        given = [n for n, v in (("--rank", rank), ("--ratio", ratio), ("--energy", energy)) if v is not None]
        if len(given) > 1:
            raise CnnscopeError(f"{' and '.join(given)} are exclusive: give one way to choose the rank")
        spec = cls()
        if rank is not None:
            if str(rank).lower() == "full":
                spec.rank = "full"
            else:
                try:
                    spec.rank = int(rank)
                except ValueError:
                    raise CnnscopeError(f"malformed --rank '{rank}': expected a positive integer or 'full'") from None
                if spec.rank < 1:
                    raise CnnscopeError(f"--rank must be at least 1, got {rank}")
        elif energy is not None:
            spec.energy = parse_fraction(energy, "--energy")
            if not 0 < spec.energy <= 1:
                raise CnnscopeError(f"--energy must be in (0, 1], got {energy}")
        else:
            spec.ratio = DEFAULT_RATIO if ratio is None else parse_fraction(ratio, "--ratio")
            if not 0 < spec.ratio <= 1:
                raise CnnscopeError(f"--ratio must be in (0, 1], got {ratio}")
        return spec

    @property
    def forced(self) -> bool:
        return self.rank == "full"


def _conv_macs(spec: dict, out_hw: tuple[int, int]) -> int:
    """MACs of one conv of a replacement at its output size (for the skip-if-no-saving rule)."""
    return spec["in"] * spec["out"] * spec["kernel"][0] * spec["kernel"][1] * out_hw[0] * out_hw[1]


def _hw(h: int, w: int, spec: dict) -> tuple[int, int]:
    from ..analysis.arithmetic import output_size

    return tuple(output_size(s, k, st, p, d, False).size
                 for s, k, st, p, d in zip((h, w), spec["kernel"], spec["stride"], spec["padding"], spec["dilation"]))


def _convs_macs(convs: list[dict], h: int, w: int) -> int:
    total = 0
    for c in convs:
        h, w = _hw(h, w, c)
        total += _conv_macs(c, (h, w))
    return total


# ------------------------------------------------------------------------------------ planning
def _why_not(method: str, m: nn.Conv2d) -> str | None:
    return plain_conv_reason(m) or get_method(method).why_not(m)


def check_activation(method: str, activation: str | None) -> None:
    """``--activation`` must be a known one, and only ``stack`` takes one."""
    if activation is not None and activation not in ACTIVATIONS:
        raise UnknownNameError("activation", activation, tuple(ACTIVATIONS))
    if activation not in (None, "none") and not get_method(method).takes_activation:
        raise CnnscopeError(f"--activation applies to --method stack only (got --method {method}): an activation "
                            f"inside an SVD factorization would break its exactness")


def plan_decomposition(kind: str, method: str, analysis, real: nn.Module | None, ranks: RankSpec | None,
                       layers=None, include_stem: bool = False,
                       activation: str | None = None) -> tuple[dict, list[dict]]:
    """(plan step, skipped sites) for ``reduce`` (method "reduce") or ``factorize`` (stack/asym/lowrank/
    tucker2). ``activation`` ("relu"; only with ``stack``) goes between the stacked convs.

    Sites that would not save MACs are skipped unless ``--rank full`` forces the exact decomposition.
    ``real`` (the model with weights) is needed only for ``--energy``.
    """
    meth = get_method(method)
    check_activation(method, activation)
    step = {"kind": kind, "method": method, "sites": []}
    if activation not in (None, "none"):
        step["activation"] = activation
    skipped = []
    real_modules = dict(real.named_modules()) if real is not None else {}
    for site in conv_sites(analysis, layers):
        m = site.conv
        if site.is_stem and kind in ("factorize", "reduce") and not include_stem:
            skipped.append({"name": site.name, "reason": "stem conv (the documents advise compressing in the middle "
                                                         "of the network; --include-stem overrides)"})
            continue
        why = _why_not(method, m)
        if why:
            skipped.append({"name": site.name, "reason": why})
            continue
        rank = None
        if meth.takes_rank:
            w = real_modules[site.name].weight if site.name in real_modules else m.weight
            rank = meth.choose_rank(ranks, site.name, w, meth.full_rank(m))
        convs = meth.convs(m, rank)
        h, w_ = site.input_shape[-2:]
        before = _conv_macs(_spec(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                                  False), tuple(site.output_shape[-2:]))
        after = _convs_macs(convs, h, w_)
        if after >= before and not (ranks is not None and ranks.forced):
            skipped.append({"name": site.name, "reason": f"would not save MACs (rank {rank}: {after:,} ≥ {before:,})"
                            if rank is not None else f"would not save MACs ({after:,} ≥ {before:,})"})
            continue
        entry = {"name": site.name, "convs": convs}
        if rank is not None:
            entry["rank"] = [int(r) for r in rank] if isinstance(rank, tuple) else int(rank)
        step["sites"].append(entry)
    return step, skipped


def plan_stride(analysis, layers=None) -> tuple[dict, list[dict]]:
    sites = stride_sites(analysis, layers)
    step = {"kind": "stride", "sites": [
        {"name": s.conv.name, "pool": s.pool, "kernel": list(s.kernel), "stride": list(s.stride),
         "padding": list(s.padding), "fold": bool(s.fold), "through": list(s.path)} for s in sites.found]}
    return step, sites.skipped


# ------------------------------------------------------------------------------------ weight init
def _init_decomposed(method: str, old: nn.Conv2d, new: nn.Sequential, site: dict) -> None:
    with torch.no_grad():
        ws = get_method(method).weights(old.weight.detach().cpu(), site)
        for conv, wt in zip([m for m in new if isinstance(m, nn.Conv2d)], ws):
            conv.weight.copy_(wt)
            if conv.bias is not None:
                conv.bias.zero_()
        if old.bias is not None:
            new[-1].bias.copy_(old.bias)              # the last layer of a replacement is always a conv


def _init_stride(old: nn.Conv2d, new: nn.Conv2d, pool: nn.Module, site: dict) -> None:
    with torch.no_grad():
        w = old.weight.detach()
        if site["fold"]:
            k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
            w = decompose.fold_avg_pool(w, (k, k))
        new.weight.copy_(w)
        if old.bias is not None:
            new.bias.copy_(old.bias)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / a.double().norm().clamp_min(1e-30))


# ------------------------------------------------------------------------------------ the rewrites
def rewrite(model: nn.Module, kind: str, *, method: str | None = None, ranks: RankSpec | None = None,
            layers=None, include_stem: bool = False, activation: str | None = None, analysis=None,
            input_size=None, inplace: bool = False, seed: int = 0, inputs: torch.Tensor | None = None,
            progress: Progress = no_progress) -> TransformResult:
    """Apply one rewrite to a real model; returns the new model, its plan step and per-site details
    (params/MACs are left to the summaries; ``details["sites"][i]["rel_error"]`` is the relative output
    error of that layer, ``details["output_error"]`` that of the whole model).

    Errors are measured on ``inputs`` (a batch of real images, e.g. from ``--data``): each layer on
    the activations that reach it; without ``inputs``, on random normal inputs of each layer's input
    shape (seeded by ``seed``), which measures how well the new layers reproduce the old ones on any
    input, not on the data's distribution. ``progress`` sees the sites as they are initialised and
    measured (see :mod:`cnnscope.progress`).

    >>> r = rewrite(cnnscope.load_model("vgg16"), "stride")
    >>> r = rewrite(model, "factorize", method="asym", ranks=RankSpec.parse(rank="full"))
    """
    from ..analysis.engine import analyze

    if kind not in ("reduce", "stride", "factorize"):
        raise UnknownNameError("rewrite", kind, ("reduce", "stride", "factorize"))
    if analysis is None:
        analysis = analyze(model, input_size=input_size)
    if kind == "stride":
        step, skipped = plan_stride(analysis, layers)
    else:
        method = "reduce" if kind == "reduce" else (method or "asym")
        step, skipped = plan_decomposition(kind, method, analysis, model, ranks or RankSpec.parse(), layers,
                                           include_stem, activation)
    if not step["sites"]:
        where = f" matching --layers {' '.join(layers)}" if layers else ""
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:3])
        raise CnnscopeError(f"no site{where} where {kind}{' --method ' + method if kind == 'factorize' else ''} "
                            f"applies in {analysis.name}" + (f" ({reasons}{'; …' if len(skipped) > 3 else ''})"
                                                             if reasons else ""))
    out = model if inplace else copy.deepcopy(model)
    out.eval()
    graph = analysis.graph
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*analysis.input_shape, generator=gen) if inputs is None else inputs
    olds = {s["name"]: _get(out, s["name"]) for s in step["sites"]}
    capture = _capture_inputs(olds) if inputs is not None else contextlib.nullcontext({})
    with torch.no_grad(), capture as seen:
        ref = out(x)
    pools = {s["name"]: _get(out, s["pool"]) for s in step["sites"]} if kind == "stride" else {}
    chains = {s["name"]: [_get(out, n) for n in s["through"]] for s in step["sites"]} if kind == "stride" else {}
    {"stride": apply_stride}.get(kind, _replace_with_convs)(out, step)
    details: dict[str, Any] = {"kind": kind, "method": step.get("method"), "sites": [], "skipped": skipped}
    with progress(step["sites"], f"{kind}: {len(step['sites'])} layers") as sites:
        for s in sites:
            _init_and_measure(kind, step, s, olds[s["name"]], _get(out, s["name"]), pools, chains, graph, gen,
                              inputs, seen, details)
    with torch.no_grad():
        got = out(x)
    if isinstance(ref, torch.Tensor) and isinstance(got, torch.Tensor) and ref.shape == got.shape:
        details["output_error"] = _rel_err(ref, got)
    _update_source(out, step)
    notes = []
    if kind == "stride" and any(not s["fold"] for s in step["sites"]):
        notes.append("stride 2 in place of pooling changes what the network computes (the conv now samples every "
                     "other position before the non-linearity): fine-tune to recover accuracy")
    if kind == "factorize" and not get_method(step["method"]).takes_rank:
        notes.append("stack initialisation is approximate (alternating least squares fit of the 3×3 kernels to the "
                     "original kernel; the borders differ too): fine-tune")
        if step.get("activation"):
            notes.append(f"--activation {step['activation']}: the kernels are fitted as if the stack were linear, so "
                         f"the {step['activation']} between them moves the output further from the original: "
                         f"fine-tune (it adds the non-linearity the documents credit the 3×3 stacks with)")
    return TransformResult(out, [step], notes, details)


def _init_and_measure(kind, step, s, old, new, pools, chains, graph, gen, inputs, seen, details) -> None:
    """Give site ``s``'s new layers their weights, then measure them against the old on its inputs."""
    if kind == "stride":
        _init_stride(old, new, pools[s["name"]], s)
    else:
        _init_decomposed(step["method"], old, new, s)
    if inputs is None:
        xin = torch.randn(*graph.values[graph.calls_of(s["name"])[0].inputs[0]].shape, generator=gen)
    else:
        xin = seen[s["name"]]
    with torch.no_grad():
        if kind == "stride":
            a, b = old(xin), new(xin)
            for mod in chains[s["name"]]:
                a, b = mod(a), mod(b)
            a = pools[s["name"]](a)
        else:
            a, b = old(xin), new(xin)
    row = {k: v for k, v in s.items() if k not in ("convs",)}
    if "convs" in s:
        row["kernels"] = ["×".join(map(str, c["kernel"])) for c in s["convs"]]
        row["channels"] = [s["convs"][0]["in"]] + [c["out"] for c in s["convs"]]
    row["rel_error"] = _rel_err(a, b) if a.shape == b.shape else None
    details["sites"].append(row)


@contextlib.contextmanager
def _capture_inputs(modules: dict[str, nn.Module]):
    """Within the block, ``seen[name]`` is the input of the first call of each module."""
    seen: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(mod, args):
            seen.setdefault(name, args[0].detach())
        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in modules.items()]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _update_source(model: nn.Module, step: dict) -> None:
    from ..loading.artifact import SOURCE_ATTR
    from ..loading.source import ModelSource

    src = getattr(model, SOURCE_ATTR, None)
    if src is not None:
        object.__setattr__(model, SOURCE_ATTR, ModelSource(base=dict(src.base), plan=list(src.plan) + [step],
                                                           display_name=src.display_name))


def apply_to_meta(meta_model: nn.Module, step: dict) -> nn.Module:
    """Structure only (for ``advise``): replay ``step`` on a copy of a meta model."""
    from ..loading.plan import replay

    return replay(copy.deepcopy(meta_model), [step])
