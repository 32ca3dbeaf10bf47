"""`cnnscope prune MODEL -o OUT.pt`: structured (channel) or unstructured pruning, optional fine-tuning."""
from __future__ import annotations

import click

from .options import model_options
from .transform_helpers import data_options, transform_output_option



@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--ratio", "-r", metavar="R",
              help="Fraction of the channels of each coupled group to remove, strictly between 0 and 1 "
                   "(0.5 or 50%). With --scope global: of all prunable channels.")
@click.option("--target-macs", metavar="N", help="Instead of --ratio: prune until the model has at most N MACs (2G).")
@click.option("--target-params", metavar="N", help="Instead of --ratio: prune until at most N parameters (10M).")
@click.option("--target-latency", metavar="TIME",
              help="Instead of --ratio: prune until the model measures at most TIME per forward here (20ms), "
                   "from a per-layer latency table (cached) and a measurement of the result (exit 1 if missed).")
@click.option("--runtime", type=click.Choice(["ort", "torch"]), default="ort", show_default=True,
              help="With --target-latency: the runtime the latency is measured on.")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="With --target-latency: intra-op threads of the runtime.")
@click.option("--criterion", "-c", metavar="NAME", default=None,
              help="How channels are ranked: l1 (default; Li et al. 2017), l2, bn (|γ| of BatchNorm, network "
                   "slimming) or random.")
@click.option("--scope", metavar="layer|global", default=None,
              help="layer: the same ratio in every group (structured default); global: one ranking over all "
                   "groups (the default of --unstructured: one magnitude threshold for the whole model).")
@click.option("--ignore", metavar="GLOB", multiple=True,
              help="Layers to keep whole (repeatable), e.g. 'layer4.*' or features.0: no channel they hold is "
                   "removed, so the groups coupled to them are kept too.")
@click.option("--round-to", type=click.IntRange(min=1, max=2**31 - 1), default=None,
              help="Keep channel counts multiples of N (8 or 16 suit most hardware). Default 1; 8 with "
                   "--target-latency (onnxruntime's fast CPU convolutions block channels by 8).")
@click.option("--unstructured", is_flag=True,
              help="Zero the smallest weights instead of removing channels (needs --sparsity). No speed-up.")
