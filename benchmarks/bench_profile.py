"""Measured latency: how well ``prune --target-latency``'s table predicts a pruned model, and how close
the target is met — against the proxy every MAC-based tool relies on (latency ∝ MACs).

resnet50, mobilenet_v2 and efficientnet_b0, random weights, 3×224×224, batch 1, onnxruntime CPU with 1
and 2 threads. For each: ``prune_to_latency(model, "50%")`` (l1, layer scope, no fine-tune, nothing
written). The table is rebuilt in every run (no cache). Reported: the target (50% of the measured
original), the latency the table predicted for the chosen ratio, the measured latency of the result
(median of 20 interleaved runs with the original), and what the MAC proxy would have predicted for the
same model (original ms × MACs after ÷ MACs before). The peer here is that proxy: a tool that prunes
to MACs believes its prediction; its error is what a latency table fixes.
"""
from __future__ import annotations

MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0"]
THREADS = [1, 2]


def bench_model(name: str, threads: int) -> dict:
    import time

    import torch

    from cnnscope.timing.latency_prune import prune_to_latency

    torch.manual_seed(0)
    t0 = time.perf_counter()
    r = prune_to_latency(name, "50%", runtime="ort", threads=threads, use_cache=False, output=None).to_dict()
    search, measured = r["target_search"], r["measured"]
    macs_before, macs_after = r["diff"]["totals"]["macs"]["a"], r["diff"]["totals"]["macs"]["b"]
    before, after = measured["before"]["median_ms"], measured["after"]["median_ms"]
    proxy = before * macs_after / macs_before if macs_before else None
    return {"model": name, "threads": threads, "ratio": search["ratio"], "original_ms": before,
            "target_ms": search["target_ms"], "predicted_ms": search["predicted_ms"], "achieved_ms": after,
            "achieved_iqr_ms": measured["after"]["iqr_ms"], "prediction_error": measured["prediction_error"],
            "target_error": after / measured["target_ms"] - 1, "measured_target_ms": measured["target_ms"],
            "drift": measured["drift"], "attempts": len(search["attempts"]), "macs_ratio": macs_after / macs_before if macs_before else None,
            "mac_proxy_ms": proxy, "mac_proxy_error": proxy / after - 1 if proxy else None,
            "table_totals": search["table"]["measured_totals"], "seconds": time.perf_counter() - t0}


def run(results: dict) -> dict:
    results["rows"] = [bench_model(m, t) for m in MODELS for t in THREADS]
    return results


def markdown(results: dict) -> str:
    out = ["`prune --target-latency 50%` on onnxruntime CPU, random weights, 3×224×224, batch 1; the table "
           "rebuilt each run. Target = 50% of the original as measured with the result (interleaved); table error = "
           "measured ÷ (predicted × drift) − 1, drift = the original now ÷ while the table was measured; "
           "attempts = choices built and timed (the closed loop); MAC proxy = original ms × MACs "
           "ratio (what a MAC-target pruner assumes).", "",
           "| model | threads | original ms | target ms | ratio | predicted ms | achieved ms | table error | "
           "vs target | MACs kept | MAC-proxy ms | MAC-proxy error | attempts | s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        out.append(f"| {r['model']} | {r['threads']} | {r['original_ms']:.2f} | {r['measured_target_ms']:.2f} | "
                   f"{r['ratio']:.3f} | {r['predicted_ms']:.2f} | {r['achieved_ms']:.2f} ± {r['achieved_iqr_ms']:.2f} | "
                   f"{r['prediction_error']:+.1%} | {r['target_error']:+.1%} | {r['macs_ratio']:.1%} | "
                   f"{r['mac_proxy_ms']:.2f} | {r['mac_proxy_error']:+.1%} | {r['attempts']} | {r['seconds']:.0f} |")
    return "\n".join(out) + "\n"
