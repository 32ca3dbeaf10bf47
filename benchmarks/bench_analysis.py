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
import statistics
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
from cnnscope.loading.torchvision_models import build
model = build({name!r}, {weights!r}).eval()
x = torch.randn(1, 3, {size}, {size})
"""

#: tool -> (its imports, python code that sets `result = {{...}}` (model construction included), what
#: its number means). Every process first imports torch and torchvision, as every user's does.
TOOLS = {
    "cnnscope": ("import cnnscope", """
s = cnnscope.summary({name!r}, weights={weights!r}, input_size={size})
result = {{"params": s.totals.params, "reported": s.totals.macs, "rf": s.totals.receptive_field is not None}}
""", "MACs"),
    "torchinfo": ("from torchinfo import summary", _BUILD_REAL + """
st = summary(model, input_data=x, verbose=0)
result = {{"params": st.total_params, "reported": st.total_mult_adds, "rf": False}}
""", "mult-adds"),
    "fvcore": ("from fvcore.nn import FlopCountAnalysis, parameter_count", _BUILD_REAL + """
fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
result = {{"params": parameter_count(model)[""], "reported": fca.total(), "rf": False}}
""", "'flops' (= MACs)"),
    "ptflops": ("from ptflops import get_model_complexity_info", _BUILD_REAL + """
macs, params = get_model_complexity_info(model, (3, {size}, {size}), as_strings=False, print_per_layer_stat=False, verbose=False)
result = {{"params": params, "reported": macs, "rf": False}}
""", "MACs"),
    "thop": ("from thop import profile", _BUILD_REAL + """
macs, params = profile(model, inputs=(x,), verbose=False)
result = {{"params": int(params), "reported": macs, "rf": False}}
""", "MACs"),
    "torchscan": ("from torchscan import crawl_module", _BUILD_REAL + """
info = crawl_module(model, (3, {size}, {size}))
tot = info["totals"]
rf = any("receptive_field" in l.get("metrics", {{}}) for l in info["layers"])
result = {{"params": tot["parameters"]["value"], "reported": tot["macs"]["known_value"], "rf": rf}}
""", "MACs"),
}

_HARNESS = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import torch, torchvision
{imports}
t_work = time.perf_counter()
{code}
work = time.perf_counter() - t_work
print("RESULT " + json.dumps({{**result, "work_s": work, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_one(tool: str, model_key: str, timeout: int = 900) -> dict:
    """One fresh process: wall time (start to exit), work time (model construction + analysis, after
    the imports), peak RSS, and the totals the tool reports."""
    name, weights, size = MODELS[model_key]
    imports, code, unit = TOOLS[tool]
    script = _HARNESS.format(imports=imports, code=code.format(name=name, weights=weights, size=size))
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
    data.update(tool=tool, model=model_key, wall_s=wall, unit=unit)
    return data


def _median_of(runs: list[dict]) -> dict:
    """The run with the median wall time, with the median work time and the largest peak RSS."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["wall_s"])
    row = dict(ok[len(ok) // 2])
    row["work_s"] = statistics.median(r["work_s"] for r in ok)
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    row["runs"] = len(ok)
    return row


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


def run(results: dict, models=None, tools=None, repeats: int = 3) -> dict:
    """Every (model, tool) ``repeats`` times, the tools interleaved round by round so a busy machine
    slows every tool alike; the median run is reported."""
    models = models or list(MODELS)
    tools = tools or list(TOOLS)
    rows = []
    results["import_torch_torchvision_s"] = baseline_import_s(3)
    results["cli_summary_resnet50_s"] = cli_summary_s()
    results["cli_over_import"] = results["cli_summary_resnet50_s"] / results["import_torch_torchvision_s"]
    results["repeats"] = repeats
    for m in models:
        runs: dict[str, list[dict]] = {t: [] for t in tools}
        for _ in range(repeats):
            for t in tools:
                runs[t].append(run_one(t, m))
        for t in tools:
            r = _median_of(runs[t])
            rows.append(r)
            print(f"  {m:20s} {t:10s} " + (f"{r['wall_s']:.2f}s (work {r['work_s']:.2f}s) {r['peak_rss_mb']:.0f}MB "
                                           f"{r['reported']:.4g} {r['unit']}" if "error" not in r
                                           else f"ERROR {r['error']}"), file=sys.stderr)
    for r in rows:
        ours = next((x for x in rows if x["tool"] == "cnnscope" and x["model"] == r["model"] and "error" not in x), None)
        if ours and "error" not in r:
            r["time_ratio"] = ours["wall_s"] / r["wall_s"]       # cnnscope ÷ peer (< 1: cnnscope faster)
            r["work_ratio"] = ours["work_s"] / r["work_s"]
            r["memory_ratio"] = ours["peak_rss_mb"] / r["peak_rss_mb"]
    results["analysis"] = rows
    return results


def markdown(results: dict) -> str:
    lines = [f"Baseline `python -c \"import torch, torchvision\"`: {results['import_torch_torchvision_s']:.2f} s; "
             f"`cnnscope summary resnet50`: {results['cli_summary_resnet50_s']:.2f} s "
             f"(ratio {results['cli_over_import']:.2f}, target ≤ 1.3)",
             "", "| model | tool | wall s | work s | peak RSS MB | params | reported | unit | RF | wall ratio | "
                 "work ratio | memory ratio |",
             "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in results["analysis"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['tool']} | – | – | – | – | – | error: {r['error'][:60]} | – | – | – | – |")
            continue
        lines.append(f"| {r['model']} | {r['tool']} | {r['wall_s']:.2f} | {r['work_s']:.2f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['params']:,} | {r['reported'] / 1e9:.3f} G | {r['unit']} | {'yes' if r['rf'] else 'no'} | "
                     f"{r.get('time_ratio', 0):.2f} | {r.get('work_ratio', 0):.2f} | {r.get('memory_ratio', 0):.2f} |")
    lines.append("")
    lines.append(f"Median of {results.get('repeats', 1)} fresh processes per row, tools interleaved. Ratios are "
                 "cnnscope ÷ peer (below 1: cnnscope is faster / smaller). Wall: the whole process — Python start, "
                 "`import torch, torchvision` (the same for every tool), the tool's imports, model construction "
                 "(real weights for peers, meta tensors for cnnscope) and analysis. Work: model construction and "
                 "analysis only, after the imports — the part each tool controls.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    res = run({}, a.models.split(","), a.tools.split(","), a.repeats)
    print(markdown(res))
