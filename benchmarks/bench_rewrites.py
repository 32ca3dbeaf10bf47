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


def _lapack_split(m, rank):
    """What the factorizations did before issue 13: a float64 LAPACK SVD of the whole unfolding."""
    import torch

    u, s, vh = torch.linalg.svd(m.double(), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def bench_factorization(models=("resnet18", "vgg16")) -> list[dict]:
    """Spectrum + half-rank split of every K×K conv's unfolding (what ``--energy`` then the factors
    read), LAPACK SVD against the Gram-eigh path now used, and the largest difference in the product."""
    import torch

    import cnnscope
    from cnnscope.transforms import decompose

    rows = []
    for name in models:
        torch.manual_seed(0)
        convs = [m.weight.detach() for m in cnnscope.load_model(name).modules()
                 if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1 and m.in_channels > 3]
        for method in ("reduce", "lowrank"):
            mats = [decompose.UNFOLDINGS[method](w).double() for w in convs]
            t = time.perf_counter()
            old = [_lapack_split(m, min(m.shape) // 2) for m in mats if torch.linalg.svdvals(m) is not None]
            t_old = time.perf_counter() - t
            t = time.perf_counter()
            new = [decompose.top_svd(m, min(m.shape) // 2) for m in mats if decompose.svdvals(m) is not None]
            t_new = time.perf_counter() - t
            diff = max(float((a @ b - c @ d).norm() / (a @ b).norm()) for (a, b), (c, d) in zip(old, new))
            rows.append({"model": name, "method": method, "convs": len(mats), "lapack_s": round(t_old, 3),
                         "gram_s": round(t_new, 3), "speedup": t_old / t_new, "max_rel_diff": diff})
    return rows


def run(results: dict) -> dict:
    """Fill ``results["rewrites"]``; returns ``results``."""
    import torch

    results["rewrites"] = {"threads": torch.get_num_threads(), "factorization": bench_factorization(),
                           "models": [bench_model(n, chw) for n, chw in MODELS]}
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
    fact = r.get("factorization")
    if fact:
        out += ["### factorization time (spectrum + half-rank split of every K×K conv's unfolding)", "",
                "LAPACK float64 SVD (before issue 13) against the Gram-matrix eigendecomposition of the smaller "
                "side (now); the difference is ‖product_new − product_old‖ / ‖product_old‖ (worst conv).", "",
                "| model | unfolding | convs | LAPACK SVD | Gram eigh | speed-up | max difference |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for f in fact:
            out.append(f"| {f['model']} | {f['method']} | {f['convs']} | {f['lapack_s']:.2f} s | {f['gram_s']:.2f} s | "
                       f"{f['speedup']:.1f}× | {f['max_rel_diff']:.1e} |")
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(run({})))
