"""``prune --target-latency``: prune to a measured latency, not a MAC count.

1. *A latency table* (the nn-Meter/HALP idea: a lookup table, not a guess). The model is pruned
   uniformly to keep 100%, 75%, 50% and 25% of every group's channels, and each version is profiled
   per layer on the chosen runtime (:mod:`.torch_runtime`/:mod:`.ort_runtime`). Each row (a module, or
   an onnxruntime kernel named by its main module) gets its measured time at each *width* it had: for a
   layer with a weight, √(kept weight elements ÷ original) — the geometric mean of its input and output
   channel fractions, so its MACs scale as width²; for a norm layer the kept fraction; a layer without
   parameters (ReLU, pooling) takes the width of the layer before it. The table is cached per machine,
   runtime, thread count and architecture: a second run reuses it.
2. *Prediction*: for any choice of removed channels the pruner's cost model gives each weight's kept
   fraction; every row's time is read off its table (linear between measured widths, proportional
   below the smallest), and the rows are summed.
3. *Choice*: per-group widths (:func:`per_group`): from the largest uniform ratio whose prediction misses
   the target (bisection), remove ``--round-to`` channels at a time from the group that buys the most
   predicted milliseconds per unit of importance lost, until the prediction meets the target; then give
   back any step the target can afford.
4. *Correction*: the choice is built and timed against the original; when the table was optimistic
   (measured above the target), the goal is lowered by the measured shortfall and the choice made again,
   at most :data:`CORRECTIONS` times (the table's noise, and the optimizer picking exactly the layers the
   table flatters, make a closed loop more reliable than any single prediction).
5. *Measurement*: the pruned model (after any fine-tune) and the original are timed, interleaved. If the
   achieved median misses the target by more than the measured spread (IQR), it is a failed budget:
   exit 1, with the numbers, and nothing is written.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import math
from typing import Any

from ..errors import CheckFailed, CnnscopeError
from ..progress import Progress, no_progress
from . import cache

WIDTHS = (1.0, 0.75, 0.5, 0.25)
#: channel counts default to multiples of 8 under a latency target: onnxruntime's NCHWc convolutions
#: (and most CPU GEMM kernels) block channels by 8, and a count off that grid can run slower than a
#: larger one on it (mobilenet_v2 pruned to odd counts measured 47% above its table's prediction)
LATENCY_ROUND_TO = 8
#: times the choice is built, measured and re-aimed when the table was optimistic
CORRECTIONS = 2
TABLE_RUNS = 7


def _width_of(name: str, base_numel: dict[str, int], factor_of) -> float | None:
    """A row's width (see the module docstring); None for a module without a weight."""
    p = base_numel.get(f"{name}.weight")
    if p is None:
        return None
    f = factor_of(f"{name}.weight")
    return math.sqrt(f) if p[1] >= 2 else f


def _row_widths(rows: list[str], base: dict[str, tuple[int, int]], factor_of) -> dict[str, float]:
    out, last = {}, 1.0
    for r in rows:
        w = _width_of(r, base, factor_of)
        last = w if w is not None else last
        out[r] = last
    return out


def _profile_rows(model, x, analysis_graph, runtime: str, threads: int, runs: int, progress: Progress) -> tuple[dict, float]:
    """Row name -> median ms, and the plain whole-model median, of one model."""
    if runtime == "torch":
        from .torch_runtime import profile_torch

        p = profile_torch(model, x, analysis_graph, runs, 2, threads, "cpu", progress)
    else:
        from .profile import _export_and_profile

        p = _export_and_profile(model, x, tuple(x.shape), runs, 2, threads, progress)
    rows: dict[str, float] = {}
    for l in p.layers:
        rows[l.name] = rows.get(l.name, 0.0) + l.timing.median_ms
    return rows, p.total.median_ms


def _table_key(src, input_shape, runtime: str, threads: int, ignore, round_to: int) -> str:
    arch = json.dumps({"base": src.base, "plan": src.plan, "input": list(input_shape), "ignore": sorted(ignore),
                       "round_to": round_to, "widths": WIDTHS, "runs": TABLE_RUNS}, sort_keys=True, default=str)
    return cache.machine_key(runtime, threads) + " | " + hashlib.sha256(arch.encode()).hexdigest()[:20]


