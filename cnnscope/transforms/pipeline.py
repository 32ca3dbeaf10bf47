"""The transform pipeline, once for every transform: load the model with weights and analyse it once,
optionally measure accuracy on ``--data``, transform, verify (runs, output structure, plan replay,
``weights_only`` reload), write atomically, and return a report whose ``to_dict()`` is what the CLI
prints with ``-f json``. The commands parse options, call :func:`run_prune` or :func:`run_rewrite`,
and render.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..progress import Progress, no_progress

PRUNE_SCHEMA = "cnnscope.prune/1"
REWRITE_SCHEMA = "cnnscope.rewrite/1"


def _warn(note: str) -> None:
    warnings.warn(note, stacklevel=3)


def _weights_cached(src) -> bool:
    import os

    from torch.hub import get_dir

    from ..loading.torchvision_models import resolve_weights

    w = resolve_weights(src.base["name"], src.base["weights"])
    return os.path.exists(os.path.join(get_dir(), "checkpoints", os.path.basename(w.url)))


def load_for_transform(model: str, weights: str | None, input_size, batch_size: int = 1, verb: str = "transformed",
                       seed: int = 0, warn: Callable[[str], None] = _warn):
    """(source, real CPU model, its analysis, notes): the model is built once with real weights (the
    artifact's, the --weights file's, or a fresh init) and analysed once. Named torchvision weights
    that are not in the local cache configure the architecture only: the model is transformed with
    fresh weights, said plainly (``warn(note)``, a warning by default, and a note in the report)."""
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
        warn(note)
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

    def __init__(self, data_dir, src, before, mean, std, batch, seed, device, epochs, lr, what,
                 progress: Progress = no_progress):
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
        self.epochs, self.lr, self.what, self.progress = epochs, lr, what, progress
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

        self.accuracy["before"] = evaluate(model, self.splits.val, self.device, self.progress,
                                           f"top-1 before {self.what}").to_dict()
        model.to("cpu")

    def measure_after(self, model, keep_zero=()) -> None:
        """Accuracy after the transform, then fine-tune (``--epochs``) and measure again; the model is
        left on the CPU in eval mode."""
        from ..transforms.finetune import evaluate, fine_tune

        self.accuracy["after"] = evaluate(model, self.splits.val, self.device, self.progress,
                                          f"top-1 after {self.what}").to_dict()
        if self.epochs:
            fine_tune(model, self.splits.train, epochs=self.epochs, lr=self.lr, device=self.device,
                      progress=self.progress, keep_zero=keep_zero)
            self.accuracy["fine_tuned"] = evaluate(model, self.splits.val, self.device, self.progress,
                                                   "top-1 after fine-tuning").to_dict()
            self.accuracy["epochs"] = self.epochs
        self.accuracy.update(val_images=self.splits.val_size, train_images=self.splits.train_size)
        model.to("cpu").eval()

    def as_dict(self) -> dict:
        return dict(self.accuracy)


@dataclass
class DataOptions:
    """``--data`` and its fine-tuning settings (all but ``data`` have the CLI's defaults)."""

    data: str | None = None
    epochs: int = 1
    lr: float = 0.01
    mean: str | None = None
    std: str | None = None
    train_batch: int = 32
    device: str = "auto"


@dataclass
class TransformReport:
    """What a transform did, as plain data: ``to_dict()`` is the command's ``-f json``. ``model`` is the
    transformed (verified) model, not part of the dict."""

    data: dict[str, Any]
    model: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return self.data


def _session(data: DataOptions | None, src, before, seed: int, what: str, progress: Progress):
    if data is None or not data.data:
        return None
    return AccuracySession(data.data, src, before, data.mean, data.std, data.train_batch, seed, data.device,
                           data.epochs, data.lr, what, progress)


def run_prune(model: str, *, output: str | None = None, weights: str | None = None, input_size=None,
              batch_size: int = 1, unstructured: bool = False, sparsity: float | None = None,
              ratio: float | None = None, target_macs: int | None = None, target_params: int | None = None,
              criterion: str = "l1", scope: str | None = None, ignore: Iterable[str] = (), round_to: int = 1,
              seed: int = 0, data: DataOptions | None = None, progress: Progress = no_progress,
              warn: Callable[[str], None] = _warn, ratio_for: Callable | None = None,
              before_write: Callable | None = None) -> TransformReport:
    """Prune MODEL (structured channels, or ``unstructured`` weights to ``sparsity``), verify, and write
    the artifact to ``output`` (None: a dry run, nothing written). Values are parsed already
    (``target_macs`` a count, ``ratio`` a fraction).

    Hooks for targets measured above this layer (``prune --target-latency``): ``ratio_for(real model,
    analysis) -> (ratio, dict, removed classes or None)`` chooses the ratio (or the classes); ``before_write(pruned model) -> dict`` measures the
    result (after any fine-tune) and may raise ``CheckFailed``: nothing is written then. Their dicts are
    the report's ``"target_search"`` and ``"measured"``."""
    from ..analysis.diff import diff_summaries
    from ..analysis.summary import build_summary
    from .common import finish_transform

    scope = scope or ("global" if unstructured else "layer")
    src, real, before, load_notes = load_for_transform(model, weights, input_size, batch_size, verb="pruned",
                                                       seed=seed, warn=warn)
    before_summary = build_summary(before)
    session = _session(data, src, before, seed, "pruning", progress)
    if session is not None:
        session.measure_before(real)
    started = time.perf_counter()
    search = measured = chosen = None
    if ratio_for is not None:
        ratio, search, chosen = ratio_for(real, before)
    if unstructured:
        from .unstructured import prune_unstructured

        result = prune_unstructured(real, sparsity, scope=scope, ignore=list(ignore), analysis=before, inplace=True)
    else:
        from .prune import prune_channels

        result = prune_channels(real, ratio=ratio, criterion=criterion, scope=scope, target_macs=target_macs,
                                target_params=target_params, ignore=list(ignore), round_to=round_to, seed=seed,
                                analysis=before, inplace=True, removed=chosen)
    seconds = time.perf_counter() - started
    if session is not None:
        session.measure_after(result.model, keep_zero=[r["name"] for r in result.details["layers"]]
                              if unstructured else ())
    if before_write is not None:
        measured = before_write(result.model)
    after = finish_transform(src, before, result, output, write=output is not None)
    return TransformReport({
        "schema": PRUNE_SCHEMA, "model": before.name, "output": output,
        "method": "unstructured" if unstructured else "structured",
        "seconds": round(seconds, 3),
        "details": _plain(result.details), "notes": load_notes + list(result.notes),
        "accuracy": session.as_dict() if session else None,
        "diff": diff_summaries(before_summary, after, only_changed=False),
        **({"target_search": search, "measured": measured} if ratio_for is not None else {}),
    }, result.model)


def run_rewrite(kind: str, model: str, *, method: str | None = None, output: str | None = None,
                weights: str | None = None, input_size=None, batch_size: int = 1, ranks=None, layers=(),
                include_stem: bool = False, activation: str | None = None, seed: int = 0,
                data: DataOptions | None = None, progress: Progress = no_progress,
                warn: Callable[[str], None] = _warn) -> TransformReport:
    """``reduce``, ``stride`` or ``factorize`` MODEL (``ranks``: a :class:`~.rewrites.RankSpec`), verify,
    and write the artifact to ``output`` (None: a dry run)."""
    from ..analysis.diff import diff_summaries
    from ..analysis.summary import build_summary
    from .common import finish_transform
    from .rewrites import rewrite

    src, real, before, load_notes = load_for_transform(model, weights, input_size, batch_size, verb="rewrote",
                                                       seed=seed, warn=warn)
    before_summary = build_summary(before)
    session = _session(data, src, before, seed, "the rewrite", progress)
    inputs = None
    if session is not None:
        session.measure_before(real)
        inputs = session.sample_inputs()
    result = rewrite(real, kind, method=method, ranks=ranks, layers=list(layers), include_stem=include_stem,
                     activation=activation, analysis=before, inplace=True, seed=seed, inputs=inputs,
                     progress=progress)
    if session is not None:
        session.measure_after(result.model)
    after = finish_transform(src, before, result, output, write=output is not None)
    diff = diff_summaries(before_summary, after, only_changed=False)
    return TransformReport({
        "schema": REWRITE_SCHEMA, "model": before.name, "output": output, "kind": kind, "method": method,
        "details": _plain(result.details), "notes": load_notes + list(result.notes),
        "error_inputs": f"{len(inputs)} val/ images" if inputs is not None else "random normal",
        "accuracy": session.as_dict() if session else None,
        "sites": site_rows(result.details, diff), "diff": diff,
    }, result.model)


def _plain(o):
    """``o`` with tensors and tuples turned into lists: JSON-ready data."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


def site_rows(details: dict, diff: dict) -> list[dict]:
    """Per rewritten site: params, MACs, RF before/after (summing the new sub-layers), and the error."""
    rows = {lay["name"]: lay for lay in diff["layers"]}
    out = []
    for s in details["sites"]:
        name = s["name"]
        a = rows[name]["a"] or {}
        subs = [lay["b"] for n, lay in rows.items() if (n == name or n.startswith(name + ".")) and lay["b"]]
        b_params = sum(r["params"] or 0 for r in subs if r is not None and r.get("type") != "Sequential") \
            if any(r.get("type") == "Sequential" for r in subs) else sum(r["params"] or 0 for r in subs)
        b_macs = sum(r["macs"] or 0 for r in subs if r.get("type") != "Sequential") \
            if any(r.get("type") == "Sequential" for r in subs) else sum(r["macs"] or 0 for r in subs)
        top = rows[name]["b"] or {}
        out.append({"name": name, "params": [a.get("params"), b_params], "macs": [a.get("macs"), b_macs],
                    "receptive_field": [a.get("receptive_field"), top.get("receptive_field")],
                    "change": _change(s), "rel_error": s.get("rel_error")})
    return out


def _change(s: dict) -> str:
    if "pool" in s:
        how = "fold (exact)" if s["fold"] else "stride"
        return f"{'×'.join(map(str, s['kernel']))} s{s['stride'][0]} p{s['padding'][0]}, {s['pool']} removed ({how})"
    chans = "→".join(map(str, s["channels"]))
    rank = s.get("rank")
    if isinstance(rank, list):
        rank = "×".join(map(str, rank))
    return f"{' + '.join(s['kernels'])} ({chans})" + (f", rank {rank}" if rank is not None else "")