@click.option("--sparsity", metavar="S", help="With --unstructured: fraction of conv/linear weights to zero.")
@data_options("pruning")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Seed of --criterion random and data shuffling.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--dry-run", is_flag=True, help="Prune, verify and report, but write nothing (-o not needed).")
@transform_output_option
def prune(model, weights, input_size, batch_size, ratio, target_macs, target_params, target_latency, runtime, threads,
          criterion, scope, ignore,
          round_to, unstructured, sparsity, data, epochs, lr, mean, std, train_batch, device, seed, fmt, dry_run,
          output):
    """Prune MODEL into a smaller artifact (-o), verified before anything is written.

    \b
    Structured (default): removes whole channels, so the result is a smaller
    dense model that runs faster everywhere (PyTorch, ONNX). Coupled layers
    lose the same channels: residual additions, concatenations (DenseNet,
    Inception), grouped/depthwise convs, channel split + shuffle (ShuffleNet),
    squeeze-and-excitation, and flatten → Linear (a VGG channel takes its 7×7
    block of the first FC's inputs). The classifier's outputs are kept.

    \b
    The artifact stores the kept channel indices as a plan on the base model:
    it reloads with torch.load(weights_only=True) and every command reads it.

    \b
    Examples:
      cnnscope prune resnet50 --ratio 0.5 -o resnet50-pruned.pt
      cnnscope prune resnet50 --target-macs 1G --scope global -o r50-1g.pt
      cnnscope prune vgg16_bn --ratio 0.3 --criterion bn --ignore 'features.0' -o v.pt
      cnnscope prune mobilenet_v2 --ratio 0.25 --round-to 8 -o m.pt
      cnnscope prune model.pt --ratio 0.5 --data digits/ --epochs 3 -o small.pt
      cnnscope prune resnet18 --unstructured --sparsity 0.8 -o sparse.pt
      cnnscope prune resnet18 -i 3x64x64 --target-latency 60% --runtime ort -o r18-fast.pt

    \b
    --target-latency TIME (20ms, 0.02s, or 60% of the measured original): the model is
    pruned uniformly to 75/50/25% and each version profiled per layer once (a table, cached
    per machine, runtime and threads); the ratio that the table predicts meets the target is
    applied, then the result is measured (median and IQR, interleaved with the original).
    Missing the target by more than the spread: exit 1, nothing written.
    """
    from ..report.transforms import render_prune_report
    from ..transforms.pipeline import DataOptions, run_prune
    from .transform_helpers import print_report, progress_bar, warn_on_stderr

    scope = scope or ("global" if unstructured else "layer")
    if round_to is None:
        from ..timing.latency_prune import LATENCY_ROUND_TO

        round_to = LATENCY_ROUND_TO if target_latency is not None else 1
    if target_latency is not None:
        for flag, value in (("--ratio", ratio), ("--target-macs", target_macs), ("--target-params", target_params),
                            ("--unstructured", unstructured)):
            if value:
                from ..errors import CnnscopeError

                raise CnnscopeError(f"--target-latency chooses the ratio itself; drop {flag}")
    settings = _validate(model, "0.5" if target_latency is not None else ratio, target_macs, target_params, criterion,
                         scope, round_to, unstructured, sparsity, data, output, dry_run, device)
    run = run_prune
    if target_latency is not None:
        from functools import partial

        from ..timing.latency_prune import parse_target, prune_to_latency

        settings["ratio"] = None
        from .transform_helpers import terminal_progress

        run = partial(prune_to_latency, target=parse_target(target_latency), runtime=runtime, threads=threads,
                      latency_progress=terminal_progress)
    report = run(model, output=None if dry_run else output, weights=weights, input_size=input_size,
                       batch_size=batch_size, unstructured=unstructured, sparsity=settings["sparsity"],
                       ratio=settings["ratio"], target_macs=settings["target_macs"],
                       target_params=settings["target_params"], criterion=settings["criterion"], scope=scope,
                       ignore=ignore, round_to=round_to, seed=seed,
                       data=DataOptions(data, epochs, lr, mean, std, train_batch, device), progress=progress_bar,
                       warn=warn_on_stderr).to_dict()
    print_report(report, fmt, render_prune_report, None if dry_run else output)


# --------------------------------------------------------------------------------- helpers
def _validate(model, ratio, target_macs, target_params, criterion, scope, round_to, unstructured, sparsity,
              data, output, dry_run, device) -> dict:
    """Every option error before any work: one line, exit 2."""
    from ..errors import CnnscopeError
    from ..units import parse_count, parse_fraction

    from .transform_helpers import check_output

    check_output(output, dry_run, "pruned")
    settings = {"ratio": None, "target_macs": None, "target_params": None, "criterion": criterion or "l1",
                "sparsity": None}
    if unstructured:
        if sparsity is None:
            raise CnnscopeError("--unstructured needs --sparsity S, the fraction of weights to zero (e.g. 0.8)")
        for flag, value in (("--ratio", ratio), ("--target-macs", target_macs), ("--target-params", target_params),
                            ("--criterion", criterion)):
            if value is not None:
                raise CnnscopeError(f"{flag} applies to structured pruning; with --unstructured use --sparsity")
        if round_to != 1:
            raise CnnscopeError("--round-to applies to structured pruning, not --unstructured")
        settings["sparsity"] = parse_fraction(sparsity, "--sparsity")
        if not 0 < settings["sparsity"] < 1:
            raise CnnscopeError(f"--sparsity must be strictly between 0 and 1, got {sparsity}")
        from ..transforms.prune import SCOPES

        if scope not in SCOPES:
            from ..errors import UnknownNameError

            raise UnknownNameError("scope", scope, SCOPES)
        return settings
    if sparsity is not None:
        raise CnnscopeError("--sparsity needs --unstructured (structured pruning takes --ratio or a target)")
    if ratio is not None:
        settings["ratio"] = parse_fraction(ratio, "--ratio")
    if target_macs is not None:
        settings["target_macs"] = parse_count(target_macs, "--target-macs")
    if target_params is not None:
        settings["target_params"] = parse_count(target_params, "--target-params")
    from ..transforms.prune import validate_options

    validate_options(settings["ratio"], settings["criterion"], scope, settings["target_macs"],
                     settings["target_params"], round_to)
    return settings