def build_table(real, analysis, src, runtime: str, threads: int, ignore, round_to: int, seed: int,
                use_cache: bool = True, progress: Progress = no_progress) -> dict[str, Any]:
    """``{"rows": {row: [[width, ms], ...]}, "totals": [[keep, ms], ...], "cached": bool}``."""
    from ..analysis.engine import analyze
    from ..export.verify import random_input
    from ..transforms.prune import prune_channels

    shape = tuple(analysis.input_shape)
    key = _table_key(src, shape, runtime, threads, list(ignore), round_to)
    if use_cache:
        hit = cache.read("latency-tables").get(key)
        if _valid_table(hit):
            return {**hit, "cached": True, "key": key}
    base = {n: (p.numel(), p.dim()) for n, p in real.named_parameters()}
    x = random_input(shape, seed=0)
    table: dict[str, list[list[float]]] = {}
    totals = []
    with progress(list(WIDTHS), f"building the latency table ({runtime})") as widths:
        for keep in widths:
            if keep == 1.0:
                model, graph = real, analysis.graph
            else:
                model = prune_channels(real, ratio=1 - keep, scope="layer", ignore=list(ignore), round_to=round_to,
                                       seed=seed, analysis=analysis).model
                n, *chw = shape
                # only PyTorch rows read the graph; onnxruntime's rows come from the exported file
                graph = analyze(model, input_size=tuple(chw), batch_size=n).graph if runtime == "torch" else None
            model.eval()
            rows, total = _profile_rows(model, x, graph, runtime, threads, TABLE_RUNS, no_progress)
            numel = {n: p.numel() for n, p in model.named_parameters()}
            widths_of = _row_widths(list(rows), base, lambda name: numel.get(name, base[name][0]) / base[name][0])
            for r, ms in rows.items():
                table.setdefault(r, []).append([widths_of[r], ms])
            totals.append([keep, total])
    entry = {"rows": {r: sorted(pts) for r, pts in table.items()}, "totals": totals}
    if use_cache:
        entries = dict(cache.read("latency-tables"))
        entries[key] = entry
        cache.write("latency-tables", entries)
    return {**entry, "cached": False, "key": key}


def _valid_table(t) -> bool:
    try:
        return isinstance(t["rows"], dict) and all(
            isinstance(k, str) and all(len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                                                           for v in p) for p in pts)
            for k, pts in t["rows"].items()) and isinstance(t["totals"], list)
    except (TypeError, KeyError):
        return False


def read_row(points: list[list[float]], width: float) -> float:
    """A row's time at ``width``: linear between the measured widths, proportional below the smallest."""
    ws = [p[0] for p in points]
    if width >= ws[-1]:
        return points[-1][1]
    if width <= ws[0]:
        return points[0][1] * (width / ws[0] if ws[0] > 0 else 1.0)
    k = bisect.bisect_left(ws, width)
    (w0, t0), (w1, t1) = points[k - 1], points[k]
    return t0 + (t1 - t0) * (width - w0) / (w1 - w0) if w1 > w0 else t1


def predict(table: dict, base: dict[str, tuple[int, int]], factors: dict[str, float]) -> float:
    """Predicted latency (ms) of the model with the weights' kept fractions ``factors``."""
    widths = _row_widths(list(table["rows"]), base, lambda name: factors.get(name, 1.0))
    return sum(read_row(pts, widths[r]) for r, pts in table["rows"].items())


def parse_target(text) -> tuple[str, float]:
    """``"20ms"``/``"0.02s"``/``20`` -> ("ms", 20.0); ``"60%"`` -> ("fraction", 0.6) of the measured original."""
    from ..units import parse_duration_ms

    t = str(text).strip()
    if t.endswith("%"):
        try:
            v = float(t[:-1]) / 100
        except ValueError:
            v = float("nan")
        if not 0 < v < 1:
            raise CnnscopeError(f"--target-latency '{text}': a percentage of the original must be between 0% and "
                                f"100% (60% = 0.6 × the measured latency)")
        return "fraction", v
    return "ms", parse_duration_ms(t, "--target-latency")


