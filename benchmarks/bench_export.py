"""Export benchmark: time and parity of `cnnscope export` for resnet50 and mobilenet_v2.

Self-contained; the harness calls ``run(results)``, and ``python benchmarks/bench_export.py``
prints the same numbers as JSON. Not part of the test suite's pass/fail.

Per model (fresh random weights, 1×3×224×224, CPU) it records:

- ``torch_onnx_export_s``: the bare ``torch.onnx.export(dynamo=False)`` call, the baseline;
- ``cnnscope_export_s``: cnnscope's export step (the same exporter + its post-processing:
  initializers out of the graph inputs, no dedup), and ``cnnscope_total_s`` for the whole verified
  export (model forward, export, onnx.checker, onnxruntime session + run, atomic move);
- ``overhead_ratio`` = cnnscope_export_s ÷ torch_onnx_export_s;
- parity: max abs / rel diff between onnxruntime and PyTorch, file size, node count, params;
- ``dynamo_export_s`` when onnxscript is installed (else null), for the exporter choice.

Each timing is the best of ``repeats`` runs, after one warm-up export of the same model.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import warnings

MODELS = ("resnet50", "mobilenet_v2")


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_model(name: str, repeats: int = 3) -> dict:
    import importlib.util

    import torch

    from cnnscope.export.onnx_export import export_onnx
    from cnnscope.loading.artifact import load_model

    torch.manual_seed(0)
    model = load_model(name)
    x = torch.randn(1, 3, 224, 224)
    row: dict = {"model": name, "input": [1, 3, 224, 224]}
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.onnx")

        def torch_export():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), plain, dynamo=False, opset_version=18)

        torch_export()  # warm-up: first-call imports and symbolic registration
        row["torch_onnx_export_s"] = _best(torch_export, repeats)

        reports = []

        def cnnscope_export():
            reports.append(export_onnx(model, os.path.join(tmp, "cnnscope.onnx")))

        row["cnnscope_total_s"] = _best(cnnscope_export, repeats)
        r = min(reports, key=lambda rep: rep.export_seconds)
        row["cnnscope_export_s"] = r.export_seconds
        row["verify_s"] = min(rep.verify.seconds for rep in reports)
        row["overhead_ratio"] = row["cnnscope_export_s"] / row["torch_onnx_export_s"]
        run = r.verify.runs[0]
        row.update(max_abs_diff=run.max_abs_diff, max_rel_diff=run.max_rel_diff, parity_passed=run.passed,
                   file_bytes=r.file_bytes, nodes=r.nodes, params_in_file=r.params_in_file,
                   torch_params=r.torch_params, opset=r.opset)

        row["dynamo_export_s"] = None
        if importlib.util.find_spec("onnxscript") is not None:
            def dynamo_export():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(model, (x,), dynamo=True, opset_version=18).save(os.path.join(tmp, "d.onnx"))

            try:
                row["dynamo_export_s"] = _best(dynamo_export, 1)
            except Exception as e:  # recorded, not raised: the benchmark reports what happened
                row["dynamo_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return row


def run(results: dict) -> dict:
    """Fill ``results["export"]`` with one row per model plus the machine; returns ``results``."""
    import torch

    rows = [bench_model(name) for name in MODELS]
    results["export"] = {
        "rows": rows,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "platform": platform.platform()},
        "note": "best of 3 after a warm-up; cnnscope_export_s vs torch_onnx_export_s is the exporter overhead, "
                "cnnscope_total_s includes the onnxruntime verification",
    }
    return results


def markdown(results: dict) -> str:
    e = results["export"]
    out = ["Fresh random weights, 1×3×224×224, CPU, best of 3 after a warm-up. The peer is the bare "
           "`torch.onnx.export(dynamo=False)` call that cnnscope wraps; cnnscope's total adds the PyTorch "
           "reference forward, `onnx.checker`, the onnxruntime run and the atomic move.", "",
           "| model | torch.onnx.export s | cnnscope export step s | ratio | verification s | cnnscope total s | "
           "max abs diff | max rel diff | file MB | nodes | params in file = PyTorch |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in e["rows"]:
        out.append(f"| {r['model']} | {r['torch_onnx_export_s']:.2f} | {r['cnnscope_export_s']:.2f} | "
                   f"{r['overhead_ratio']:.2f} | {r['verify_s']:.2f} | {r['cnnscope_total_s']:.2f} | "
                   f"{r['max_abs_diff']:.2e} | {r['max_rel_diff']:.2e} | {r['file_bytes'] / 1e6:.1f} | {r['nodes']} | "
                   f"{'yes' if r['params_in_file'] == r['torch_params'] else 'no'} ({r['params_in_file']:,}) |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(json.dumps(run({}), indent=2))
