"""*Rewrite*: structured (channel) pruning into a genuinely smaller dense model.

Pipeline, the Torch-Pruning way but read from cnnscope's one recorded graph:

1. *find* — :func:`~cnnscope.transforms.coupling.find_coupling`: channel classes and groups;
2. *score* — :func:`~cnnscope.transforms.importance.score`: importance per class;
3. *select* — :func:`select_removed`: the classes to remove (``--ratio`` per group or globally, or
   the smallest ratio that meets ``--target-macs`` / ``--target-params``);
4. *rewrite* — :func:`apply_prune_step`: slice every coupled parameter/buffer dimension and update
   the module attributes (``in_channels``, ``groups``, ...), so the result is an ordinary dense
   model that runs faster everywhere, with no masks or hooks.

The rewrite is recorded as a plan step (plain lists of kept indices) and replays on the base model,
real or meta, so artifacts reload with ``torch.load(weights_only=True)``::

    {"kind": "prune", "version": 1,
     "keep": [[0, 2, 3, ...], ...],                   # distinct kept-index lists
     "tensors": [["layer1.0.conv1.weight", 0, 64, 3], ...],   # name, dim, size before, keep id
     "modules": [["layer1.0.conv1", {"out_channels": 32}], ...]}
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..errors import CnnscopeError
from ..graph.dataflow import Graph
from ..loading.plan import register_plan_step
from .common import TransformResult
from .coupling import Coupling, find_coupling, one_thread

SCOPES = ("layer", "global")
STEP_VERSION = 1


# ------------------------------------------------------------------------- module attributes
ModulePruner = Callable[[nn.Module, dict[str, tuple[int, ...]]], dict[str, Any]]
MODULE_PRUNERS: dict[type, ModulePruner] = {}


def register_module_pruner(*types: type) -> Callable[[ModulePruner], ModulePruner]:
    """Register how a module type's attributes follow its sliced tensors (``new_shapes`` by
    tensor attribute name, e.g. ``{"weight": (32, 64, 3, 3)}``)."""
    def deco(fn: ModulePruner) -> ModulePruner:
        for t in types:
            MODULE_PRUNERS[t] = fn
        return fn

    return deco


def _shape(m: nn.Module, shapes: dict[str, tuple[int, ...]], name: str) -> tuple[int, ...] | None:
    if name in shapes:
        return shapes[name]
    t = getattr(m, name, None)
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


@register_module_pruner(nn.modules.conv._ConvNd)
def conv_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Depthwise-like convs (one input channel per group) lose whole groups; other grouped convs
    keep their number of groups and lose the same positions in each."""
    w = _shape(m, shapes, "weight")
    if m.transposed:
        depthwise = m.groups > 1 and m.in_channels // m.groups == 1
        groups = w[0] if depthwise else m.groups
        return {"in_channels": w[0], "out_channels": w[1] * groups, "groups": groups}
    depthwise = m.groups > 1 and m.weight.shape[1] == 1
    groups = w[0] // (m.out_channels // m.groups) if depthwise else m.groups
    return {"in_channels": w[1] * groups, "out_channels": w[0], "groups": groups}


@register_module_pruner(nn.Linear)
def linear_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    w = _shape(m, shapes, "weight")
    return {"in_features": w[1], "out_features": w[0]}


@register_module_pruner(nn.modules.batchnorm._NormBase)
def batchnorm_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    for name in ("weight", "running_mean", "bias", "running_var"):
        s = _shape(m, shapes, name)
        if s is not None:
            return {"num_features": s[0]}
    return {}


@register_module_pruner(nn.LayerNorm)
def layernorm_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    s = _shape(m, shapes, "weight") or _shape(m, shapes, "bias")
    return {"normalized_shape": list(s)} if s is not None else {}


@register_module_pruner(nn.GroupNorm)
def groupnorm_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    s = _shape(m, shapes, "weight") or _shape(m, shapes, "bias")
    return {"num_channels": s[0]} if s is not None else {}


@register_module_pruner(nn.PReLU)
def prelu_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return {"num_parameters": _shape(m, shapes, "weight")[0]}


