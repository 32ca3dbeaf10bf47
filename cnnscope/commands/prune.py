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
@click.option("--criterion", "-c", metavar="NAME", default=None,
              help="How channels are ranked: l1 (default; Li et al. 2017), l2, bn (|γ| of BatchNorm, network "
                   "slimming) or random.")
@click.option("--scope", metavar="layer|global", default=None,
              help="layer: the same ratio in every group (structured default); global: one ranking over all "
                   "groups (the default of --unstructured: one magnitude threshold for the whole model).")
@click.option("--ignore", metavar="GLOB", multiple=True,
              help="Layers to keep whole (repeatable), e.g. 'layer4.*' or features.0: no channel they hold is "
                   "removed, so the groups coupled to them are kept too.")
@click.option("--round-to", type=click.IntRange(min=1, max=2**31 - 1), default=1, show_default=True,
              help="Keep channel counts multiples of N (8 or 16 suit most hardware).")
@click.option("--unstructured", is_flag=True,
              help="Zero the smallest weights instead of removing channels (needs --sparsity). No speed-up.")
@click.option("--sparsity", metavar="S", help="With --unstructured: fraction of conv/linear weights to zero.")
@data_options("pruning")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Seed of --criterion random and data shuffling.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--dry-run", is_flag=True, help="Prune, verify and report, but write nothing (-o not needed).")
@transform_output_option
def prune(model, weights, input_size, batch_size, ratio, target_macs, target_params, criterion, scope, ignore,
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
    """
    import json

    from ..report.compare import render_diff_table
    from ..transforms.pipeline import DataOptions, run_prune
    from .transform_helpers import progress_bar, warn_on_stderr

    scope = scope or ("global" if unstructured else "layer")
    settings = _validate(model, ratio, target_macs, target_params, criterion, scope, round_to, unstructured,
                         sparsity, data, output, dry_run, device)
    report = run_prune(model, output=None if dry_run else output, weights=weights, input_size=input_size,
                       batch_size=batch_size, unstructured=unstructured, sparsity=settings["sparsity"],
                       ratio=settings["ratio"], target_macs=settings["target_macs"],
                       target_params=settings["target_params"], criterion=settings["criterion"], scope=scope,
                       ignore=ignore, round_to=round_to, seed=seed,
                       data=DataOptions(data, epochs, lr, mean, std, train_batch, device), progress=progress_bar,
                       warn=warn_on_stderr).to_dict()
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render_report(report, render_diff_table), nl=False)
    if not dry_run:
        click.echo(f"wrote {output}", err=True)


# --------------------------------------------------------------------------------- helpers
def _validate(model, ratio, target_macs, target_params, criterion, scope, round_to, unstructured, sparsity,
              data, output, dry_run, device) -> dict:
    """Every option error before any work: one line, exit 2."""
    from ..errors import CnnscopeError
    from ..units import parse_count, parse_fraction

    if not output and not dry_run:
        raise CnnscopeError("missing -o/--output: say where to write the pruned artifact (or use --dry-run)")
    if output:
        from ..fileio import check_output_path

        from .options import input_paths

        check_output_path(output, *input_paths())
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



# ------------------------------------------------------------------------------- rendering
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_report(report: dict, render_diff_table) -> str:
    """The human-readable report: what was done, before/after totals and layers, channels, accuracy."""
    from tabulate import tabulate

    from ..units import human_count
    from .transform_helpers import render_tail

    d = report["details"]
    lines = []
    if report["method"] == "unstructured":
        lines.append(f"{report['model']}: unstructured pruning to {_pct(d['sparsity'])} sparsity ({d['scope']} "
                     f"scope), {report['seconds']:.2f} s")
        rows = [[r["name"], human_count(r["numel"]), human_count(r["zeros"]), _pct(r["sparsity"])]
                for r in d["layers"][:40]]
        t = d["total"]
        rows.append(["total (conv/linear weights)", human_count(t["numel"]), human_count(t["zeros"]),
                     _pct(t["sparsity"])])
        a = d["all_params"]
        rows.append(["all parameters", human_count(a["numel"]), human_count(a["zeros"]), _pct(a["sparsity"])])
        lines.append(tabulate(rows, headers=["weight", "elements", "zeros", "sparsity"], disable_numparse=True,
                              colalign=("left", "right", "right", "right")))
        if len(d["layers"]) > 40:
            lines.append(f"… and {len(d['layers']) - 40} more layers (use --format json for all)")
    else:
        how = (f"ratio {d['ratio']:.4g}" if d["target"]["macs"] is None and d["target"]["params"] is None else
               "target " + " and ".join(x for x in (
                   d["target"]["macs"] is not None and f"{human_count(d['target']['macs'])} MACs",
                   d["target"]["params"] is not None and f"{human_count(d['target']['params'])} params") if x)
               + f" (ratio {d['ratio']:.4g})")
        lines.append(f"{report['model']}: structured pruning, criterion {d['criterion']}, {d['scope']} scope, {how}, "
                     f"{report['seconds']:.2f} s")
        lines.append("")
        lines.append(render_diff_table(report["diff"], max_rows=0).rstrip("\n").split("\n\n")[0])
        groups = d["groups"]
        pruned = [g for g in groups if g["pruned"]]
        kept = [g for g in groups if not g["pruned"] and g["why_not"]]
        lines.append("")
        summary = f"channel groups: {len(pruned)} of {len(groups)} pruned"
        if kept:
            from collections import Counter

            why = Counter(g["why_not"] for g in kept)
            summary += "; kept whole: " + "; ".join(f"{n}× {w}" for w, n in why.most_common(4))
        lines.append(summary)
        rows = [[r["name"], r["type"], f"{r['in'][0]} → {r['in'][1]}" if r["in"][0] != r["in"][1] else str(r["in"][0]),
                 f"{r['out'][0]} → {r['out'][1]}" if r["out"][0] != r["out"][1] else str(r["out"][0])]
                for r in d["layers"] if r["kind"] != "norm"]     # norm layers follow their conv
        if rows:
            lines.append(tabulate(rows[:40], headers=["layer", "type", "in channels", "out channels"],
                                  disable_numparse=True))
            if len(rows) > 40:
                lines.append(f"… and {len(rows) - 40} more changed layers (use --format json for all)")
        lines.append("MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.")
    lines.extend(render_tail(report, "pruning"))
    return "\n".join(lines) + "\n"
