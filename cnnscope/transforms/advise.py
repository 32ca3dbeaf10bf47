"""`advise`: where each compression method would save the most in this model.

Nothing is estimated by a rule of thumb: every method's rewrite is planned on the meta model, replayed
on a copy of it, and the result is analysed again; per-site savings are read from the two summaries'
layer rows (a rewritten conv's row before vs. the sum of its replacement's rows after). Pruning uses
:func:`cnnscope.transforms.prune.prune_channels` (random criterion on meta: structure only), and the
FC → global-pooling rewrite replaces a classifier head that holds a large share of the parameters
(VGG: ~90 %) by global average pooling + one Linear, as the documents discuss for VGG.
"""
from __future__ import annotations

import copy
from typing import Any

from torch import nn

SCHEMA = "cnnscope.advise/1"

#: (label, rewrite kind, method, rank ratio): the rewrites advise tries, with their default settings
REWRITES = (
    ("stride", "stride", None, None),
    ("reduce (rank 0.25)", "reduce", "reduce", 0.25),
    ("factorize asym (rank 0.25)", "factorize", "asym", 0.25),
    ("factorize lowrank (rank 0.25)", "factorize", "lowrank", 0.25),
    ("factorize tucker2 (rank 0.25)", "factorize", "tucker2", 0.25),
    ("factorize stack", "factorize", "stack", None),
)
PRUNE_RATIO = 0.5
HEAD_SHARE = 0.1      # suggest FC → global pooling when the Linear head holds ≥ 10 % of the params


def _rows(summary) -> dict[str, dict]:
    return {r["name"]: r for r in summary.to_dict()["layers"]}


def _site_cost(rows: dict[str, dict], name: str) -> tuple[int, int]:
    """(params, MACs) of ``name`` including any replacement sub-layers (leaf rows only)."""
    subs = [r for n, r in rows.items() if n.startswith(name + ".")]
    if subs:
        leaves = [r for r in subs if not any(o.startswith(r["name"] + ".") for o in rows)]
        return sum(r["params"] or 0 for r in leaves), sum(r["macs"] or 0 for r in leaves)
    r = rows.get(name)
    return (r["params"] or 0, r["macs"] or 0) if r else (0, 0)


def _rewrite_opportunities(analysis, before, label, kind, method, ratio, layers) -> tuple[dict | None, list[dict]]:
    from ..errors import CnnscopeError
    from .methods import get_method
    from .rewrites import RankSpec, apply_to_meta, plan_decomposition, plan_stride
    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary

    try:
        if kind == "stride":
            step, _ = plan_stride(analysis, layers)
        else:
            ranks = RankSpec.parse(ratio=str(ratio)) if get_method(method).takes_rank else None
            step, _ = plan_decomposition(kind, method, analysis, None, ranks, layers)
    except CnnscopeError:
        return None, []
    if not step["sites"]:
        return None, []
    after = build_summary(analyze(apply_to_meta(analysis.model, step), input_size=analysis.input_shape[1:],
                                  batch_size=analysis.input_shape[0]))
    rb, ra = _rows(before), _rows(after)
    sites = []
    for s in step["sites"]:
        p0, m0 = _site_cost(rb, s["name"])
        p1, m1 = _site_cost(ra, s["name"])
        if kind == "stride":
            extra = _site_cost(rb, s["pool"])
            p0, m0 = p0 + extra[0], m0 + extra[1]
        sites.append({"method": label, "site": s["name"], "macs_saved": m0 - m1, "params_saved": p0 - p1,
                      "rf": [rb.get(s["name"], {}).get("receptive_field"), ra.get(s["name"], {}).get("receptive_field")]})
    return _whole(label, before, after), sites


def _whole(label: str, before, after) -> dict:
    tb, ta = before.totals, after.totals
    return {"method": label, "macs": [tb.macs, ta.macs], "params": [tb.params, ta.params],
            "receptive_field": [tb.receptive_field, ta.receptive_field]}


