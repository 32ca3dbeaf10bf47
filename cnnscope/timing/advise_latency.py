"""``advise --by latency``: the documents' methods ranked by *measured* latency saved per point of error.

Each method of :data:`cnnscope.transforms.advise.REWRITES` (stride, reduce, the factorizations) and
channel pruning at :data:`~cnnscope.transforms.advise.PRUNE_RATIO` (l1) is applied to the real model
with its weights (random unless given), every version is timed with the original, interleaved
(:func:`.latency.latencies`), and the whole model's output error is measured on the same random batch:
‖y′ − y‖ / ‖y‖ in percent. The score is milliseconds saved per percentage point of that error (an
error below 0.1% counts as 0.1%, so an exact rewrite ranks by its saving alone). The error of random
weights says how far the rewrite moves the function, not what accuracy survives fine-tuning; with
trained weights (``--weights``, an artifact) it is the estimate to trust.
"""
from __future__ import annotations

import copy
from typing import Any

from ..progress import Progress, no_progress

SCHEMA = "cnnscope.advise-latency/1"
ERROR_FLOOR_PCT = 0.1
ERROR_BATCH = 4


def _variants(real, analysis, layers) -> tuple[list[tuple[str, Any]], list[str]]:
    from ..errors import CnnscopeError
    from ..transforms.advise import PRUNE_RATIO, REWRITES
    from ..transforms.methods import get_method
    from ..transforms.prune import prune_channels
    from ..transforms.rewrites import RankSpec, rewrite

    out, notes = [], []
    for label, kind, method, ratio in REWRITES:
        try:
            ranks = RankSpec.parse(ratio=str(ratio)) if method and get_method(method).takes_rank else None
            r = rewrite(copy.deepcopy(real), kind, method=method, ranks=ranks, layers=list(layers or []) or None,
                        analysis=analysis, inplace=True)
        except CnnscopeError as e:
            notes.append(f"{label}: {e}")
            continue
        out.append((label, r.model))
    try:
        r = prune_channels(real, ratio=PRUNE_RATIO, criterion="l1", analysis=analysis)
        out.append((f"prune (ratio {PRUNE_RATIO}, l1)", r.model))
    except CnnscopeError as e:
        notes.append(f"prune: {e}")
    return out, notes


def _output_error(original, variant, x) -> float:
    """‖y′ − y‖ / ‖y‖ of the models' first outputs on ``x``, percent."""
    import torch

    def first(y):
        while isinstance(y, (tuple, list)):
            y = y[0]
        return y.float()

    with torch.no_grad():
        y, y2 = first(original(x)), first(variant(x))
    return float(100 * (y2 - y).norm() / y.norm().clamp_min(1e-12))


def advise_by_latency(model_or_spec, input_size=None, *, weights: str | None = None, batch_size: int = 1,
                      layers=None, runtime: str = "ort", threads: int = 1, runs: int = 20,
                      progress: Progress = no_progress) -> dict[str, Any]:
    """The methods with measured latency, MACs and output error, best score first (see the module doc)."""
    from torch import nn

    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary
    from ..export.verify import random_input
    from ..limits import forward_bytes, require_memory
    from ..loading.artifact import load_model
    from ..loading.source import resolve
    from .latency import LATENCY_RUNTIMES, latencies

    if runtime not in LATENCY_RUNTIMES:
        from ..errors import UnknownNameError

        raise UnknownNameError("runtime", runtime, LATENCY_RUNTIMES)
    if isinstance(model_or_spec, nn.Module):
        real, name = copy.deepcopy(model_or_spec), type(model_or_spec).__name__
        analysis = analyze(model_or_spec, input_size=input_size, batch_size=batch_size)
    else:
        src = resolve(model_or_spec, weights)
        analysis = analyze(src, input_size=input_size, batch_size=batch_size)
        real, name = load_model(src), src.display_name
    require_memory(forward_bytes(analysis), f"measuring latency at input {tuple(analysis.input_shape)}",
                   "use a smaller --input-size or --batch-size")
    real.eval()
    with progress([0], "building each method's model") as steps:
        for _ in steps:
            variants, notes = _variants(real, analysis, layers)
    for _, m in variants:
        m.eval()
    shape = tuple(analysis.input_shape)
    timings = latencies([real] + [m for _, m in variants], shape, runtime, threads, runs, 3, progress)
    x = random_input((ERROR_BATCH, *shape[1:]), seed=1)
    base_macs = build_summary(analysis, receptive_field=False).totals.macs
    before = timings[0]
    rows = []
    for (label, m), t in zip(variants, timings[1:]):
        n, *chw = shape
        macs = analyze(m, input_size=tuple(chw), batch_size=n).graph.totals["macs"]
        err = _output_error(real, m, x)
        saved = before.median_ms - t.median_ms
        rows.append({"method": label, "latency": t.to_dict(), "saved_ms": saved,
                     "latency_ratio": t.median_ms / before.median_ms if before.median_ms else None,
                     "macs": [base_macs, macs], "macs_ratio": macs / base_macs if base_macs else None,
                     "output_error_pct": err, "ms_per_error_point": saved / max(err, ERROR_FLOOR_PCT)})
    rows.sort(key=lambda r: -r["ms_per_error_point"])
    return {"schema": SCHEMA, "model": name, "input_shape": list(shape), "runtime": runtime, "threads": threads,
            "runs": runs, "original": before.to_dict(), "methods": rows, "notes": notes,
            "error": f"whole-model output error ‖y′−y‖/‖y‖ on {ERROR_BATCH} random N(0,1) inputs, percent; "
                     f"scores floor it at {ERROR_FLOOR_PCT}%"}