def module_attrs(m: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    for cls in type(m).__mro__:
        fn = MODULE_PRUNERS.get(cls)
        if fn is not None:
            return fn(m, shapes)
    return {}   # raw parameters (ConvNeXt's layer_scale, ...): slicing the tensor is all there is


# ---------------------------------------------------------------------------- the plan step
def _tensor_owners(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[int, list[tuple[nn.Module, str, bool]]]]:
    """name -> tensor, and id(tensor) -> every (module, attribute, is_parameter) holding it."""
    by_name: dict[str, torch.Tensor] = {}
    owners: dict[int, list[tuple[nn.Module, str, bool]]] = {}
    for mname, mod in model.named_modules(remove_duplicate=False):
        prefix = f"{mname}." if mname else ""
        for kind, table in ((True, mod._parameters), (False, mod._buffers)):
            for attr, t in table.items():
                if t is None:
                    continue
                by_name.setdefault(prefix + attr, t)
                entry = (mod, attr, kind)
                lst = owners.setdefault(id(t), [])
                if not any(o[0] is mod and o[1] == attr for o in lst):
                    lst.append(entry)
    return by_name, owners


def _take(t: torch.Tensor, dim: int, keep: list[int]) -> torch.Tensor:
    if t.device.type == "meta":
        shape = list(t.shape)
        shape[dim] = len(keep)
        return torch.empty(shape, dtype=t.dtype, device="meta")
    return t.index_select(dim, torch.as_tensor(keep, dtype=torch.long, device=t.device))


@register_plan_step("prune")
def apply_prune_step(model: nn.Module, step: dict) -> nn.Module:
    """Slice the recorded dims of the named tensors and set the recorded module attributes (in
    place; returns ``model``). Deterministic, and works on meta and real models alike."""
    if step.get("version") != STEP_VERSION:
        raise CnnscopeError(f"prune plan step version {step.get('version')} is not supported by this cnnscope "
                            f"(expected {STEP_VERSION}); upgrade cnnscope")
    keep_lists = step["keep"]
    by_name, owners = _tensor_owners(model)
    per_tensor: dict[str, list[tuple[int, int, int]]] = {}
    for name, dim, size, kid in step["tensors"]:
        per_tensor.setdefault(name, []).append((int(dim), int(size), int(kid)))
    with torch.no_grad():
        for name, cuts in per_tensor.items():
            t = by_name.get(name)
            if t is None:
                raise CnnscopeError(f"prune plan step names tensor '{name}', which the base model does not have; "
                                    f"the artifact does not belong to this architecture")
            new = t
            for dim, size, kid in cuts:
                if dim >= new.dim() or new.shape[dim] != size:
                    raise CnnscopeError(f"prune plan step expects {name} dim {dim} of size {size}, the base model "
                                        f"has {tuple(t.shape)}; the artifact does not belong to this architecture")
                new = _take(new, dim, keep_lists[kid])
            for mod, attr, is_param in owners[id(t)]:
                if is_param:
                    mod._parameters[attr] = nn.Parameter(new, requires_grad=t.requires_grad)
                else:
                    mod._buffers[attr] = new
    for mname, attrs in step["modules"]:
        mod = model.get_submodule(mname)
        for attr, value in attrs.items():
            current = getattr(mod, attr, None)
            setattr(mod, attr, tuple(value) if isinstance(current, tuple) else value)
    return model


def build_step(coupling: Coupling, removed: torch.Tensor, model: nn.Module) -> dict:
    """The plan step removing the classes in ``removed`` (bool per class) from ``model``."""
    kept = coupling.kept_positions(removed)
    keep_ids: dict[tuple[int, ...], int] = {}
    keep_lists: list[list[int]] = []
    tensors = []
    new_shapes: dict[str, list[int]] = {}
    shapes = {n: list(t.shape) for n, t in _tensor_owners(model)[0].items()}
    for (name, dim), positions in kept.items():
        key = tuple(positions.tolist())
        if key not in keep_ids:
            keep_ids[key] = len(keep_lists)
            keep_lists.append(list(key))
        size = shapes[name][dim]
        tensors.append([name, dim, size, keep_ids[key]])
        new_shapes.setdefault(name, list(shapes[name]))[dim] = len(key)
    by_module: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in new_shapes.items():
        owner, _, attr = name.rpartition(".")
        by_module.setdefault(owner, {})[attr] = tuple(shape)
    modules = []
    for mname, mshapes in by_module.items():
        attrs = module_attrs(model.get_submodule(mname), mshapes)
        if attrs:
            modules.append([mname, attrs])
    return {"kind": "prune", "version": STEP_VERSION, "keep": keep_lists, "tensors": tensors, "modules": modules}


# ------------------------------------------------------------------------------- selection
def _kept_classes(n: int, ratio: float, removable: int, per_class: int, round_to: int) -> int:
    """Classes a group keeps at ``ratio``: at least one, a multiple of ``round_to`` channels."""
    keep = n - int(math.floor(ratio * n + 1e-9))
    keep = max(keep, n - removable, 1)
    return _round_keep(keep, n, per_class, round_to)


def _round_keep(keep: int, n: int, per_class: int, round_to: int) -> int:
    if round_to > 1:
        step = round_to // math.gcd(round_to, per_class)
        keep = min(n, -(-keep // step) * step)
    return keep


def next_removal(coupling: Coupling, importance: torch.Tensor, removed: torch.Tensor, group, round_to: int
                 ) -> torch.Tensor | None:
    """The classes of ``group`` to remove next (its least important kept ones) so that its kept channels
    drop to the next lower multiple of ``round_to``; None when it can lose no more."""
    g = group
    per_class = max(1, g.channels // g.size)
    gone = removed[g.classes]
    kept = int((~gone).sum())
    floor = g.size - g.removable                       # classes that must stay
    step = round_to // math.gcd(round_to, per_class) if round_to > 1 else 1
    target = (kept - 1) // step * step
    if target < max(floor, 1):
        return None
    imp = torch.where(g.prunable & ~gone, importance[g.classes], torch.full_like(importance[g.classes], math.inf))
    order = torch.argsort(imp, stable=True)[: kept - target]
    if not bool(torch.isfinite(imp[order]).all()):
        return None
    return g.classes[order]


def next_restore(coupling: Coupling, importance: torch.Tensor, removed: torch.Tensor, group, round_to: int
                 ) -> torch.Tensor | None:
    """The inverse of :func:`next_removal`: the most important removed classes of ``group`` whose return
    lifts its kept channels to the next multiple of ``round_to`` (or to all); None when none are removed."""
    g = group
    per_class = max(1, g.channels // g.size)
    gone = removed[g.classes]
    kept = int((~gone).sum())
    if kept == g.size:
        return None
    step = round_to // math.gcd(round_to, per_class) if round_to > 1 else 1
    target = min(g.size, (kept // step + 1) * step)
    imp = torch.where(gone, importance[g.classes], torch.full_like(importance[g.classes], -math.inf))
    order = torch.argsort(imp, descending=True, stable=True)[: target - kept]
    return g.classes[order]


def select_removed(coupling: Coupling, importance: torch.Tensor, ratio: float, scope: str = "layer",
                   round_to: int = 1) -> torch.Tensor:
    """Bool per class: True = remove. ``ratio`` = fraction of each group's channels (``layer``)
    or of all prunable channels, lowest group-normalised importance first (``global``)."""
    removed = torch.zeros(coupling.num_classes, dtype=torch.bool)
    groups = [g for g in coupling.groups if g.removable > 0]
    if scope == "layer":
        for g in groups:
            per_class = max(1, g.channels // g.size)
            k = g.size - _kept_classes(g.size, ratio, g.removable, per_class, round_to)
            if k <= 0:
                continue
            imp = torch.where(g.prunable, importance[g.classes], torch.full_like(importance[g.classes], math.inf))
            removed[g.classes[torch.argsort(imp, stable=True)[:k]]] = True
        return removed
    # global: one ranking of all prunable classes, each group's importance divided by its mean
    cls_list, score_list, owner_list = [], [], []
    for gi, g in enumerate(groups):
        imp = importance[g.classes].float()
        mean = float(imp.mean())
        normed = imp / mean if mean > 0 else torch.ones_like(imp)
        cls_list.append(g.classes[g.prunable])
        score_list.append(normed[g.prunable])
        owner_list.append(torch.full((int(g.prunable.sum()),), gi))
    if not cls_list:
        return removed
    classes, scores, owners = torch.cat(cls_list), torch.cat(score_list), torch.cat(owner_list)
    budget = int(math.floor(ratio * sum(g.size for g in groups) + 1e-9))
    allowed = [g.removable for g in groups]
    taken = [0] * len(groups)
    chosen: list[list[int]] = [[] for _ in groups]
    order = torch.argsort(scores, stable=True).tolist()
    cls_l, own_l = classes.tolist(), owners.tolist()
    for i in order:
        if budget <= 0:
            break
        gi = own_l[i]
        if taken[gi] < allowed[gi]:
            taken[gi] += 1
            chosen[gi].append(cls_l[i])
            budget -= 1
    for gi, g in enumerate(groups):
        if not chosen[gi]:
            continue
        per_class = max(1, g.channels // g.size)
        keep = _round_keep(g.size - len(chosen[gi]), g.size, per_class, round_to)
        k = g.size - keep
        removed[torch.tensor(chosen[gi][:k], dtype=torch.long)] = True
    return removed


# ------------------------------------------------------------------------------- cost model
_PASS_THROUGH = {"aten.t", "aten.view", "aten._unsafe_view", "aten.reshape", "aten.permute", "aten.transpose",
                 "aten.expand", "aten.clone", "aten._to_copy", "aten.detach", "aten.alias", "aten.contiguous"}


def param_behind(graph: Graph, vid: int, depth: int = 6) -> str | None:
    """The parameter a value is (``linear.weight`` behind ``aten.t``), or None."""
    node = graph.producer(vid)
    while depth and node.kind == "op" and node.packet in _PASS_THROUGH and node.inputs:
        node = graph.producer(node.inputs[0])
        depth -= 1
    return node.target if node.kind == "param" else None


@dataclass
class CostModel:
    """Params and MACs after removing classes, without re-tracing.

    Exact for convolutions and linear layers (their MACs are output positions × weight elements,
    so they scale with the weight's kept elements); MACs of ops without a parameter weight are
    kept as they were, an over-estimate, so a target met here is met by the real model.
    """

    coupling: Coupling
    numel: dict[str, int]                 # parameter name -> elements
    shapes: dict[str, tuple[int, ...]]
    mac_terms: list[tuple[int, str | None]]

    @classmethod
    def build(cls, graph: Graph, model: nn.Module, coupling: Coupling) -> "CostModel":
        params = dict(model.named_parameters())
        terms = []
        for node in graph.ops():
            if node.macs:
                weight = None
                for v in node.inputs:
                    name = param_behind(graph, v)
                    if name in params and params[name].dim() >= 2:
                        weight = name
                        break
                terms.append((node.macs, weight))
        return cls(coupling, {n: p.numel() for n, p in params.items()},
                   {n: tuple(p.shape) for n, p in params.items()}, terms)

    def factors(self, removed: torch.Tensor) -> dict[str, float]:
        """Parameter name -> fraction of its elements kept with the classes in ``removed`` gone."""
        factor: dict[str, float] = {}
        for s in self.coupling.slots:
            if s.tensor in self.numel:
                kept = int((~removed[s.classes]).sum())
                factor[s.tensor] = factor.get(s.tensor, 1.0) * kept / s.size
        return factor

    def evaluate(self, removed: torch.Tensor) -> tuple[int, int]:
        """(params, MACs) of the model with the classes in ``removed`` gone."""
        factor = self.factors(removed)
        params = sum(round(n * factor.get(name, 1.0)) for name, n in self.numel.items())
        macs = sum(round(m * factor.get(w, 1.0)) if w else m for m, w in self.mac_terms)
        return params, macs


def _human(n: float) -> str:
    from ..units import human_count

    return human_count(n)


def search_ratio(cost: CostModel, coupling: Coupling, importance: torch.Tensor, scope: str, round_to: int,
                 target_macs: int | None, target_params: int | None) -> float:
    """The smallest ratio whose pruned model meets every target (bisection; cost is monotone)."""
    def meets(r: float) -> tuple[bool, tuple[int, int]]:
        p, m = cost.evaluate(select_removed(coupling, importance, r, scope, round_to))
        ok = (target_macs is None or m <= target_macs) and (target_params is None or p <= target_params)
        return ok, (p, m)

    ok0, (p0, m0) = meets(0.0)
    what = " and ".join(x for x in (target_macs is not None and f"{_human(target_macs)} MACs",
                                      target_params is not None and f"{_human(target_params)} params") if x)
    if ok0:
        raise CnnscopeError(f"the model already meets the target ({_human(m0)} MACs, {_human(p0)} params ≤ {what}); "
                            f"nothing to prune")
    hi = 1.0 - 1e-9
    ok, (p1, m1) = meets(hi)
    if not ok:
        raise CnnscopeError(f"the target {what} cannot be met: pruning every prunable channel group down to one "
                            f"channel still leaves {_human(m1)} MACs and {_human(p1)} params (from {_human(m0)} MACs, "
                            f"{_human(p0)} params); raise the target" + (" or drop --ignore" if coupling.ignored else ""))
    lo = 0.0
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        if meets(mid)[0]:
            hi = mid
        else:
            lo = mid
    return hi


# ---------------------------------------------------------------------------------- graphs
def coupling_graphs(analysis, model: nn.Module) -> tuple[list[Graph], list[str]]:
    """The eval-mode graph, plus a train-mode graph when some parameters never ran in eval mode
    (GoogLeNet/Inception auxiliary heads), so the channels those read are coupled too."""
    from ..graph.tracer import trace

    graph = analysis.graph
    traced = set(graph.param_values)
    missing = [n for n, _ in model.named_parameters() if n not in traced]
    if not missing:
        return [graph], []
    meta = analysis.model
    n, *chw = analysis.input_shape
    sizes = [tuple(chw)]
    src = getattr(model, "_cnnscope_source", None)
    if src is not None:
        from ..loading.source import default_input_size

        try:
            sizes.append(tuple(default_input_size(src)))
        except Exception:  # noqa: BLE001 - a default size is only another attempt
            pass
    # auxiliary heads often need the full resolution (Inception v3's needs ~299)
    sizes += [(chw[0], 299, 299), (chw[0], 224, 224)]
    sizes = list(dict.fromkeys(s for s in sizes if s[0] == chw[0]))
    extra = None
    was_training = meta.training
    try:
        meta.train()
        for size in sizes:
            try:
                extra, _ = trace(meta, torch.empty((max(2, n), *size), device="meta"), already_meta=True)
                break
            except CnnscopeError:
                continue
    finally:
        meta.train(was_training)
    notes = []
    graphs = [graph]
    if extra is not None:
        graphs.append(extra)
        traced |= set(extra.param_values)
    still = [m for m in missing if m not in traced]
    if still:
        owners = sorted({m.rsplit(".", 1)[0] for m in still})
        notes.append(f"{len(still)} parameter(s) never ran in a forward pass ({', '.join(owners[:3])}"
                     f"{' …' if len(owners) > 3 else ''}); they were left as they are (that code path fails if it reads "
                     f"pruned channels)")
    return graphs, notes


# -------------------------------------------------------------------------------- the API
def _check_ratio(ratio: float, what: str = "--ratio") -> float:
    if not (0.0 < float(ratio) < 1.0):
        raise CnnscopeError(f"{what} must be a fraction strictly between 0 and 1 (e.g. 0.5 removes half the "
                            f"channels of each group), got {ratio}")
    return float(ratio)


def validate_options(ratio, criterion, scope, target_macs, target_params, round_to) -> None:
    from .importance import check_criterion

    check_criterion(criterion)
    if scope not in SCOPES:
        from ..errors import UnknownNameError

        raise UnknownNameError("scope", scope, SCOPES, hint="layer: the same ratio in every group; "
                                                            "global: one ranking over all groups")
    targets = target_macs is not None or target_params is not None
    if ratio is not None and targets:
        raise CnnscopeError("give either --ratio or a target (--target-macs/--target-params), not both")
    if ratio is None and not targets:
        raise CnnscopeError("say how much to prune: --ratio 0.5, --target-macs 2G or --target-params 10M")
    if ratio is not None:
        _check_ratio(ratio)
    for name, t in (("--target-macs", target_macs), ("--target-params", target_params)):
        if t is not None and t <= 0:
            raise CnnscopeError(f"{name} must be positive, got {t}")
    if round_to < 1:
        raise CnnscopeError(f"--round-to must be at least 1, got {round_to}")


def prune_channels(model: nn.Module, input_size: Any = None, *, ratio: float | None = None,
                   criterion: str = "l1", scope: str = "layer", target_macs: int | None = None,
                   target_params: int | None = None, ignore: Iterable[str] = (), round_to: int = 1,
                   seed: int = 0, batch_size: int = 1, analysis=None, inplace: bool = False,
                   removed: torch.Tensor | None = None) -> TransformResult:
    """Remove whole channels from ``model``; returns the smaller model and its plan step.

    ``removed``: the classes to remove, chosen by the caller (``prune --target-latency``'s per-group
    search over the same coupling, see :func:`search_state`) instead of by ``ratio``.

    ``model`` keeps its weights and is left untouched unless ``inplace``. ``analysis`` (from
    :func:`cnnscope.analysis.engine.analyze` of this model) saves tracing it again.

    >>> r = prune_channels(cnnscope.load_model("resnet50"), ratio=0.5)
    >>> r.model            # a dense resnet50 with half the channels in every group
    """
    ignore = list(ignore)
    validate_options(0.5 if removed is not None else ratio, criterion, scope, target_macs, target_params, round_to)
    # memory-bound copies and index bookkeeping: one thread is as fast on an idle machine and far
    # faster on a busy one (see coupling.one_thread)
    with one_thread():
        return _prune_channels(model, input_size, ratio, criterion, scope, target_macs, target_params, ignore,
                               round_to, seed, batch_size, analysis, inplace, removed)


def search_state(model: nn.Module, analysis, criterion: str, ignore: list[str], seed: int
                 ) -> tuple[Coupling, torch.Tensor, CostModel, list[str]]:
    """What choosing a ratio needs: the channel coupling, the importance per class, the cost model, notes."""
    from .importance import score

    graphs, notes = coupling_graphs(analysis, model)
    coupling = find_coupling(graphs, analysis.model, ignore)
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    importance, more = score(criterion, coupling, tensors, seed)
    return coupling, importance, CostModel.build(analysis.graph, analysis.model, coupling), notes + more


def _prune_channels(model, input_size, ratio, criterion, scope, target_macs, target_params, ignore, round_to,
                    seed, batch_size, analysis, inplace, chosen=None) -> TransformResult:
    from ..analysis.engine import analyze

    if analysis is None:
        analysis = analyze(model, input_size=input_size, batch_size=batch_size)
    coupling, importance, cost, notes = search_state(model, analysis, criterion, ignore, seed)
    if chosen is not None:
        removed = chosen
        total = sum(g.size for g in coupling.groups if g.removable > 0)
        ratio = float(removed.sum()) / total if total else 0.0
        scope = "per-group"
    else:
        if ratio is None:
            ratio = search_ratio(cost, coupling, importance, scope, round_to, target_macs, target_params)
        removed = select_removed(coupling, importance, ratio, scope, round_to)
    estimate = cost.evaluate(removed)
    step = build_step(coupling, removed, analysis.model)
    if not step["tensors"]:
        raise CnnscopeError(f"nothing to prune at ratio {ratio:g}: every channel group is too small or cannot be "
                            f"pruned ({_blocked_summary(coupling)})")
    out = model if inplace else copy.deepcopy(model)
    apply_prune_step(out, step)
    _update_source(out, step)
    if target_macs is not None or target_params is not None:
        _check_target(out, analysis, target_macs, target_params)
    if coupling.unknown_ops:
        ops = ", ".join(f"{k} ×{v}" for k, v in coupling.unknown_ops.most_common(5))
        notes.append(f"ops without a channel rule kept the channels they read unpruned: {ops}")
    details = {
        "criterion": criterion, "scope": scope, "ratio": ratio, "round_to": round_to,
        "target": {"macs": target_macs, "params": target_params},
        "ignored": coupling.ignored,
        "estimate": {"params": estimate[0], "macs": estimate[1]},
        "groups": _group_report(coupling, removed),
        "layers": _layer_report(analysis.model, step),
    }
    return TransformResult(out, [step], notes, details)


def _check_target(model: nn.Module, analysis, target_macs: int | None, target_params: int | None) -> None:
    """Re-analyse the pruned model on meta tensors: the targets must hold for its real counts."""
    from ..analysis.engine import analyze
    from ..errors import CheckFailed

    n, *chw = analysis.input_shape
    macs = analyze(model, input_size=tuple(chw), batch_size=n).graph.totals["macs"]
    params = sum(p.numel() for p in model.parameters())
    if (target_macs is not None and macs > target_macs) or (target_params is not None and params > target_params):
        raise CheckFailed(f"verification failed: the pruned model has {_human(macs)} MACs and {_human(params)} "
                          f"params, above the target; nothing was written")


def _update_source(model: nn.Module, step: dict) -> None:
    from ..loading.artifact import SOURCE_ATTR
    from ..loading.source import ModelSource

    src = getattr(model, SOURCE_ATTR, None)
    if src is not None:
        object.__setattr__(model, SOURCE_ATTR, ModelSource(base=dict(src.base), plan=list(src.plan) + [step],
                                                           display_name=src.display_name))


def _blocked_summary(coupling: Coupling) -> str:
    from collections import Counter

    why = Counter(g.why_not() for g in coupling.groups if g.removable == 0)
    return "; ".join(f"{n}× {w}" for w, n in why.most_common(3)) or "no groups"


def _group_report(coupling: Coupling, removed: torch.Tensor) -> list[dict]:
    rows = []
    for g in coupling.groups:
        producer = next((coupling.slots[i] for i in g.slots if coupling.slots[i].module == g.name
                         and coupling.slots[i].dim == 0), coupling.slots[g.slots[0]])
        in_group = coupling.class_group[producer.classes] == g.index
        kept = int((in_group & ~removed[producer.classes]).sum())
        rows.append({"name": g.name, "channels": [g.channels, kept], "classes": g.size,
                     "members": len(g.slots), "pruned": kept < g.channels,
                     "why_not": "" if g.removable else g.why_not()})
    return rows


_CHANNEL_ATTRS = (("in_channels", "out_channels"), ("in_features", "out_features"), ("num_features", "num_features"),
                  ("num_channels", "num_channels"), ("normalized_shape", "normalized_shape"),
                  ("num_parameters", "num_parameters"))


def _layer_report(model: nn.Module, step: dict) -> list[dict]:
    """Per changed module: type and (in, out) channel counts before → after."""
    rows = []
    for mname, attrs in step["modules"]:
        mod = model.get_submodule(mname)
        for a_in, a_out in _CHANNEL_ATTRS:
            if a_in in attrs or a_out in attrs:
                def val(v):
                    return int(v[-1]) if isinstance(v, (list, tuple)) else int(v)

                before_in, before_out = val(getattr(mod, a_in)), val(getattr(mod, a_out))
                rows.append({"name": mname, "type": type(mod).__name__, "kind": "norm" if a_in == a_out else "layer",
                             "in": [before_in, val(attrs.get(a_in, before_in))],
                             "out": [before_out, val(attrs.get(a_out, before_out))]})
                break
    return rows
