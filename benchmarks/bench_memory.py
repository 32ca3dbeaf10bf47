"""Peak memory: cnnscope's liveness prediction (meta tensors, no weights) against what a real forward
allocates, and against the peers' memory figures.

Measured on CPU with ``torch.profiler(profile_memory=True)`` (see
:func:`cnnscope.analysis.memory.profiled_peak`): ``total`` is every allocation, ``tensors`` leaves out
what an op frees before it returns (oneDNN's reordered weights and outputs: backend workspace, which
the prediction does not model). On CUDA, when present, ``torch.cuda.max_memory_allocated`` around the
forward (weights excluded). torchinfo's "Forward/backward pass size" keeps every activation (and
doubles them for a backward): the upper bound users are shown today. Training: the activations
autograd saves, predicted vs what a real train-mode forward keeps allocated.
"""
from __future__ import annotations

import time

MODELS = ["resnet50", "mobilenet_v2", "vit_b_16"]


def _torchinfo_pass_bytes(model, shape) -> int | None:
    try:
        import torchinfo
    except ImportError:
        return None
    stats = torchinfo.summary(model, input_size=shape, verbose=0, device="cpu")
    return int(stats.total_output_bytes)


def _cuda_peak(model, x) -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    model, x = model.cuda(), x.cuda()
    with torch.inference_mode():
        model(x)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        model(x)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base + x.nbytes
    model.cpu()
    return int(peak)


def bench_model(name: str) -> dict:
    import torch
    import torchvision

    import cnnscope
    from cnnscope.analysis.memory import profiled_peak, profiled_saved

    t0 = time.perf_counter()
    s = cnnscope.summary(name)
    predict_s = time.perf_counter() - t0
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(*s.input_shape)
    measured = profiled_peak(model, (x,))
    row = {"model": name, "input": s.input_shape, "predicted": s.totals.peak_activation_bytes,
           "peak_at": s.totals.peak_at, "measured_total": measured["total"], "measured_tensors": measured["tensors"],
           "written": s.totals.activation_bytes, "predict_s": predict_s,
           "torchinfo_pass": _torchinfo_pass_bytes(model, tuple(s.input_shape)), "cuda": _cuda_peak(model, x)}
    train = cnnscope.summary(name, training=True).training
    row["train_saved_predicted"] = train["saved_activation_bytes"]
    row["train_saved_measured"] = profiled_saved(model, (x,))
    row["train_memory_sgd"] = train["memory_bytes"]
    row["ratio_tensors"] = row["predicted"] / row["measured_tensors"]
    row["ratio_total"] = row["predicted"] / row["measured_total"]
    return row


def run(results: dict) -> dict:
    results["memory"] = {"rows": [bench_model(m) for m in MODELS]}
    return results


def markdown(results: dict) -> str:
    def mb(v):
        return "-" if v is None else f"{v / 1e6:.2f}"

    out = ["Inference peak activation memory, batch 1 at the weights' size, MB (10^6 B). *predicted*: "
           "cnnscope's tensor liveness on meta tensors; *measured*: profiler allocations on a real CPU forward, "
           "with and without op-internal workspace; *written*: every byte the forward writes (cnnscope's "
           "activation bytes); *torchinfo*: its forward/backward pass size.", "",
           "| model | predicted | measured (tensors) | ratio | measured (all, with oneDNN workspace) | ratio | "
           "CUDA max allocated | written | torchinfo | peak at |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results["memory"]["rows"]:
        at = r["peak_at"] or {}
        out.append(f"| {r['model']} | {mb(r['predicted'])} | {mb(r['measured_tensors'])} | {r['ratio_tensors']:.3f} | "
                   f"{mb(r['measured_total'])} | {r['ratio_total']:.3f} | {mb(r['cuda'])} | {mb(r['written'])} | "
                   f"{mb(r['torchinfo_pass'])} | {at.get('module', '')} ({at.get('op', '')}) |")
    out += ["", "Training (one SGD-momentum step, batch 1): activations autograd saves for the backward, predicted "
               "from the train-mode meta recording vs what a real train-mode CPU forward leaves allocated "
               "(profiler allocations without a free, minus the output, plus the input); and the whole training "
               "memory (params + grads + momentum + saved).", "",
            "| model | saved predicted MB | saved measured MB | ratio | training memory MB |", "|---|---:|---:|---:|---:|"]
    for r in results["memory"]["rows"]:
        out.append(f"| {r['model']} | {mb(r['train_saved_predicted'])} | {mb(r['train_saved_measured'])} | "
                   f"{r['train_saved_predicted'] / r['train_saved_measured']:.3f} | {mb(r['train_memory_sgd'])} |")
    return "\n".join(out) + "\n"
