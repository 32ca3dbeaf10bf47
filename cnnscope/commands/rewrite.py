"""`cnnscope reduce | stride | factorize MODEL -o OUT.pt`: the documents' three ways to cut computation."""
from __future__ import annotations

import click

from .options import model_options
from .transform_helpers import data_options, transform_output_option



def _common(fn):
    fn = transform_output_option(fn)
    fn = click.option("--dry-run", is_flag=True, help="Rewrite, verify and report, but write nothing (-o not needed).")(fn)
    fn = click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
                      show_default=True)(fn)
    fn = data_options("the rewrite")(fn)
    fn = click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                      help="Seed of the random inputs the per-layer errors are measured on (without --data) and "
                           "of data shuffling.")(fn)
    fn = click.option("--layers", "-l", metavar="GLOB", multiple=True,
                      help="Only rewrite layers matching GLOB (repeatable), e.g. 'features.*' or 'layer3.*.conv2'.")(fn)
    return model_options(fn)


def _rank_options(fn):
    fn = click.option("--energy", metavar="E", help="Smallest rank keeping fraction E of the weight's squared singular "
                                                    "values (0.9 or 90%).")(fn)
    fn = click.option("--ratio", "-r", metavar="R", help="Rank as a fraction of each layer's full rank (default 0.25).")(fn)
    fn = click.option("--rank", metavar="N|full",
                      help="Intermediate channels at every site; 'full' forces the exact decomposition everywhere, "
                           "even where it saves nothing (a correctness check).")(fn)
    return fn


@click.command(context_settings={"max_content_width": 100})
@_common
@_rank_options
@click.option("--include-stem", is_flag=True, help="Also reduce the network's first conv (skipped by default: its "
                                                   "input is the image, e.g. 3 RGB channels, nothing to reduce).")
def reduce(model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output, rank, ratio, energy,
           include_stem, **data_opts):
    """Insert a 1×1 conv before each K×K conv (K ≥ 3) that reduces its input channels (GoogLeNet).

    \b
    With weights, a truncated SVD of the conv weight reshaped to (C_out·K·K, C_in)
    initialises the 1×1 projection and the new K×K conv: equal to the original at
    full rank, the best approximation below it. Layers where it would not save
    MACs are skipped (except with --rank full).

    \b
    Examples:
      cnnscope reduce resnet18 --ratio 0.25 -o r18-reduced.pt
      cnnscope reduce vgg16 --energy 0.9 --layers 'features.2*' --dry-run
      cnnscope reduce model.pt --rank full --dry-run       # exact: error ~1e-7
    """
    _run("reduce", "reduce", model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output,
         dict(rank=rank, ratio=ratio, energy=energy), include_stem, None, data_opts)


@click.command(context_settings={"max_content_width": 100})
@_common
def stride(model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output, **data_opts):
    """Give stride 2 to each conv followed (through BN/activations) by a pool, and remove the pool.

    \b
    The conv then computes a quarter of its outputs. Its padding is chosen so its
    output size equals the pooled size. Where conv (+BN) and a k×k average pool
    are adjacent with no non-linearity between them, they are folded exactly into
    one conv with a (K+k−1)² kernel and stride k.

    \b
    Examples:
      cnnscope stride vgg16 --dry-run
      cnnscope stride vgg16 --layers 'features.2[0-9]' -o vgg16-s2.pt
    """
    _run("stride", None, model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output, {}, False, None,
         data_opts)


@click.command(context_settings={"max_content_width": 100})
@_common
@_rank_options
@click.option("--method", "-m", metavar="stack|asym|lowrank|tucker2", default="asym", show_default=True,
              help="stack: K×K → (K−1)/2 stacked 3×3 (same receptive field, approximate init); asym: n×n → 1×n "
                   "then n×1 (SVD, Jaderberg et al. 2014 scheme 2); lowrank: K×K conv to R channels then 1×1 (SVD); "
                   "tucker2: 1×1 to R_in, K×K core R_in→R_out, 1×1 back (Tucker-2 / HOOI, Kim et al. 2016; the rank "
                   "options apply to each channel side).")
@click.option("--activation", metavar="none|relu", default="none", show_default=True,
              help="With --method stack: the activation between the stacked 3×3 convs (VGG puts a ReLU there; "
                   "none keeps the stack linear, so it starts closest to the original).")
@click.option("--include-stem", is_flag=True, help="Also factorize the network's first conv (skipped by default: the "
                                                   "documents advise factorizing in the middle of the network).")
def factorize(model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output, rank, ratio, energy, method,
              activation, include_stem, **data_opts):
    """Factorize conv kernels: stacked 3×3, asymmetric 1×n + n×1, or low-rank pairs.

    \b
    Examples:
      cnnscope factorize alexnet --method stack --dry-run
      cnnscope factorize mnist_cnn --method stack --activation relu --data digits/ --epochs 2 -o m.pt
      cnnscope factorize resnet50 --method tucker2 --ratio 0.5 --layers 'layer*.conv2' -o r50-t2.pt
      cnnscope factorize inception_v3 --method stack --layers '*branch5x5_2' -o i3.pt
      cnnscope factorize resnet18 --method asym --ratio 0.3 -o r18-asym.pt
      cnnscope factorize vgg16 --method lowrank --energy 0.9 -o v.pt
      cnnscope factorize model.pt --method asym --rank full --dry-run   # exact
    """
    from ..errors import CnnscopeError, UnknownNameError
    from ..transforms.methods import get_method
    from ..transforms.rewrites import METHODS

    if method not in METHODS:
        raise UnknownNameError("method", method, METHODS)
    if not get_method(method).takes_rank and any(v is not None for v in (rank, ratio, energy)):
        ranked = ", ".join(m for m in METHODS if get_method(m).takes_rank)
        raise CnnscopeError(f"--method {method} has no rank: drop --rank/--ratio/--energy (or use {ranked})")
    from ..transforms.rewrites import check_activation

    check_activation(method, activation)
    _run("factorize", method, model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output,
         dict(rank=rank, ratio=ratio, energy=energy), include_stem, activation, data_opts)


# --------------------------------------------------------------------------------- the shared body
def _run(kind, method, model, weights, input_size, batch_size, layers, seed, fmt, dry_run, output, rank_opts,
         include_stem, activation, data_opts: dict):
    """``data_opts``: the ``data_options`` flags (data, epochs, lr, mean, std, train_batch, device)."""
    from ..transforms.methods import get_method
    from ..transforms.pipeline import DataOptions, run_rewrite
    from ..report.transforms import render_rewrite_report
    from ..transforms.rewrites import RankSpec
    from .transform_helpers import check_output, print_report, progress_bar, terminal_progress, warn_on_stderr

    check_output(output, dry_run, "rewritten")
    ranks = RankSpec.parse(**rank_opts) if kind != "stride" and get_method(method).takes_rank else None
    report = run_rewrite(kind, model, method=method, output=None if dry_run else output, weights=weights,
                         input_size=input_size, batch_size=batch_size, ranks=ranks, layers=layers,
                         include_stem=include_stem, activation=activation, seed=seed,
                         data=DataOptions(**data_opts), progress=progress_bar if data_opts["data"] else
                         terminal_progress, warn=warn_on_stderr).to_dict()
    print_report(report, fmt, render_rewrite_report, None if dry_run else output)
