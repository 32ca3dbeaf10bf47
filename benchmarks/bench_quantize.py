"""int8 against float on onnxruntime: file size and latency of ``cnnscope quantize``'s output.

resnet18 and mobilenet_v2 with random weights, static QDQ quantization (per-channel int8 weights,
uint8 activations) calibrated on random inputs — explicitly chosen (``calibration="random"``): the
scales fit no real image, which does not matter for size and speed, the only things measured here.
Latency: onnxruntime CPU, batch 1, 3×224×224, 1 and 2 threads, median of 50 interleaved float/int8
runs after a warm-up (``cnnscope.quantize``'s own measurement). The peer is the same model's float
file on the same runtime in the same run: the ratio is what int8 buys on this machine.
"""
from __future__ import annotations

import os
import tempfile

MODELS = ["resnet18", "mobilenet_v2"]
THREADS = [1, 2]


def bench_model(name: str, threads: int, folder: str) -> dict:
    import torch

    import cnnscope

    torch.manual_seed(0)
    r = cnnscope.quantize(name, os.path.join(folder, f"{name}-{threads}.int8.onnx"), calibration="random",
                          calibration_images=20, threads=threads, latency_runs=50).to_dict()
    return {"model": name, "threads": threads, "float_bytes": r["float_file_bytes"], "int8_bytes": r["int8_file_bytes"],
            "size_ratio": r["size_ratio"], "float_ms": r["float_latency"]["median_ms"],
            "int8_ms": r["int8_latency"]["median_ms"], "float_iqr_ms": r["float_latency"]["iqr_ms"],
            "int8_iqr_ms": r["int8_latency"]["iqr_ms"], "speedup": r["speedup"],
            "int8_macs_fraction": r["int8_macs_fraction"], "quantize_s": r["seconds"]}


def run(results: dict) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        results["rows"] = [bench_model(m, t, folder) for m in MODELS for t in THREADS]
    return results


def markdown(results: dict) -> str:
    out = ["Random weights, random calibration (size and speed only), onnxruntime CPU, batch 1, 3×224×224, "
           "median of 50 interleaved runs.", "",
           "| model | threads | float MB | int8 MB | int8/float size | float ms | int8 ms | speed-up | MACs in int8 | "
           "quantize s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        out.append(f"| {r['model']} | {r['threads']} | {r['float_bytes'] / 1e6:.1f} | {r['int8_bytes'] / 1e6:.1f} | "
                   f"{r['size_ratio']:.1%} | {r['float_ms']:.2f} ± {r['float_iqr_ms']:.2f} | "
                   f"{r['int8_ms']:.2f} ± {r['int8_iqr_ms']:.2f} | {r['speedup']:.2f}× | "
                   f"{r['int8_macs_fraction']:.1%} | {r['quantize_s']:.1f} |")
    return "\n".join(out) + "\n"
