"""Worked example, the whole pipeline: train the documents' MNIST CNN on real handwritten digits, prune
half of its channels, quantize the float and the pruned model to int8 ONNX, and measure top-1, file size
and onnxruntime latency at every step.

The training and pruning are ``examples/digits_prune.py`` (same seeds, same data); quantization is
``cnnscope quantize`` (static QDQ, per-channel int8 weights, uint8 activations calibrated on 100
train/ images, evaluated on the 360 val/ images). Run::

    python examples/digits_quantize.py                 # about a minute and a half on one CPU core
    python examples/digits_quantize.py --keep digits   # keep the images, artifacts and .onnx files

The same from the command line, on the artifacts ``digits_prune.py --keep digits`` writes::

    cnnscope quantize digits/mnist_cnn-digits.pt --data digits -o mnist.int8.onnx
    cnnscope quantize digits/mnist_cnn-digits-pruned.pt --data digits -o pruned.int8.onnx
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile

import torch

import cnnscope

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digits_prune  # noqa: E402  (the training and pruning half of this example)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", metavar="DIR", help="write the images, artifacts and ONNX files here (kept)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for training and latency (default 1)")
    args = ap.parse_args(argv)

    workdir = args.keep or tempfile.mkdtemp(prefix="cnnscope-digits-q-")
    with contextlib.redirect_stdout(io.StringIO()):          # its own table is in docs/pruning.md
        digits_prune.main(["--keep", workdir, "--threads", str(args.threads)])
    torch.set_num_threads(args.threads)
    columns = {}
    for label, artifact in (("float", "mnist_cnn-digits.pt"), ("pruned 50% + 3 epochs", "mnist_cnn-digits-pruned.pt")):
        out = os.path.join(workdir, artifact.replace(".pt", ".int8.onnx"))
        columns[label] = cnnscope.quantize(os.path.join(workdir, artifact), out, data=workdir,
                                           threads=args.threads, latency_runs=200).to_dict()

    f, p = columns["float"], columns["pruned 50% + 3 epochs"]
    rows = [("", "float", "int8", "pruned", "pruned + int8")]

    def top1(r, key):
        return f"{100 * r['agreement'][key]:.2f}%"

    rows.append(("top-1 on val (360 images)", top1(f, "top1_float"), top1(f, "top1_int8"), top1(p, "top1_float"),
                 top1(p, "top1_int8")))
    rows.append(("int8/float top-1 agreement", "", f"{100 * f['agreement']['top1_agreement']:.2f}%", "",
                 f"{100 * p['agreement']['top1_agreement']:.2f}%"))
    rows.append(("ONNX file", f"{f['float_file_bytes']:,} B", f"{f['int8_file_bytes']:,} B",
                 f"{p['float_file_bytes']:,} B", f"{p['int8_file_bytes']:,} B"))
    rows.append(("onnxruntime latency, batch 1, 1 thread",
                 f"{f['float_latency']['median_ms']:.3f} ms", f"{f['int8_latency']['median_ms']:.3f} ms",
                 f"{p['float_latency']['median_ms']:.3f} ms", f"{p['int8_latency']['median_ms']:.3f} ms"))
    rows.append(("MACs (1 MAC = one multiply-accumulate)", f"{f['macs']:,}", f"{f['macs']:,}", f"{p['macs']:,}",
                 f"{p['macs']:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    print(f"\nfile size int8/float: {f['size_ratio']:.1%} (float model), {p['size_ratio']:.1%} (pruned); "
          f"pruned + int8 / float: {p['int8_file_bytes'] / f['float_file_bytes']:.1%}")
    print(f"latency (median of 200 interleaved runs): int8 {f['speedup']:.2f}× the float model's speed, "
          f"pruned + int8 {f['float_latency']['median_ms'] / p['int8_latency']['median_ms']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
