"""Run every benchmark in one go and write `benchmarks/results/latest.{md,json}`.

    pip install -e ".[bench]"        # the peer tools: torchinfo, fvcore, thop, ptflops, torchscan, torch-pruning
    python benchmarks/run.py         # all sections
    python benchmarks/run.py --only analysis,prune
    python benchmarks/run.py --render-only     # rebuild latest.md from latest.json

Every section compares cnnscope with its peers measured in the same run on the same machine and
reports ratios (cnnscope ÷ peer), not absolute times alone. Benchmarks are not tests: nothing here
decides whether CI passes.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

SECTIONS = ["analysis", "memory", "prune", "rewrites", "export", "quantize", "profile"]


def machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def render(results: dict) -> list[str]:
    """The Markdown report's lines: each section's own ``markdown()`` table, JSON where it has none."""
    md = [f"# cnnscope benchmarks — {results['date']}", "", f"Machine: {results['machine']}", ""]
    for name, section in results["sections"].items():
        mod = importlib.import_module(f"bench_{name}")
        md += [f"## {name}", ""]
        if hasattr(mod, "markdown"):
            md.append(mod.markdown(section))
        else:
            md += ["```json", json.dumps(section, indent=2, default=str), "```", ""]
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--render-only", action="store_true", help="rewrite latest.md from latest.json, measure nothing")
    a = ap.parse_args()
    if a.render_only:
        with open(os.path.join(a.out, "latest.json")) as f:
            results = json.load(f)
        md = render(results)
        with open(os.path.join(a.out, "latest.md"), "w") as f:
            f.write("\n".join(md))
        print("\n".join(md))
        return
    sections = a.only.split(",") if a.only else SECTIONS
    results: dict = {"date": datetime.date.today().isoformat(), "machine": machine(), "sections": {}}
    previous = os.path.join(a.out, "latest.json")
    if a.only and os.path.exists(previous):      # --only re-measures some sections and keeps the others
        with open(previous) as f:
            results["sections"] = json.load(f).get("sections", {})
    for name in sections:
        try:
            mod = importlib.import_module(f"bench_{name}")
        except ModuleNotFoundError as e:
            print(f"[{name}] skipped: {e}", file=sys.stderr)
            continue
        print(f"[{name}] running…", file=sys.stderr)
        t0 = time.perf_counter()
        section: dict = {}
        mod.run(section)
        section["section_wall_s"] = time.perf_counter() - t0
        results["sections"][name] = section
    md = render(results)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
