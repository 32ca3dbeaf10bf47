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


def render_tail(report: dict, what: str) -> list[str]:
    """The lines every transform report ends with: accuracy (with --data), notes, the dry-run line."""
    lines = render_accuracy(report.get("accuracy"), what)
    lines += [f"note: {note}" for note in report["notes"]]
    if report["output"] is None:
        lines.append("dry run: verified, nothing written")
    return lines


def render_accuracy(acc: dict | None, what: str) -> list[str]:
    """The accuracy table's lines (empty without --data); ``what`` as in "before pruning"."""
    if not acc:
        return []
    from tabulate import tabulate

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    rows = [[f"before {what}", pct(acc["before"]["top1"])], [f"after {what}", pct(acc["after"]["top1"])]]
    if "fine_tuned" in acc:
        rows.append([f"after fine-tuning ({acc['epochs']} epoch{'s' if acc['epochs'] != 1 else ''})",
                     pct(acc["fine_tuned"]["top1"])])
    return ["", tabulate(rows, headers=[f"top-1 on val/ ({acc['val_images']} images)", ""], disable_numparse=True,
                         colalign=("left", "right"))]
