"""`cnnscope check [MODEL ...]`: model-size budgets for CI (exit 0 held, 1 exceeded, 2 bad input)."""
from __future__ import annotations

import sys

import click

FORMATS = ["text", "json", "junit", "github"]


def _progress_bar(targets):
    """A bar over the models on a terminal (none in a log, or for a single model)."""
    if len(targets) < 2 or not sys.stderr.isatty():
        yield from targets
        return
    with click.progressbar(targets, label="analysing", file=sys.stderr,
                           item_show_func=lambda t: t.name if t else "") as bar:
        yield from bar


def budget_options(fn):
    """One ``--max-…``/``--min-…`` option per metric of :data:`cnnscope.check.budgets.METRICS`."""
    from ..check.budgets import METRICS

    for metric in reversed(list(METRICS.values())):
        metavar = {"count": "N", "bytes": "MB", "pixels": "PX", "ms": "TIME"}[metric.unit]
        fn = click.option(f"--{metric.option}", f"budget_{metric.option.replace('-', '_')}", metavar=metavar,
                          help=metric.help[0].upper() + metric.help[1:] + ".")(fn)
    return fn


@click.command(context_settings={"max_content_width": 100})
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="TOML file with a [tool.cnnscope.check] table. Default: ./pyproject.toml when no MODEL is given.")
@budget_options
@click.option("--fail-on-uncounted", is_flag=True,
              help="Fail when an op ran that no MAC formula knows (it counts 0; summary lists them): the same as "
                   "--max-uncounted-ops 0.")
@click.option("--input-size", "-i", metavar="CxHxW", help="Input size for every model (overrides the config).")
@click.option("--weights", "-w", metavar="NAME|FILE",
              help="torchvision weights name or state_dict file for every model (never downloaded).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1, max=2**31 - 1), default=None,
              help="Batch size N; MACs and activations scale with it. Default 1.")
@click.option("--runtime", type=click.Choice(["ort", "torch"]), default=None,
              help="How --max-latency is measured: ort (onnxruntime on a verified export, the default) or torch.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="Threads for --max-latency (default 1).")
@click.option("--latency-runs", type=click.IntRange(3, 100_000), default=None,
              help="Measured runs for --max-latency (default 20; the median and IQR decide).")
@click.option("--baseline", metavar="FILE", help="Stored sizes (JSON) to compare with; fail when a metric grows "
                                                 "by more than --max-growth.")
@click.option("--max-growth", metavar="PCT", help="Allowed growth over the baseline, e.g. 5% (default) or 0%.")
@click.option("--update-baseline", is_flag=True, help="Write the --baseline file from this run (only when every "
                                                      "budget holds) instead of comparing with it.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: a table per model; json; junit: JUnit XML; github: ::error annotations.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the report to FILE (also when a budget fails or a model cannot be loaded) "
                   "instead of stdout; - is stdout.")
@click.option("--junit-xml", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a JUnit XML report to FILE (for CI test-report widgets).")
def check(models, config_path, fail_on_uncounted, input_size, weights, batch_size, baseline, max_growth,
          update_baseline, fmt, output, junit_xml, runtime, threads, latency_runs, **budget_values):
    """Fail (exit 1) when a model exceeds its size budgets; exit 0 when all hold, 2 on bad input.

    \b
    MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn,
    a cnnscope artifact (.pt) or an ONNX file (.onnx).
    With MODEL arguments, the budgets on the command line apply to each of them.
    With none, models and budgets come from [tool.cnnscope.check] in ./pyproject.toml
    (or --config FILE; then MODEL arguments pick entries by name). Budgets given on
    the command line override the config's for every model.
    All models are analysed in this one process, on meta tensors (no weights;
    only --max-latency runs the model for real).

    \b
    Budgets (validated before anything is analysed):
      --max-params 25M        parameters; K/M/G/T = 1e3/1e6/1e9/1e12
      --max-nonzero-params 5M non-zero parameters (unstructured sparsity), read
                              from the weights of an artifact, --weights or .onnx
      --max-macs 4.2G         multiply-accumulates (1 MAC = one multiply-accumulate)
      --max-flops 8.4G        FLOPs = 2 × MACs
      --max-size-mb 100       weight bytes (params + buffers); 100 = 100MB; 95MiB ok
      --max-file-mb 100       bytes of the MODEL file (.onnx / .pt)
      --max-activation-mb 50  bytes written by one forward, batch included
      --max-peak-memory-mb 200  params + buffers + activations alive at once
                              (inference peak, from tensor liveness)
      --max-train-memory-mb 500 params + grads + SGD momentum + saved activations
      --max-macs-at 640=40G   MACs at another input size
      --max-latency 30ms      measured median latency (--runtime ort|torch, --threads);
                              fails only beyond the measured spread (IQR). Real
                              forwards on random weights: needs a quiet machine
      --min-rf 200            receptive field: both axes ≥ 200 px (or HxW per axis)
      --fail-on-uncounted     no op may count 0 MACs for want of a formula

    \b
    Examples:
      cnnscope check resnet18 --max-params 12M --max-macs 1.9G
      cnnscope check                                  # reads ./pyproject.toml
      cnnscope check --baseline sizes.json --update-baseline
      cnnscope check --baseline sizes.json --max-growth 2% --format github
      cnnscope check --format junit -o cnnscope-junit.xml
      cnnscope check mnist_cnn --max-latency 500ms --runtime ort --latency-runs 5
    """
    from ..check.report import render
    from ..check.runner import check_models
    from ..errors import CheckFailed, CnnscopeError
    from ..fileio import check_output_path
    from .options import input_paths

    if output == "-" and junit_xml == "-":
        raise CnnscopeError("-o - and --junit-xml - both ask for standard output; send one of them to a file")
    for path in (output, junit_xml):
        if path and path != "-":
            check_output_path(path, *input_paths())
    report = check_models(models, config=config_path, budgets={k[len("budget_"):]: v for k, v in budget_values.items()},
                          fail_on_uncounted=fail_on_uncounted, input_size=input_size, weights=weights,
                          batch_size=batch_size, baseline=baseline, max_growth=max_growth,
                          update_baseline=update_baseline, runtime=runtime, threads=threads,
                          latency_runs=latency_runs, progress=_progress_bar)
    data = report.to_dict()

    from .options import emit

    errors = report.errors
    if junit_xml == "-":
        click.echo(render(data, "junit"), nl=False)
    elif junit_xml:
        from ..fileio import atomic_write_text

        atomic_write_text(junit_xml, render(data, "junit"))
        if not errors:
            click.echo(f"wrote {junit_xml}", err=True)
    emit(render(data, fmt), output, quiet=bool(errors))

    if errors:
        # bad input, reported as one line; the written report(s) list every model, this one as an error
        more = f" (and {len(errors) - 1} more model(s))" if len(errors) > 1 else ""
        written = [p for p in (output, junit_xml) if p and p != "-"]
        where = f"; report written to {' and '.join(written)}" if written else ""
        raise CnnscopeError(f"{errors[0].error}{more}{where}")
    if not report.passed:
        failed = [(m, c) for m, c in report.checks if not c.passed]
        shown = ", ".join(f"{m.name} {c.metric}{' growth' if c.kind == 'growth' else ''}" for m, c in failed[:4])
        more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
        note = "; baseline not updated" if update_baseline else ""
        raise CheckFailed(f"{len(failed)} of {len(report.checks)} checks failed: {shown}{more}{note}")