def _prune(analysis, before, layers=None) -> dict | None:
    """Channel pruning at :data:`PRUNE_RATIO`; with ``layers``, every layer with parameters outside the
    globs is ignored (kept whole), so only the matching layers' channels are pruned."""
    from ..errors import CnnscopeError
    from .prune import prune_channels
    from .sites import matches
    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary

    ignore = [n for n, m in analysis.model.named_modules()
              if n and any(True for _ in m.parameters(recurse=False)) and not matches(n, layers)] if layers else []
    try:
        r = prune_channels(analysis.model, ratio=PRUNE_RATIO, criterion="random", analysis=analysis, ignore=ignore)
    except (CnnscopeError, RuntimeError, NotImplementedError):
        return None
    after = build_summary(analyze(r.model, input_size=analysis.input_shape[1:], batch_size=analysis.input_shape[0]))
    return _whole(f"prune (ratio {PRUNE_RATIO}{', ' + ' '.join(layers) if layers else ''})", before, after)


def _fc_head(analysis) -> tuple[str, str, int, int] | None:
    """(pool name, head name, channels, outputs) for a classifier whose Linear head follows an adaptive
    average pool (VGG, AlexNet), else None."""
    model = analysis.model
    modules = dict(model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    pools = [n for n, m in modules.items() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not linears or len(pools) != 1:
        return None
    head = linears[0].rpartition(".")[0] if len(linears) > 1 else linears[0]
    if not head or not all(n == head or n.startswith(head + ".") for n in linears):
        return None
    calls = analysis.graph.calls_of(pools[0])
    if len(calls) != 1:
        return None
    channels = analysis.graph.values[calls[0].inputs[0]].shape[1]
    out = analysis.graph.values[analysis.graph.outputs[0]].shape
    if len(out) != 2:
        return None
    return pools[0], head, int(channels), int(out[-1])


def _fc_to_gap(analysis, before, layers=None) -> dict | None:
    from .sites import matches
    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary

    found = _fc_head(analysis)
    if not found:
        return None
    pool, head, channels, n_out = found
    if layers and not (matches(head, layers) or matches(pool, layers)):
        return None
    if _is_global(analysis.model.get_submodule(pool)):
        return None                        # already global pooling (ResNet, pruned or not): nothing to replace
    head_params = _rows(before)[head]["params"] or 0
    if head_params < HEAD_SHARE * before.totals.params:
        return None
    model = copy.deepcopy(analysis.model)
    _set(model, pool, nn.AdaptiveAvgPool2d(1))
    _set(model, head, nn.Linear(channels, n_out, device="meta"))
    try:
        after = build_summary(analyze(model, input_size=analysis.input_shape[1:], batch_size=analysis.input_shape[0]))
    except Exception:   # a forward that does not flatten before the head: not this rewrite's shape
        return None
    row = _whole("FC → global pooling", before, after)
    row["site"] = f"{pool} + {head}"
    row["note"] = (f"{head} holds {head_params / before.totals.params:.0%} of the params; global average pooling "
                   f"+ Linear({channels}, {n_out}) replaces it (needs retraining of the head)")
    return row


def _is_global(pool: nn.Module) -> bool:
    size = pool.output_size
    return all(s == 1 for s in (size if isinstance(size, (tuple, list)) else (size,)))


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def advise(model_or_spec, input_size=None, weights: str | None = None, batch_size: int = 1, layers=None,
           top: int | None = None) -> dict[str, Any]:
    """``{"schema", "model", "input_shape", "totals", "methods": [whole-model before/after per method],
    "sites": [per-site savings, largest MAC saving first]}``. Runs on the meta model only."""
    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary

    analysis = analyze(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size)
    before = build_summary(analysis)
    methods, sites = [], []
    for label, kind, method, ratio in REWRITES:
        whole, per_site = _rewrite_opportunities(analysis, before, label, kind, method, ratio, layers)
        if whole:
            methods.append(whole)
            sites.extend(per_site)
    for extra in (_prune(analysis, before, layers), _fc_to_gap(analysis, before, layers)):
        if extra and (extra["macs"][1] < extra["macs"][0] or extra["params"][1] < extra["params"][0]):
            methods.append(extra)          # a method that saves nothing is not advice
    sites.sort(key=lambda s: (-s["macs_saved"], -s["params_saved"]))
    methods.sort(key=lambda m: m["macs"][1])
    return {"schema": SCHEMA, "model": analysis.name, "input_shape": list(analysis.input_shape),
            "totals": {"params": before.totals.params, "macs": before.totals.macs,
                       "receptive_field": before.totals.receptive_field},
            "methods": methods, "sites": sites[:top] if top else sites}