def per_group(coupling, importance, cost, table, base, lo: float, hi: float, scope: str, round_to: int,
              target_ms: float):
    """Per-group widths against the table (the HALP idea, greedily): start from the largest uniform ratio
    that misses the target (``lo``) and, while the prediction is above it, take from the group whose next
    ``round_to`` channels buy the most predicted milliseconds per unit of importance lost (each group's
    importance divided by its mean, as ``--scope global`` ranks); then give back, most important first,
    every step whose return keeps the prediction within the target (so the result lands close under it
    rather than a whole step below). Falls back to the uniform ratio ``hi`` when no step helps.
    Returns (removed classes, "per-group" | "uniform")."""
    from ..transforms.prune import next_removal, next_restore, select_removed

    uniform = select_removed(coupling, importance, hi, scope, round_to)
    removed = select_removed(coupling, importance, lo, scope, round_to).clone()
    groups = [g for g in coupling.groups if g.removable > 0]
    means = {g.index: float(importance[g.classes].float().mean()) or 1.0 for g in groups}
    current = predict(table, base, cost.factors(removed))
    while current > target_ms:
        best = None
        for g in groups:
            cls = next_removal(coupling, importance, removed, g, round_to)
            if cls is None:
                continue
            trial = removed.clone()
            trial[cls] = True
            t = predict(table, base, cost.factors(trial))
            lost = float(importance[cls].float().sum()) / means[g.index]
            score = (current - t) / max(lost, 1e-12)
            if current - t > 0 and (best is None or score > best[0]):
                best = (score, trial, t)
        if best is None:
            return uniform, "uniform"
        _, removed, current = best
    restored = True
    while restored:
        restored = False
        options = []
        for g in groups:
            cls = next_restore(coupling, importance, removed, g, round_to)
            if cls is not None:
                options.append((float(importance[cls].float().sum()) / means[g.index], g.index, cls))
        for _, _, cls in sorted(options, key=lambda o: (-o[0], o[1])):
            trial = removed.clone()
            trial[cls] = False
            t = predict(table, base, cost.factors(trial))
            if t <= target_ms:
                removed, current, restored = trial, t, True
                break
    return removed, "per-group"


def latency_target(target: tuple[str, float], *, runtime: str = "ort", threads: int = 1, runs: int = 20,
                   criterion: str = "l1", scope: str = "layer", ignore=(), round_to: int = 1, seed: int = 0,
                   use_cache: bool = True, progress: Progress = no_progress):
    """The two hooks :func:`~cnnscope.transforms.pipeline.run_prune` takes: ``(ratio_for, before_write)``."""
    from ..transforms.prune import prune_channels, search_state, select_removed
    from .latency import latencies

    state: dict[str, Any] = {}

    def ratio_for(real, analysis):
        coupling, importance, cost, _ = search_state(real, analysis, criterion, list(ignore), seed)
        from ..loading.artifact import source_of

        table = build_table(real, analysis, source_of(real), runtime, threads, ignore, round_to, seed, use_cache, progress)
        base = {n: (p.numel(), p.dim()) for n, p in real.named_parameters()}
        measured0 = table["totals"][0][1]
        target_ms = target[1] if target[0] == "ms" else target[1] * measured0
        state["target_ms"] = target_ms

        def predicted(r: float) -> float:
            return predict(table, base, cost.factors(select_removed(coupling, importance, r, scope, round_to)))

        p0, p_max = predicted(0.0), predicted(1 - 1e-9)
        if measured0 <= target_ms:
            raise CnnscopeError(f"the model already meets --target-latency {target_ms:g} ms (measured "
                                f"{measured0:.3f} ms); nothing to prune")
        # predictions are sums of per-row medians; the target is on the whole forward's median. The goal is
        # the target on the table's own scale (their ratio for the unpruned model), so the two agree
        scale = p0 / measured0 if measured0 else 1.0
        if p_max > target_ms * scale:
            raise CnnscopeError(f"--target-latency {target_ms:g} ms cannot be met by pruning: with every group "
                                f"down to one channel the table predicts {p_max / scale:.3f} ms (the unpruned "
                                f"model measures {measured0:.3f} ms); raise the target")
        def uniform_bounds(goal: float) -> tuple[float, float]:
            """(largest uniform ratio predicted above ``goal``, smallest at or below it), by bisection."""
            lo, hi = 0.0, 1 - 1e-9
            while hi - lo > 1e-3:
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if predicted(mid) <= goal else (mid, hi)
            return lo, hi

        import copy

        original = copy.deepcopy(real).eval()
        goal, attempts = target_ms * scale, []
        for attempt in range(1, CORRECTIONS + 2):
            lo, hi = uniform_bounds(goal)
            removed, how = per_group(coupling, importance, cost, table, base, lo, hi, scope, round_to, goal)
            expected = predict(table, base, cost.factors(removed))
            if attempt > CORRECTIONS:
                break
            # close the loop: build the choice, time it against the original, and aim lower by the
            # measured shortfall if the table was optimistic (at most CORRECTIONS times)
            candidate = prune_channels(real, removed=removed, analysis=analysis, ignore=list(ignore),
                                       round_to=round_to, seed=seed).model.eval()
            before_t, after_t = latencies([original, candidate], tuple(analysis.input_shape), runtime, threads,
                                          runs, 3, progress)
            now = target[1] * before_t.median_ms if target[0] == "fraction" else target_ms
            attempts.append({"goal_ms": goal / scale, "predicted_ms": expected / scale, "original_ms": before_t.median_ms,
                             "measured_ms": after_t.median_ms, "target_ms": now})
            if after_t.median_ms <= now:
                break
            goal *= now / after_t.median_ms

        expected /= scale
        state.update(original=original, shape=tuple(analysis.input_shape), predicted=expected,
                     table_original=measured0)
        total = sum(g.size for g in coupling.groups if g.removable > 0)
        return None, {"target_ms": target_ms, "target": f"{target[1]:.0%} of the original" if target[0] == "fraction"
                      else f"{target_ms:g} ms", "runtime": runtime, "threads": threads,
                      "ratio": float(removed.sum()) / total if total else 0.0, "uniform_ratio": hi,
                      "uniform_predicted_ms": predicted(hi) / scale, "allocation": how, "table_scale": scale,
                      "predicted_ms": expected, "predicted_unpruned_ms": p0, "attempts": attempts,
                      "table": {"widths": list(WIDTHS), "runs": TABLE_RUNS, "cached": table["cached"],
                                "measured_totals": table["totals"], "rows": len(table["rows"])}}, removed

    def before_write(pruned):
        before, after = latencies([state["original"], pruned.eval()], state["shape"], runtime, threads, runs, 3,
                                  progress)
        # the machine may run faster or slower now than while the table was measured: "drift" says by how
        # much (the original now ÷ the original then); a target given as a fraction follows the original
        # measured in these same interleaved runs
        drift = before.median_ms / state["table_original"] if state["table_original"] else 1.0
        target_ms = target[1] * before.median_ms if target[0] == "fraction" else state["target_ms"]
        out = {"target_ms": target_ms, "before": before.to_dict(), "after": after.to_dict(),
               "predicted_ms": state["predicted"], "drift": drift,
               "prediction_error": after.median_ms / (state["predicted"] * drift) - 1 if state["predicted"] else None,
               "met": after.median_ms <= target_ms + after.iqr_ms}
        if not out["met"]:
            raise CheckFailed(f"--target-latency {target_ms:g} ms missed: the pruned model measures "
                              f"{after.median_ms:.3f} ms (IQR {after.iqr_ms:.3f}; the table predicted "
                              f"{state['predicted']:.3f} ms, the original measures {before.median_ms:.3f} ms) "
                              f"on {runtime} with {threads} thread(s); nothing was written")
        return out

    return ratio_for, before_write


