"""Worked example: train the documents' small MNIST CNN on real handwritten digits, prune half of
its channels, fine-tune briefly, and compare accuracy, parameters, MACs and CPU latency.

The data is scikit-learn's bundled copy of the UCI handwritten digits (1,797 8×8 grayscale images,
10 classes; no download). It is written out as an ImageFolder tree (``train/<digit>/*.png``,
``val/<digit>/*.png``, a stratified 80/20 split), exactly the layout ``cnnscope prune --data``
reads, and the images are upscaled to the model's 28×28 input by cnnscope's preprocessing.

Run::

    python examples/digits_prune.py                # about a minute on one CPU core
    python examples/digits_prune.py --keep digits  # also keep the ImageFolder tree and artifacts

The same pruning from the command line, on the trained artifact this script saves with --keep::

    cnnscope prune digits/mnist_cnn-digits.pt --ratio 0.5 --data digits --epochs 3 -o pruned.pt
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

import cnnscope
from cnnscope.data import data_loaders
from cnnscope.transforms.finetune import evaluate, fine_tune
from cnnscope.transforms.prune import prune_channels


def write_digits_imagefolder(root: str, val_fraction: float = 0.2, seed: int = 0) -> tuple[int, int]:
    """Write scikit-learn's digits as ``root/{train,val}/<digit>/<index>.png``; returns (train, val) counts.

    Pixel values 0..16 are scaled to 0..255 (8-bit grayscale PNG). The split is stratified: the
    same fraction of every digit goes to ``val/``.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().clip(0, 255).astype("uint8")
    idx_train, idx_val = train_test_split(range(len(images)), test_size=val_fraction, random_state=seed,
                                          stratify=digits.target)
    for split, indices in (("train", idx_train), ("val", idx_val)):
        for i in indices:
            folder = os.path.join(root, split, str(int(digits.target[i])))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, f"{i:04d}.png"))
    return len(idx_train), len(idx_val)


def cpu_latency_ms(model: torch.nn.Module, batch: torch.Tensor, repeats: int = 30) -> float:
    """Median wall time of one forward pass on the CPU, in milliseconds."""
    model.eval()
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(batch)
        for _ in range(repeats):
            t = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-epochs", type=int, default=10, help="epochs to train the model from scratch")
    ap.add_argument("--tune-epochs", type=int, default=3, help="fine-tuning epochs after pruning")
    ap.add_argument("--ratio", type=float, default=0.5, help="fraction of channels removed per group")
    ap.add_argument("--keep", metavar="DIR", help="write the ImageFolder tree and artifacts here (kept)")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (default 1: predictable run time on a shared machine; latency is "
                         "then the per-core figure)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    workdir = args.keep or tempfile.mkdtemp(prefix="cnnscope-digits-")
    n_train, n_val = write_digits_imagefolder(workdir)
    print(f"digits: {n_train} training and {n_val} validation images in {workdir}/{{train,val}}")

    model = cnnscope.load_model("mnist_cnn")                 # conv5×5/32 → conv5×5/64 → fc1024 → fc10
    splits = data_loaders(workdir, (1, 28, 28), None, batch_size=32, seed=0)
    t = time.perf_counter()
    fine_tune(model, splits.train, epochs=args.train_epochs, lr=0.02)
    print(f"trained mnist_cnn for {args.train_epochs} epochs in {time.perf_counter() - t:.0f} s")
    acc_before = evaluate(model, splits.val).top1
    if args.keep:
        cnnscope.save_model(model, os.path.join(workdir, "mnist_cnn-digits.pt"))

    t = time.perf_counter()
    pruned = prune_channels(model, ratio=args.ratio).model   # the trained model is left as it is
    prune_s = time.perf_counter() - t
    acc_pruned = evaluate(pruned, splits.val).top1
    t = time.perf_counter()
    fine_tune(pruned, splits.train, epochs=args.tune_epochs, lr=0.005)
    tune_s = time.perf_counter() - t
    acc_tuned = evaluate(pruned, splits.val).top1
    if args.keep:
        cnnscope.save_model(pruned, os.path.join(workdir, "mnist_cnn-digits-pruned.pt"))

    s0, s1 = cnnscope.summary(model), cnnscope.summary(pruned)
    batch = torch.rand(64, 1, 28, 28)
    lat0, lat1 = cpu_latency_ms(model, batch), cpu_latency_ms(pruned, batch)
    lat0b, lat1b = cpu_latency_ms(model, batch[:1]), cpu_latency_ms(pruned, batch[:1])

    print(f"\npruned {args.ratio:.0%} of the channels of every group in {prune_s:.2f} s, "
          f"fine-tuned {args.tune_epochs} epochs in {tune_s:.0f} s\n")
    rows = [
        ("top-1 on val", f"{acc_before:.2%}", f"{acc_tuned:.2%}  (right after pruning: {acc_pruned:.2%})"),
        ("parameters", f"{s0.totals.params:,}", f"{s1.totals.params:,}  ({s1.totals.params / s0.totals.params:.1%})"),
        ("MACs", f"{s0.totals.macs:,}", f"{s1.totals.macs:,}  ({s1.totals.macs / s0.totals.macs:.1%})"),
        ("CPU latency, batch 64", f"{lat0:.2f} ms", f"{lat1:.2f} ms  ({lat0 / lat1:.2f}× faster)"),
        ("CPU latency, batch 1", f"{lat0b:.3f} ms", f"{lat1b:.3f} ms  ({lat0b / lat1b:.2f}× faster)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'before':>14}  after")
    for name, a, b in rows:
        print(f"{name:{width}}  {a:>14}  {b}")
    print(f"\naccuracy change: {100 * (acc_tuned - acc_before):+.2f} points "
          f"(1 MAC = one multiply-accumulate; CPU threads: {torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
