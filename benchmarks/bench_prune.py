"""Structured pruning: cnnscope vs Torch-Pruning (DepGraph) on resnet50 at 50% channels, one run.

Both prune the same freshly initialised resnet50 (seed 0) with L1-magnitude importance, removing
half the channels of every coupled group and keeping the classifier's 1000 outputs. Measured here,
on the same machine, in the same process:

- pruning time (median of 3, each on a fresh copy; Torch-Pruning's includes building its
  dependency graph, cnnscope's includes recording its graph on meta tensors and copying the
  model, since its API never mutates the model it is given);
- resulting params and MACs, both counted by cnnscope's counter and by torch's FlopCounterMode
  (FLOPs = 2 × MACs) on real tensors;
- CPU latency at batch 1, 3×224×224, in PyTorch and in onnxruntime (median over interleaved
  rounds, so a busy machine slows every model alike), and speed-up ÷ MAC reduction: 1.0 means
  the time fell exactly as much as the MACs.

Run standalone with ``python benchmarks/bench_prune.py [--threads N] [--rounds N]``; the harness
(``benchmarks/run.py``) calls :func:`run`. Torch-Pruning is a benchmark-only dependency.
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time

MODEL = "resnet50"
RATIO = 0.5
INPUT = (1, 3, 224, 224)


def _median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _prune_cnnscope(model):
    from cnnscope.transforms.prune import prune_channels

    return prune_channels(model, ratio=RATIO, criterion="l1").model


def _prune_torch_pruning(model):
    import torch
    import torch_pruning as tp

    example = torch.randn(*INPUT)
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=RATIO, ignored_layers=[model.fc])
    pruner.step()
    return model


def _counts(model) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import cnnscope

    s = cnnscope.summary(model, input_size=INPUT[1:])
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.eval()(torch.randn(*INPUT))
    return {"params": s.totals.params, "macs": s.totals.macs, "flopcounter_macs": fc.get_total_flops() // 2}


def _onnx_session(model, folder: str, name: str, threads: int):
    import onnxruntime as ort
    import torch

    import warnings

    path = os.path.join(folder, f"{name}.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), torch.randn(*INPUT), path, dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["y"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _latencies(runners: dict, rounds: int) -> dict[str, float]:
    """Median ms per runner; rounds interleave the runners so background load hits all alike."""
    for fn in runners.values():          # warm-up
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for k, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def run(results: dict, threads: int = 1, rounds: int = 15) -> dict:
    import numpy as np
    import torch

    import cnnscope

    prev_threads = torch.get_num_threads()
    torch.manual_seed(0)
    base = cnnscope.load_model(MODEL).eval()
    results.update(model=MODEL, ratio=RATIO, input=list(INPUT), latency_threads=threads)
    try:
        import torch_pruning  # noqa: F401
        have_tp = True
    except ImportError:
        have_tp = False
        results["torch_pruning"] = "not installed (pip install torch-pruning)"

    # -- pruning time ---------------------------------------------------------------------------
    _prune_cnnscope(base)                                # imports and first-call costs, both tools
    results["cnnscope_prune_s"] = _median_time(lambda: _prune_cnnscope(base))
    ours = _prune_cnnscope(base)
    if have_tp:
        _prune_torch_pruning(copy.deepcopy(base))
        copies = [copy.deepcopy(base) for _ in range(3)]
        tp_default = _median_time(lambda: _prune_torch_pruning(copies.pop()))
        torch.set_num_threads(1)
        copies = [copy.deepcopy(base) for _ in range(3)]
        tp_one = _median_time(lambda: _prune_torch_pruning(copies.pop()))
        torch.set_num_threads(prev_threads)
        results["torch_pruning_prune_s"] = min(tp_default, tp_one)   # its better thread setting
        results["torch_pruning_prune_s_by_threads"] = {str(prev_threads): tp_default, "1": tp_one}
        theirs = _prune_torch_pruning(copy.deepcopy(base))
        results["prune_time_ratio"] = results["cnnscope_prune_s"] / results["torch_pruning_prune_s"]

    # -- size ---------------------------------------------------------------------------------
    models = {"original": base, "cnnscope": ours}
    if have_tp:
        models["torch_pruning"] = theirs
    counts = {k: _counts(m) for k, m in models.items()}
    results["counts"] = counts

    # -- latency ------------------------------------------------------------------------------
    torch.set_num_threads(threads)
    x = torch.randn(*INPUT)
    xn = x.numpy().astype(np.float32)
    runners = {}
    with tempfile.TemporaryDirectory() as folder:
        sessions = {k: _onnx_session(m, folder, k, threads) for k, m in models.items()}
        for k, m in models.items():
            runners[f"pytorch/{k}"] = (lambda m=m: m(x))
            runners[f"onnxruntime/{k}"] = (lambda s=sessions[k]: s.run(None, {"x": xn}))
        with torch.inference_mode():
            lat = _latencies(runners, rounds)
    torch.set_num_threads(prev_threads)
    results["latency_ms"] = lat
    macs0 = counts["original"]["macs"]
    rows = {}
    for k in models:
        if k == "original":
            continue
        reduction = macs0 / counts[k]["macs"]
        row = {"mac_reduction": reduction}
        for rt in ("pytorch", "onnxruntime"):
            speedup = lat[f"{rt}/original"] / lat[f"{rt}/{k}"]
            row[f"{rt}_speedup"] = speedup
            row[f"{rt}_speedup_over_mac_reduction"] = speedup / reduction
        rows[k] = row
    results["speedups"] = rows
    return results


def markdown(section: dict) -> str:
    c = section["counts"]
    lat = section["latency_ms"]
    lines = [f"{section['model']} at ratio {section['ratio']}, input {'×'.join(map(str, section['input']))}; "
             f"latency with {section['latency_threads']} CPU thread(s).", ""]
    lines.append("| | params | MACs | prune time | PyTorch ms | onnxruntime ms | speed-up PT / ORT | "
                 "speed-up ÷ MAC reduction PT / ORT |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in c:
        t = {"cnnscope": section.get("cnnscope_prune_s"), "torch_pruning": section.get("torch_pruning_prune_s")}.get(k)
        s = section["speedups"].get(k)
        sp = f"{s['pytorch_speedup']:.2f}× / {s['onnxruntime_speedup']:.2f}×" if s else ""
        ratio = (f"{s['pytorch_speedup_over_mac_reduction']:.2f} / {s['onnxruntime_speedup_over_mac_reduction']:.2f}"
                 if s else "")
        lines.append(f"| {k} | {c[k]['params']:,} | {c[k]['macs'] / 1e9:.3f} G | "
                     f"{'' if t is None else f'{t:.2f} s'} | {lat[f'pytorch/{k}']:.1f} | "
                     f"{lat[f'onnxruntime/{k}']:.1f} | {sp} | {ratio} |")
    if "prune_time_ratio" in section:
        lines += ["", f"cnnscope ÷ Torch-Pruning pruning time: {section['prune_time_ratio']:.2f}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for the latency measurements")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved latency rounds")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    a = ap.parse_args(argv)
    section: dict = {}
    run(section, threads=a.threads, rounds=a.rounds)
    print(markdown(section))
    if a.json:
        print(json.dumps(section, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
