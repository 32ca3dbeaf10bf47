"""Rewrites: time to rewrite, MACs and CPU latency of each rewrite's output vs the original model.

No peer tool rewrites a whole trained model this way (tensor-decomposition libraries decompose
single layers and are not installed here), so the comparison is each rewrite against the original,
measured in the same run: latency ratio (rewritten ÷ original) next to the MAC ratio, because the
documents' point is that fewer MACs should mean less time — and low-rank pairs often do not deliver it.
"""
from __future__ import annotations

import copy
import statistics
import time

MODELS = (("resnet18", (3, 224, 224)), ("vgg11", (3, 224, 224)), ("alexnet", (3, 224, 224)))
REWRITES = (
    ("stride", "stride", None, None),
    ("reduce 0.25", "reduce", None, {"ratio": "0.25"}),
    ("asym 0.25", "factorize", "asym", {"ratio": "0.25"}),
    ("lowrank 0.25", "factorize", "lowrank", {"ratio": "0.25"}),
    ("tucker2 0.25", "factorize", "tucker2", {"ratio": "0.25"}),
    ("stack", "factorize", "stack", None),
)


def _latency_ms(model, x, repeats: int = 5) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def bench_model(name: str, chw, repeats: int = 5) -> dict:
    import torch

    import cnnscope
    from cnnscope.analysis.engine import analyze
    from cnnscope.errors import CnnscopeError
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    torch.manual_seed(0)
    model = cnnscope.load_model(name).eval()
    x = torch.randn(1, *chw)
    base = cnnscope.summary(model, input_size=chw)
    lat0 = _latency_ms(model, x, repeats)
    analysis = analyze(model, input_size=chw)
    rows = []
    for label, kind, method, ranks in REWRITES:
        t = time.perf_counter()
        try:
            r = rewrite(copy.deepcopy(model), kind, method=method, ranks=RankSpec.parse(**ranks) if ranks else None,
                        analysis=analysis, inplace=True)
        except CnnscopeError as e:
            rows.append({"rewrite": label, "skipped": str(e)[:120]})
            continue
        seconds = time.perf_counter() - t
        s = cnnscope.summary(r.model, input_size=chw)
        lat = _latency_ms(r.model, x, repeats)
        rows.append({"rewrite": label, "sites": len(r.details["sites"]), "seconds": round(seconds, 2),
                     "macs_ratio": s.totals.macs / base.totals.macs, "params_ratio": s.totals.params / base.totals.params,
                     "latency_ms": round(lat, 2), "latency_ratio": lat / lat0,
                     "output_error": r.details.get("output_error")})
    return {"model": name, "input": list(chw), "macs": base.totals.macs, "latency_ms": round(lat0, 2), "rows": rows}


def run(results: dict) -> dict:
    """Fill ``results["rewrites"]``; returns ``results``."""
    import torch

    results["rewrites"] = {"threads": torch.get_num_threads(), "models": [bench_model(n, chw) for n, chw in MODELS]}
    return results


def markdown(results: dict) -> str:
    r = results["rewrites"]
    out = [f"CPU, batch 1, {r['threads']} threads, median of 5 forward passes. Ratios are rewritten ÷ original; "
           "1 MAC = one multiply-accumulate; output error = ‖new − old‖/‖old‖ of the logits on a random input "
           "(weights random: the error says how far the initialisation is from the original, before fine-tuning).", ""]
    for m in r["models"]:
        out.append(f"### {m['model']} ({'×'.join(map(str, m['input']))}): {m['macs'] / 1e9:.2f} GMACs, "
                   f"{m['latency_ms']:.1f} ms")
        out.append("")
        out.append("| rewrite | sites | rewrite time | MACs ratio | params ratio | latency | latency ratio | output error |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for row in m["rows"]:
            if "skipped" in row:
                out.append(f"| {row['rewrite']} | – | – | – | – | – | – | {row['skipped']} |")
                continue
            err = "–" if row["output_error"] is None else f"{row['output_error']:.2e}"
            out.append(f"| {row['rewrite']} | {row['sites']} | {row['seconds']:.2f} s | {row['macs_ratio']:.1%} | "
                       f"{row['params_ratio']:.1%} | {row['latency_ms']:.1f} ms | {row['latency_ratio']:.2f} | {err} |")
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(run({})))
