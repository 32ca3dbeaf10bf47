"""Analysis benchmark: cnnscope vs torchinfo, fvcore, ptflops, thop and torchscan.

Each (tool, model) runs in its own fresh Python process so wall time (model construction and the
tool's own imports included) and peak RSS are measured the same way for everyone. The totals each
tool reports are printed side by side, with the unit each tool claims, so the MACs/FLOPs conventions
are visible. Peers need real weights and a real forward pass; cnnscope needs neither.

    python benchmarks/bench_analysis.py [--models resnet50,vit_b_16] [--tools cnnscope,torchinfo]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: model key -> (torchvision name, weights enum member for the architecture, input size)
MODELS = {
    "resnet50": ("resnet50", None, 224),
    "vit_b_16": ("vit_b_16", None, 224),
    "regnet_y_128gf@384": ("regnet_y_128gf", "IMAGENET1K_SWAG_E2E_V1", 384),
}

_BUILD_REAL = """
import torchvision, torch
from cnnscope.loading.torchvision_models import build
model = build({name!r}, {weights!r}).eval()
x = torch.randn(1, 3, {size}, {size})
"""

#: tool -> (python code that sets `result = {{...}}`, what its number means)
TOOLS = {
    "cnnscope": ("""
import cnnscope
s = cnnscope.summary({name!r}, weights={weights!r}, input_size={size})
result = {{"params": s.totals.params, "reported": s.totals.macs, "rf": s.totals.receptive_field is not None}}
""", "MACs"),
    "torchinfo": (_BUILD_REAL + """
from torchinfo import summary
st = summary(model, input_data=x, verbose=0)
result = {{"params": st.total_params, "reported": st.total_mult_adds, "rf": False}}
""", "mult-adds"),
    "fvcore": (_BUILD_REAL + """
from fvcore.nn import FlopCountAnalysis, parameter_count
fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
result = {{"params": parameter_count(model)[""], "reported": fca.total(), "rf": False}}
""", "'flops' (= MACs)"),
    "ptflops": (_BUILD_REAL + """
from ptflops import get_model_complexity_info
macs, params = get_model_complexity_info(model, (3, {size}, {size}), as_strings=False, print_per_layer_stat=False, verbose=False)
result = {{"params": params, "reported": macs, "rf": False}}
""", "MACs"),
    "thop": (_BUILD_REAL + """
from thop import profile
macs, params = profile(model, inputs=(x,), verbose=False)
result = {{"params": int(params), "reported": macs, "rf": False}}
""", "MACs"),
    "torchscan": (_BUILD_REAL + """
from torchscan import crawl_module
info = crawl_module(model, (3, {size}, {size}))
tot = info["totals"]
rf = any("receptive_field" in l.get("metrics", {{}}) for l in info["layers"])
result = {{"params": tot["parameters"]["value"], "reported": tot["macs"]["known_value"], "rf": rf}}
""", "MACs"),
}

_HARNESS = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
{code}
wall = time.perf_counter() - t0
print("RESULT " + json.dumps({{**result, "in_process_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_one(tool: str, model_key: str, timeout: int = 900) -> dict:
    name, weights, size = MODELS[model_key]
    code = TOOLS[tool][0].format(name=name, weights=weights, size=size)
    script = _HARNESS.format(code=code)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": ROOT})
    except subprocess.TimeoutExpired:
        return {"tool": tool, "model": model_key, "error": f"timeout after {timeout}s"}
    wall = time.perf_counter() - t0
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        err = (proc.stderr.strip().splitlines() or ["?"])[-1][:160]
        return {"tool": tool, "model": model_key, "error": err, "wall_s": wall}
    data = json.loads(line[-1][7:])
    data.update(tool=tool, model=model_key, wall_s=wall, unit=TOOLS[tool][1])
    return data


def baseline_import_s(repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def cli_summary_s(model: str = "resnet50", repeat: int = 3) -> float:
    """Best wall time of the real CLI, ``cnnscope summary MODEL`` (process start to exit)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnscope", "summary", model], check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": ROOT})
        best = min(best, time.perf_counter() - t0)
    return best


def run(results: dict, models=None, tools=None) -> dict:
    models = models or list(MODELS)
    tools = tools or list(TOOLS)
    rows = []
    results["import_torch_torchvision_s"] = baseline_import_s(3)
    results["cli_summary_resnet50_s"] = cli_summary_s()
    results["cli_over_import"] = results["cli_summary_resnet50_s"] / results["import_torch_torchvision_s"]
    for m in models:
        for t in tools:
            r = run_one(t, m)
            rows.append(r)
            print(f"  {m:20s} {t:10s} " + (f"{r['wall_s']:.2f}s {r['peak_rss_mb']:.0f}MB {r['reported']:.4g} "
                                           f"{r['unit']}" if "error" not in r else f"ERROR {r['error']}"), file=sys.stderr)
    for r in rows:
        ours = next((x for x in rows if x["tool"] == "cnnscope" and x["model"] == r["model"] and "error" not in x), None)
        if ours and "error" not in r:
            r["time_ratio"] = ours["wall_s"] / r["wall_s"]       # cnnscope ÷ peer (< 1: cnnscope faster)
            r["memory_ratio"] = ours["peak_rss_mb"] / r["peak_rss_mb"]
    results["analysis"] = rows
    return results


def markdown(results: dict) -> str:
    lines = [f"Baseline `python -c \"import torch, torchvision\"`: {results['import_torch_torchvision_s']:.2f} s; "
             f"`cnnscope summary resnet50`: {results['cli_summary_resnet50_s']:.2f} s "
             f"(ratio {results['cli_over_import']:.2f}, target ≤ 1.3)",
             "", "| model | tool | wall s | peak RSS MB | params | reported | unit | RF | time ratio | memory ratio |",
             "|---|---|---:|---:|---:|---:|---|---|---:|---:|"]
    for r in results["analysis"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['tool']} | – | – | – | – | error: {r['error'][:60]} | – | – | – |")
            continue
        lines.append(f"| {r['model']} | {r['tool']} | {r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['params']:,} | "
                     f"{r['reported'] / 1e9:.3f} G | {r['unit']} | {'yes' if r['rf'] else 'no'} | "
                     f"{r.get('time_ratio', 0):.2f} | {r.get('memory_ratio', 0):.2f} |")
    lines.append("")
    lines.append("Ratios are cnnscope ÷ peer (below 1: cnnscope is faster / smaller). Wall time is the whole process: "
                 "imports, model construction (real weights for peers, meta for cnnscope) and analysis.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--tools", default=",".join(TOOLS))
    a = ap.parse_args()
    res = run({}, a.models.split(","), a.tools.split(","))
    print(markdown(res))
