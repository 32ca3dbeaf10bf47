"""Glue shared by the transform commands (prune, reduce, stride, factorize): the output option, the
fine-tuning options, loading the model once with weights, and the accuracy / fine-tuning session."""
from __future__ import annotations

import sys

import click


def transform_output_option(fn):
    return click.option("--output", "-o", type=click.Path(dir_okay=False),
                        help="Artifact to write (.pt). Never the input file. Loadable with "
                             "torch.load(weights_only=True) and by every cnnscope command.")(fn)


def data_options(what: str):
    """``--data --epochs --lr --mean --std --train-batch --device``; ``what`` names the transform
    ("pruning", "the rewrite") in the help."""
    def decorate(fn):
        opts = [
            click.option("--data", metavar="DIR",
                         help=f"ImageFolder tree (DIR/train/<class>/, DIR/val/<class>/): report top-1 on val/ before "
                              f"{what}, after it and after fine-tuning on train/."),
            click.option("--epochs", type=click.IntRange(0, 1_000_000), default=1, show_default=True,
                         help="Fine-tuning epochs with --data (0: only measure accuracy)."),
            click.option("--lr", type=float, default=0.01, show_default=True,
                         help="Fine-tuning learning rate (SGD, cosine)."),
            click.option("--mean", metavar="M1,M2,M3", help="Normalisation mean for --data images (default: the "
                                                            "torchvision weights' own, else none)."),
            click.option("--std", metavar="S1,S2,S3", help="Normalisation std for --data images."),
            click.option("--train-batch", type=click.IntRange(min=1, max=2**31 - 1), default=32, show_default=True,
                         help="Images per fine-tuning/evaluation batch."),
            click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                         help="Where fine-tuning runs (auto: CUDA when available)."),
        ]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return decorate


def progress_bar(iterable, label):
    """A bar on stderr while ``iterable`` is consumed (fine-tuning, evaluation): printed on a terminal;
    in a log (no terminal) click prints the label once instead of redrawing."""
    return click.progressbar(iterable, label=label, file=sys.stderr, show_pos=True)


def warn_on_stderr(note: str) -> None:
    click.echo(f"warning: {note}", err=True)


def terminal_progress(iterable, label):
    """Like :func:`progress_bar`, but silent unless stderr is a terminal: for seconds-long loops
    (initialising rewritten layers) whose label would only clutter a log."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(iterable)
    return click.progressbar(iterable, label=label, file=sys.stderr, show_pos=True, show_eta=True)


def check_output(output: str | None, dry_run: bool, what: str) -> None:
    """``-o`` is needed unless ``--dry-run``, and may not name an input: one line, exit 2, before any work."""
    from ..errors import CnnscopeError
    from ..fileio import check_output_path

    from .options import input_paths

    if not output and not dry_run:
        raise CnnscopeError(f"missing -o/--output: say where to write the {what} artifact (or use --dry-run)")
    if output:
        check_output_path(output, *input_paths())


def print_report(report: dict, fmt: str, render, output: str | None) -> None:
    """A transform's report on stdout (``-f json`` or ``render``'s text), then where it wrote (stderr)."""
    import json

    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report), nl=False)
    if output:
        click.echo(f"wrote {output}", err=True)
