"""Worked example: the documents' three ways to cut computation, applied to a trained digits CNN.

Trains the documents' small MNIST CNN on scikit-learn's bundled handwritten digits (no download;
the ImageFolder tree comes from ``examples/digits_prune.py``), then for each rewrite — ``stride``,
``reduce``, ``factorize --method asym|lowrank|tucker2|stack`` — reports top-1 before, right after the
rewrite (weights initialised from the trained ones) and after a short fine-tune, with MACs, params
and CPU latency.

Run::

    python examples/digits_rewrites.py                 # a few minutes on one CPU core
    python examples/digits_rewrites.py --tune-epochs 1

The same rewrites from the command line, on a trained artifact (``digits_prune.py --keep digits``)::

    cnnscope stride digits/mnist_cnn-digits.pt -o s.pt
    cnnscope factorize digits/mnist_cnn-digits.pt --method asym --ratio 0.5 -o a.pt
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cnnscope  # noqa: E402
from cnnscope.data import data_loaders  # noqa: E402
from cnnscope.transforms.finetune import evaluate, fine_tune  # noqa: E402
from cnnscope.transforms.rewrites import RankSpec, rewrite  # noqa: E402
from digits_prune import cpu_latency_ms, write_digits_imagefolder  # noqa: E402

#: (label, kind, method, rank options, activation): the rewrites compared
REWRITES = (
    ("stride", "stride", None, None, None),
    ("reduce --ratio 0.5", "reduce", None, {"ratio": "0.5"}, None),
    ("factorize asym --ratio 0.5", "factorize", "asym", {"ratio": "0.5"}, None),
    ("factorize lowrank --ratio 0.5", "factorize", "lowrank", {"ratio": "0.5"}, None),
    ("factorize tucker2 --ratio 0.5", "factorize", "tucker2", {"ratio": "0.5"}, None),
    ("factorize stack", "factorize", "stack", None, None),
    ("factorize stack --activation relu", "factorize", "stack", None, "relu"),
    ("factorize asym --rank full", "factorize", "asym", {"rank": "full"}, None),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-epochs", type=int, default=10)
    ap.add_argument("--tune-epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    workdir = tempfile.mkdtemp(prefix="cnnscope-digits-")
    write_digits_imagefolder(workdir)
    splits = data_loaders(workdir, (1, 28, 28), None, batch_size=32, seed=0)
    model = cnnscope.load_model("mnist_cnn")
    fine_tune(model, splits.train, epochs=args.train_epochs, lr=0.02)
    model.eval()
    acc0 = evaluate(model, splits.val).top1
    s0 = cnnscope.summary(model)
    batch = torch.rand(64, 1, 28, 28)
    lat0 = cpu_latency_ms(model, batch)
    print(f"mnist_cnn trained {args.train_epochs} epochs: top-1 {acc0:.2%}, {s0.totals.macs:,} MACs, "
          f"{s0.totals.params:,} params, {lat0:.2f} ms / batch of 64\n")
    val_images = torch.cat([x for x, _ in splits.val])[:64]     # the errors are measured on these
    header = f"{'rewrite':34} {'sites':>5} {'MACs':>8} {'params':>8} {'latency':>8} {'rewritten':>10} " \
             f"{'tuned':>8} {'output err':>10}"
    print(header)
    print("-" * len(header))
    for label, kind, method, ranks, activation in REWRITES:
        ranks_spec = RankSpec.parse(**ranks) if ranks else None
        t = time.perf_counter()
        r = rewrite(copy.deepcopy(model), kind, method=method, ranks=ranks_spec, activation=activation, inplace=True,
                    inputs=val_images)
        m = r.model.eval()
        acc1 = evaluate(m, splits.val).top1
        fine_tune(m, splits.train, epochs=args.tune_epochs, lr=0.005)
        m.eval()
        acc2 = evaluate(m, splits.val).top1
        s1 = cnnscope.summary(m)
        lat = cpu_latency_ms(m, batch)
        print(f"{label:34} {len(r.details['sites']):>5} {s1.totals.macs / s0.totals.macs:>8.1%} "
              f"{s1.totals.params / s0.totals.params:>8.1%} {lat / lat0:>8.2f} {acc1:>10.2%} {acc2:>8.2%} "
              f"{r.details.get('output_error', float('nan')):>10.2e}   ({time.perf_counter() - t:.0f} s)")
    print("\nMACs, params and latency relative to the trained model (1 MAC = one multiply-accumulate); "
          "'rewritten' = top-1 right after the rewrite, 'tuned' = after fine-tuning "
          f"{args.tune_epochs} epoch(s); output err = ‖new − old‖/‖old‖ of the logits on 64 val images, right "
          "after the rewrite.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
