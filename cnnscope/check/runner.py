"""Orchestration of `cnnscope check`: analyse every target once, in this process, then judge.

Each model is recorded once by :func:`cnnscope.analysis.engine.analyze` (``.onnx`` files by
:func:`cnnscope.export.onnx_summary.onnx_summary`); every metric is read from that one summary. The
result is a :class:`CheckReport` of plain data that :mod:`cnnscope.check.report` renders.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import CnnscopeError, UnknownNameError
from .budgets import CheckResult, evaluate
from .config import CheckTarget

SCHEMA = "cnnscope.check/1"


@dataclass
class ModelReport:
    name: str
    spec: str
    input_shape: list[int]
    metrics: dict[str, Any]
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    origin: str | None = None
    line: int | None = None
    baseline_missing: bool = False   # a baseline was given but holds no entry for this model
    error: str | None = None         # the model could not be loaded or analysed (bad input)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.spec, "input_shape": self.input_shape, "passed": self.passed,
                "metrics": self.metrics, "checks": [c.to_dict() for c in self.checks],
                "seconds": round(self.seconds, 3), "baseline_missing": self.baseline_missing,
                "origin": self.origin, "line": self.line, "error": self.error}


@dataclass
class CheckReport:
    models: list[ModelReport]
    baseline: str | None = None
    max_growth: str | None = None
    baseline_updated: bool = False

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    @property
    def errors(self) -> list[ModelReport]:
        """Models that could not be loaded or analysed: the run is bad input (exit 2), reported anyway."""
        return [m for m in self.models if m.error is not None]

    @property
    def checks(self) -> list[tuple[ModelReport, CheckResult]]:
        return [(m, c) for m in self.models for c in m.checks]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "passed": self.passed, "baseline": self.baseline, "max_growth": self.max_growth,
                "baseline_updated": self.baseline_updated,
                "convention": "1 MAC = one multiply-accumulate; FLOPs = 2 × MACs; *_bytes in bytes",
                "models": [m.to_dict() for m in self.models]}


def measure(summary: dict[str, Any], file_path: str | None = None) -> dict[str, Any]:
    """The metrics of one model from its summary dict (units: elements, MACs, FLOPs, bytes, pixels)."""
    t = summary["totals"]
    return {
        "input_shape": list(summary["input_shape"]),
        "params": int(t["params"]),
        "nonzero_params": int(t["nonzero_params"]) if t.get("nonzero_params") is not None else None,
        "macs": int(t["macs"]),
        "flops": int(t["flops"]),
        "size_bytes": int(t.get("param_bytes") or 0) + int(t.get("buffer_bytes") or 0),
        "file_bytes": os.path.getsize(file_path) if file_path and os.path.isfile(file_path) else None,
        "activation_bytes": int(t["activation_bytes"]) if t.get("activation_bytes") is not None else None,
        "peak_memory_bytes": int(t["peak_memory_bytes"]) if t.get("peak_memory_bytes") is not None else None,
        "train_memory_bytes": int(summary["training"]["memory_bytes"]) if summary.get("training") else None,
        "rf": t.get("receptive_field"),
        "uncounted_ops": sum(int(u["count"]) for u in summary.get("uncounted_ops") or []),
    }


def _in_context(target: CheckTarget, e: CnnscopeError) -> CnnscopeError:
    where = f"{os.path.basename(target.origin)} " if target.origin else ""
    return CnnscopeError(f"{where}model '{target.name}': {e}")


def resolve_target(target: CheckTarget):
    """The target's :class:`~cnnscope.loading.source.ModelSource`, validated without analysing it, so a
    typo in the fifth model fails before the first is traced."""
    from ..loading.source import resolve

    try:
        if target.spec.lower().endswith(".onnx") and target.weights:
            raise CnnscopeError("an ONNX file carries its weights; drop weights for it")
        return resolve(target.spec, target.weights)
    except CnnscopeError as e:
        raise _in_context(target, e) from None


def summarise_target(target: CheckTarget, src, receptive_field: bool, training: bool = False) -> dict[str, Any]:
    """The summary dict of one target: one recorded graph (or one ONNX read); ``training``: recorded in
    train mode with autograd, adding the training cost (an ONNX file has none: that budget is bad input)."""
    if src.kind == "onnx":
        from ..export.onnx_summary import onnx_summary

        return onnx_summary(src.path, input_size=target.input_size, batch_size=target.batch_size).to_dict()
    from ..analysis.engine import analyze
    from ..analysis.summary import build_summary

    analysis = analyze(src, input_size=target.input_size, batch_size=target.batch_size, training=training)
    analysis.name = target.name
    return build_summary(analysis, receptive_field=receptive_field).to_dict()


def _error_report(target: CheckTarget, message: str) -> ModelReport:
    return ModelReport(target.name, target.spec, [], {}, [], 0.0, target.origin, target.line, error=message)


def check_target(target: CheckTarget, src=None) -> ModelReport:
    """Analyse one target and judge its budgets (not the baseline: see :func:`run_checks`)."""
    src = src if src is not None else resolve_target(target)
    start = time.perf_counter()
    needs_rf = any(b.metric.name == "rf" for b in target.budgets)
    needs_training = any(b.metric.name == "train-memory-mb" for b in target.budgets)
    try:
        summary = summarise_target(target, src, receptive_field=needs_rf, training=needs_training)
        metrics = measure(summary, src.path)
        for b in target.budgets:            # --max-macs-at 640=40G: one more recording, at that size
            if b.metric.at_size:
                other = summarise_target(replace(target, input_size=b.size), src, receptive_field=False)
                metrics[b.metric.field] = int(other["totals"]["macs"])
                metrics[b.metric.field + "_input_shape"] = list(other["input_shape"])
        if any(b.metric.unit == "ms" for b in target.budgets):
            from ..timing.latency import latency_of

            timing, _ = latency_of(src, target.input_size, target.batch_size, target.runtime, target.threads,
                                   target.latency_runs)
            metrics.update(latency_ms=timing.median_ms, latency_iqr_ms=timing.iqr_ms, latency_runs=timing.runs,
                           latency_runtime=target.runtime, latency_threads=target.threads)
        checks = evaluate(target.budgets, metrics, target.name)
    except CnnscopeError as e:
        raise _in_context(target, e) from None
    return ModelReport(target.name, target.spec, metrics["input_shape"], metrics, checks,
                       time.perf_counter() - start, target.origin, target.line)


def run_checks(targets: list[CheckTarget], baseline: str | None = None, max_growth: str | None = None,
               update_baseline: bool = False,
               progress: Callable[[Iterable[CheckTarget]], Any] | None = None) -> CheckReport:
    """Check every target; with ``baseline``, compare growth (or rewrite it with ``update_baseline``).

    Everything the user could get wrong (budgets, the growth allowance, the baseline file) is validated
    before the first model is analysed. The baseline is written only when every budget holds.
    """
    from .baseline import (DEFAULT_MAX_GROWTH, baseline_entry, growth_checks, parse_max_growth, read_baseline,
                           write_baseline)

    growth_text = max_growth or DEFAULT_MAX_GROWTH
    growth = parse_max_growth(growth_text)
    if update_baseline and not baseline:
        raise CnnscopeError("--update-baseline needs --baseline FILE (or baseline = \"FILE\" in the config)")
    stored = None
    if baseline and not update_baseline:
        stored = read_baseline(baseline)
    elif baseline:
        from ..fileio import check_output_path

        check_output_path(baseline)
        if os.path.exists(baseline):
            read_baseline(baseline, will_replace=True)  # refuse to overwrite a file that is not a baseline

    sources, failed = {}, {}
    for t in targets:   # every reference validated before the first model is analysed
        try:
            sources[t.name] = resolve_target(t)
        except CnnscopeError as e:
            failed[t.name] = str(e)
    if any(src.kind != "onnx" for src in sources.values()):
        from ..analysis import engine, summary  # noqa: F401  (import torch once, outside the per-model timings)
    reports = []
    items = progress(targets) if progress else targets
    for target in items:
        if target.name in failed:
            reports.append(_error_report(target, failed[target.name]))
            continue
        try:
            report = check_target(target, sources[target.name])
        except CnnscopeError as e:
            reports.append(_error_report(target, str(e)))
            continue
        except BaseException as e:   # the model's own code exited or raised: an error entry, never a pass
            from ..errors import user_code_error

            err = user_code_error(e, f"model '{target.name}'")
            if err is e:
                raise          # a real signal: stop
            reports.append(_error_report(target, str(err)))
            continue
        if stored is not None:
            entry = stored.get(target.name)
            if entry is None:
                report.baseline_missing = True
            else:
                try:
                    report.checks += growth_checks(target.name, report.metrics, entry, growth, growth_text)
                except CnnscopeError as e:
                    raise CnnscopeError(f"{e} (baseline '{baseline}')") from None
        reports.append(report)
    result = CheckReport(reports, baseline, growth_text if baseline else None)
    if update_baseline and result.passed and not result.errors:
        write_baseline(baseline, {r.name: baseline_entry(r.metrics) for r in reports})
        result.baseline_updated = True
    return result


def check_models(models: Sequence[str] = (), *, config: str | None = None, budgets: Mapping[str, Any] | None = None,
                 fail_on_uncounted: bool = False, input_size: str | None = None, weights: str | None = None,
                 batch_size: int | None = None, baseline: str | None = None, max_growth: str | None = None,
                 update_baseline: bool = False, runtime: str | None = None, threads: int | None = None,
                 latency_runs: int | None = None,
                 progress: Callable[[Iterable[CheckTarget]], Any] | None = None) -> CheckReport:
    """What ``cnnscope check`` does, as a library call: ``check_models(["resnet18"], budgets={"max-params":
    "12M"})``. ``budgets`` maps budget options (``max-params`` or ``max_params``) to their values.

    With ``models`` and no ``config``, the budgets apply to each model. Otherwise the models and budgets
    come from ``[tool.cnnscope.check]`` in ``config`` (default ./pyproject.toml) — ``models`` then pick
    entries by name — and ``budgets``, ``input_size``, ``weights`` and ``batch_size`` override the
    config's for every model; ``runtime`` ("ort"/"torch"), ``threads`` and ``latency_runs`` set how a
    ``max-latency`` budget is measured. Bad input raises :class:`CnnscopeError` before any model is analysed;
    a budget that fails does not raise (read ``.passed``).
    """
    from .budgets import merge_budgets, parse_budget
    from .config import check_unique_names, load_config

    values = {k.replace("_", "-"): v for k, v in (budgets or {}).items() if v is not None}
    if fail_on_uncounted:
        values.setdefault("max-uncounted-ops", "0")
    given = [parse_budget(key, value) for key, value in values.items()]
    if models and not config:
        targets = [CheckTarget(name=m, spec=m, budgets=list(given), input_size=input_size, weights=weights,
                               batch_size=batch_size or 1) for m in models]
        check_unique_names(targets, hint="list each MODEL once")
    else:
        cfg = load_config(config)
        targets = cfg.targets
        if models:
            by_name = {t.name: t for t in targets}
            for m in models:
                if m not in by_name:
                    raise UnknownNameError(f"model in {cfg.path}", m, list(by_name))
            targets = [by_name[m] for m in dict.fromkeys(models)]
        for t in targets:
            t.budgets = merge_budgets(t.budgets, given)
            t.input_size = input_size or t.input_size
            t.weights = weights or t.weights
            t.batch_size = batch_size or t.batch_size
        baseline = baseline or cfg.baseline
        max_growth = max_growth or cfg.max_growth
    if max_growth and not baseline:
        raise CnnscopeError("--max-growth needs --baseline FILE (the sizes to grow from)")
    from ..timing.latency import LATENCY_RUNTIMES

    if runtime is not None and runtime not in LATENCY_RUNTIMES:
        raise UnknownNameError("runtime", runtime, LATENCY_RUNTIMES)
    for what, v, lo in (("--threads", threads, 1), ("--latency-runs", latency_runs, 3)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= 100_000):
            raise CnnscopeError(f"{what} must be a whole number from {lo} to 100,000, got {v}")
    for t in targets:
        t.runtime = runtime or t.runtime
        t.threads = threads or t.threads
        t.latency_runs = latency_runs or t.latency_runs
    if not baseline and not update_baseline and not any(t.budgets for t in targets):
        raise CnnscopeError("no budget given, so nothing would be checked: add one such as --max-params 25M or "
                            "--max-macs 4G (see --help), a [tool.cnnscope.check] budget, or --baseline FILE")
    return run_checks(targets, baseline=baseline, max_growth=max_growth, update_baseline=update_baseline,
                      progress=progress)