def prune_to_latency(model: str, target, *, runtime: str = "ort", threads: int = 1, latency_runs: int = 20,
                     use_cache: bool = True, progress: Progress = no_progress,
                     latency_progress: Progress | None = None, **prune_options):
    """``cnnscope prune MODEL --target-latency T``: :func:`~cnnscope.transforms.pipeline.run_prune` with the
    ratio chosen from the latency table and the result measured before it is written. ``prune_options``:
    ``output``, ``criterion``, ``scope``, ``ignore``, ``round_to``, ``seed``, ``data``, ... as ``run_prune``.
    ``target``: ``"20ms"``, ``"0.02s"``, ``"60%"`` (of the measured original) or :func:`parse_target`'s pair.
    ``latency_progress``: the progress of the table and the measurements (default: ``progress``).
    ``round_to`` defaults to :data:`LATENCY_ROUND_TO` here."""
    from ..transforms.pipeline import run_prune
    from .latency import LATENCY_RUNTIMES

    if runtime not in LATENCY_RUNTIMES:
        from ..errors import UnknownNameError

        raise UnknownNameError("runtime", runtime, LATENCY_RUNTIMES)
    if not isinstance(target, tuple):
        target = parse_target(target)
    for what in ("ratio", "target_macs", "target_params", "unstructured"):
        if prune_options.get(what):
            raise CnnscopeError(f"--target-latency chooses the ratio itself; drop --{what.replace('_', '-')}")
    prune_options.setdefault("round_to", LATENCY_ROUND_TO)
    ratio_for, before_write = latency_target(
        target, runtime=runtime, threads=threads, runs=latency_runs,
        criterion=prune_options.get("criterion", "l1"), scope=prune_options.get("scope") or "layer",
        ignore=prune_options.get("ignore", ()), round_to=prune_options.get("round_to", 1),
        seed=prune_options.get("seed", 0), use_cache=use_cache,
        progress=progress if latency_progress is None else latency_progress)
    return run_prune(model, ratio_for=ratio_for, before_write=before_write, progress=progress, **prune_options)
