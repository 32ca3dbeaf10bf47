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


def terminal_progress(iterable, label):
    """Like :func:`progress_bar`, but silent unless stderr is a terminal: for seconds-long loops
    (initialising rewritten layers) whose label would only clutter a log."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(iterable)
    return click.progressbar(iterable, label=label, file=sys.stderr, show_pos=True, show_eta=True)


def _weights_cached(src) -> bool:
    import os

    from torch.hub import get_dir

    from ..loading.torchvision_models import resolve_weights

    w = resolve_weights(src.base["name"], src.base["weights"])
    return os.path.exists(os.path.join(get_dir(), "checkpoints", os.path.basename(w.url)))


def load_for_transform(model: str, weights: str | None, input_size, batch_size: int = 1, verb: str = "transformed",
                       seed: int = 0):
    """(source, real CPU model, its analysis, notes): the model is built once with real weights (the
    artifact's, the --weights file's, or a fresh init) and analysed once. Named torchvision weights
    that are not in the local cache configure the architecture only: the model is transformed with
    fresh weights, said plainly (a warning on stderr and a note in the report)."""
    from ..analysis.engine import analyze
    from ..loading.artifact import SOURCE_ATTR, load_model
    from ..loading.source import resolve

    import torch

    src = resolve(model, weights)
    notes = []
    fresh = not src.weights_file and not (src.kind == "torchvision" and src.base.get("weights"))
    if fresh:
        note = (f"{src.display_name} has no trained weights here: the transform ran on a random init seeded with "
                f"--seed {seed} (the same every run), so errors and channel importance describe random weights; "
                f"pass --weights FILE for trained ones")
        notes.append(note)      # printed with the report (stderr stays one line on errors)
    torch.manual_seed(seed)     # a fresh init (and anything random below) is the same in every run
    if not fresh and src.kind == "torchvision" and src.base.get("weights") and not src.weights_file \
            and not _weights_cached(src):
        from ..loading.plan import replay
        from ..loading.torchvision_models import build

        real = replay(build(src.base["name"], src.base["weights"], **src.base.get("kwargs", {})), src.plan).eval()
        object.__setattr__(real, SOURCE_ATTR, src)
        note = (f"weights {src.base['weights']} are not in the local cache: {verb} a freshly initialised "
                f"{src.base['name']} configured as for those weights (pass --weights FILE for trained weights)")
        click.echo(f"warning: {note}", err=True)
        notes.append(note)
    else:
        real = load_model(src)
    analysis = analyze(real, input_size=input_size, batch_size=batch_size)
    analysis.name = src.display_name
    analysis.source = src
    return src, real, analysis, notes


class AccuracySession:
    """Top-1 on ``DIR/val/`` before and after a transform, and after fine-tuning on ``DIR/train/``.

    >>> s = AccuracySession(data, src, before, mean, std, batch, seed, device, epochs, lr, "pruning")
    >>> s.measure_before(real); ...transform...; s.measure_after(result.model); s.as_dict()
    """

    def __init__(self, data_dir, src, before, mean, std, batch, seed, device, epochs, lr, what):
        from ..data import data_loaders, normalisation_for
        from ..errors import CnnscopeError
        from ..transforms.finetune import pick_device

        chw = tuple(before.input_shape[1:])
        norm = normalisation_for(src, chw[0], mean, std)
        self.device = pick_device(device)
        if not (lr > 0 and lr < float("inf")):
            raise CnnscopeError(f"--lr must be positive, got {lr}")
        from ..limits import forward_bytes, require_memory

        require_memory(forward_bytes(before, batch=batch, training=epochs > 0),
                       f"{'fine-tuning' if epochs > 0 else 'evaluating'} at --train-batch {batch} on {chw} images",
                       "use a smaller --train-batch or --input-size")
        self.splits = data_loaders(data_dir, chw, norm, batch_size=batch, seed=seed)
        out_shape = before.graph.values[before.graph.outputs[0]].shape
        n_out = out_shape[-1] if out_shape else 0
        if n_out != len(self.splits.classes):
            raise CnnscopeError(f"{data_dir} has {len(self.splits.classes)} class folders but {before.name} outputs "
                                f"{n_out} classes; fine-tune a model with a matching classifier")
        self.epochs, self.lr, self.what = epochs, lr, what
        self.accuracy: dict = {}

    def sample_inputs(self, n: int = 32):
        """Up to ``n`` val/ images as one batch (what the rewrites measure their error on)."""
        import torch

        xs, count = [], 0
        for x, _ in self.splits.val:
            xs.append(x)
            count += len(x)
            if count >= n:
                break
        return torch.cat(xs)[:n]

    def measure_before(self, model) -> None:
        from ..transforms.finetune import evaluate

        self.accuracy["before"] = evaluate(model, self.splits.val, self.device, progress_bar,
                                           f"top-1 before {self.what}").to_dict()
        model.to("cpu")

    def measure_after(self, model, keep_zero=()) -> None:
        """Accuracy after the transform, then fine-tune (``--epochs``) and measure again; the model is
        left on the CPU in eval mode."""
        from ..transforms.finetune import evaluate, fine_tune

        self.accuracy["after"] = evaluate(model, self.splits.val, self.device, progress_bar,
                                          f"top-1 after {self.what}").to_dict()
        if self.epochs:
            fine_tune(model, self.splits.train, epochs=self.epochs, lr=self.lr, device=self.device,
                      progress=progress_bar, keep_zero=keep_zero)
            self.accuracy["fine_tuned"] = evaluate(model, self.splits.val, self.device, progress_bar,
                                                   "top-1 after fine-tuning").to_dict()
            self.accuracy["epochs"] = self.epochs
        self.accuracy.update(val_images=self.splits.val_size, train_images=self.splits.train_size)
        model.to("cpu").eval()

    def as_dict(self) -> dict:
        return dict(self.accuracy)


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
