"""Budgets: the metrics `cnnscope check` measures on a model and the limit each must respect.

Every metric is one entry of :data:`METRICS` (name, direction, unit, where its value comes from);
adding a metric is adding an entry, nothing else changes. Budgets are validated when they are parsed,
before any model is analysed, so a typo fails in a second with exit code 2.

Units (all values are stored exactly, as integers):

=============== ======== =============================================================================
budget          unit     what is measured
=============== ======== =============================================================================
max-params      count    parameter elements (each shared parameter once), suffixes K/M/G/T = 1e3…
max-nonzero-    count    non-zero parameter elements, read from the weights (an artifact, ``--weights``
params                   file or ``.onnx``): what unstructured pruning lowers while ``params`` stays
max-macs        count    multiply-accumulates of one forward at the checked input size and batch
                         (1 MAC = one multiply-accumulate of conv/linear/matmul, torchvision's ``_ops``)
max-flops       count    FLOPs = 2 × MACs (the same measurement, the other convention)
max-size-mb     bytes    weight bytes = parameter bytes + buffer bytes in their stored dtype. The same
                         definition for PyTorch models and ``.onnx`` files (their initializers), so a
                         model and its export compare equal. A bare number means MB (10^6 bytes);
                         ``KB/MB/GB`` are powers of 1000, ``KiB/MiB/GiB`` powers of 1024.
max-file-mb     bytes    bytes of the MODEL file on disk (``.onnx``/``.pt`` only): includes the graph,
                         metadata and any compression, which ``size-mb`` deliberately does not
max-activation- bytes    bytes written by the forward that something reads (new tensors and in-place
mb                       updates, not views), batch included: the working-memory pressure of
                         inference; the same for a model and its ONNX export
max-uncounted-  count    op calls with no MAC formula and no zero-on-purpose registration (the MACs
ops                      leave them out; ``--fail-on-uncounted`` is ``--max-uncounted-ops 0``)
max-latency     ms       measured median latency of one forward on this machine (``--runtime ort``, the
                         default, or ``torch``; ``--threads``), milliseconds; ``30ms``, ``0.03s`` or a bare
                         number of ms. It fails only when the median exceeds the budget by more than the
                         measured spread (IQR): a budget within the noise is not a regression. Needs a quiet
                         machine; never compared with a baseline (another machine, another number)
min-rf          pixels   receptive field of the last spatial feature map: ``N`` needs both axes ≥ N
                         (the smaller axis decides); ``HxW`` checks each axis; "global" passes any
=============== ======== =============================================================================
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CnnscopeError, UnknownNameError
from ..units import parse_bytes, parse_count, parse_duration_ms

#: the check is a ceiling ("max") or a floor ("min")
MAX, MIN, GROWTH = "max", "min", "growth"


def _parse_rf(text: Any, what: str) -> list[int]:
    """``224`` or ``"224"`` -> [224, 224]; ``"100x50"`` -> [100, 50] (height × width, pixels)."""
    if isinstance(text, bool):
        raise CnnscopeError(f"malformed {what} '{text}': expected pixels such as 100 or 100x50")
    if isinstance(text, int):
        dims = [text, text]
    else:
        parts = re.split(r"\s*[x×]\s*", str(text).strip().lower())
        if not all(re.fullmatch(r"[0-9]+", p) for p in parts) or len(parts) not in (1, 2):
            raise CnnscopeError(f"malformed {what} '{text}': expected pixels such as 100 or 100x50 (H×W)")
        dims = [int(p) for p in parts] * (2 if len(parts) == 1 else 1)
    if any(d <= 0 for d in dims):
        raise CnnscopeError(f"malformed {what} '{text}': the receptive field must be at least 1 pixel")
    return dims


def _parse_count(text: Any, what: str) -> int:
    if isinstance(text, bool):
        raise CnnscopeError(f"malformed {what} '{text}': expected a number such as 25M or 4.2G")
    return parse_count(text, what)


def _parse_bytes(text: Any, what: str) -> int:
    if isinstance(text, bool) or (isinstance(text, (int, float)) and text < 0):
        raise CnnscopeError(f"malformed {what} '{text}': expected a size such as 100MB or 95MiB")
    return parse_bytes(text, what)


def _parse_ms(text: Any, what: str) -> float:
    return parse_duration_ms(text, what)


PARSERS: dict[str, Callable[[Any, str], Any]] = {"count": _parse_count, "bytes": _parse_bytes,
                                                  "pixels": _parse_rf, "ms": _parse_ms}


@dataclass(frozen=True)
class Metric:
    """One measurable quantity: ``name`` is what budgets and reports call it."""

    name: str         # "params", "size-mb", "rf"
    direction: str    # MAX or MIN
    unit: str         # "count", "bytes", "pixels" or "ms" (selects the parser and the formatter)
    field: str        # key in the measurements dict (see cnnscope.check.runner.measure)
    help: str
    growth: bool      # whether --max-growth (baseline) applies: only "bigger is worse" metrics
    #: measured at an input size the budget names (``--max-macs-at 640=40G``), not the model's own
    at_size: bool = False

    @property
    def option(self) -> str:
        """The budget's name on the command line and in the config: ``max-params``, ``min-rf``."""
        return f"{self.direction}-{self.name}"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("params", MAX, "count", "params", "parameters (elements), e.g. 25M", True),
    Metric("nonzero-params", MAX, "count", "nonzero_params",
           "non-zero parameters (unstructured sparsity), read from the weights, e.g. 5M", True),
    Metric("macs", MAX, "count", "macs",
           "multiply-accumulates per forward (1 MAC = one multiply-accumulate), e.g. 4.2G", True),
    Metric("flops", MAX, "count", "flops", "FLOPs per forward (= 2 × MACs), e.g. 8.4G", True),
    Metric("size-mb", MAX, "bytes", "size_bytes", "weight bytes (params + buffers), e.g. 100 (MB) or 95MiB", True),
    Metric("file-mb", MAX, "bytes", "file_bytes", "bytes of the MODEL file on disk (.onnx/.pt), e.g. 100", True),
    Metric("activation-mb", MAX, "bytes", "activation_bytes",
           "bytes written by the forward, batch included, e.g. 50", True),
    Metric("macs-at", MAX, "count", "macs_at",
           "MACs at another input size, SIZE=N: 640=40G (the model's own size stays the other budgets')",
           False, at_size=True),
    Metric("peak-memory-mb", MAX, "bytes", "peak_memory_bytes",
           "inference peak memory: params + buffers + the activations alive at once (tensor liveness), "
           "batch included, e.g. 200", True),
    Metric("train-memory-mb", MAX, "bytes", "train_memory_bytes",
           "training memory with SGD (momentum): params + grads + optimizer state + activations saved for the "
           "backward, batch included, e.g. 500", False),
    Metric("latency", MAX, "ms", "latency_ms",
           "measured median latency per forward, e.g. 30ms (see --runtime/--threads; fails only beyond the "
           "measured spread; needs a quiet machine)", False),
    Metric("rf", MIN, "pixels", "rf", "receptive field of the last spatial map, pixels: 200 or 200x100", False),
    Metric("uncounted-ops", MAX, "count", "uncounted_ops",
           "op calls that count 0 MACs only because no formula knows them (0: --fail-on-uncounted)", False),
)}

#: ``max-params`` -> Metric
BY_OPTION: dict[str, Metric] = {m.option: m for m in METRICS.values()}


@dataclass(frozen=True)
class Budget:
    """A validated limit: ``limit`` in the metric's base unit (elements, MACs, bytes, [h, w] pixels)."""

    metric: Metric
    limit: Any
    text: str         # as the user wrote it, for messages
    size: str | None = None   # the input size of an ``at_size`` metric ("640", "3x640x480")

    @property
    def option(self) -> str:
        return self.metric.option


def normalise_option(name: str) -> str:
    """``max_params``, ``--max-params`` and ``max-params`` all name the same budget."""
    return name.strip().lstrip("-").replace("_", "-").lower()


def parse_budget(option: str, value: Any, where: str = "") -> Budget:
    """Validate one budget: ``parse_budget("max-params", "25M")`` -> Budget(params, 25_000_000).

    Raises :class:`CnnscopeError` naming the option (and ``where`` it came from) on a malformed value.
    """
    key = normalise_option(option)
    metric = BY_OPTION.get(key)
    if metric is None:
        raise UnknownNameError("budget", key, list(BY_OPTION), hint=where or "")
    what = f"--{key} budget" + (f" ({where})" if where else "")
    if metric.at_size:
        size, sep, limit_text = str(value).partition("=")
        if not sep or not size.strip() or not limit_text.strip():
            raise CnnscopeError(f"malformed {what} '{value}': expected SIZE=LIMIT, e.g. 640=40G or 3x640x480=40G")
        from ..units import parse_input_size

        parse_input_size(size.strip())          # a malformed size fails here, before anything is analysed
        return Budget(metric, PARSERS[metric.unit](limit_text.strip(), what), str(value), size=size.strip())
    limit = PARSERS[metric.unit](value, what)
    return Budget(metric, limit, str(value))


def is_budget_option(name: str) -> bool:
    return normalise_option(name) in BY_OPTION


@dataclass
class CheckResult:
    """The outcome of one budget (or one baseline growth limit) on one model. Plain data.

    ``limit`` and ``actual`` are in the metric's base unit; ``headroom`` is the fraction of the limit
    still free (0.25 = 25 % below a ceiling; negative = exceeded by that fraction); None when the limit
    is 0 or the actual is "global".
    """

    metric: str                # Metric.name
    kind: str                  # MAX, MIN or GROWTH
    unit: str
    limit: Any
    actual: Any
    passed: bool
    headroom: float | None
    budget_text: str = ""      # as written ("25M", "5%")
    tolerance: Any = None      # "ms" only: the measured spread (IQR) a latency may exceed its budget by
    baseline: Any = None       # GROWTH only: the stored value the limit was derived from
    growth: float | None = None  # GROWTH only: actual ÷ baseline − 1

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("metric", "kind", "unit", "limit", "actual", "passed", "headroom",
                                               "budget_text", "baseline", "growth", "tolerance")}


def _headroom_max(limit: float, actual: float) -> float | None:
    return None if limit == 0 else (limit - actual) / limit


def evaluate_budget(budget: Budget, actual: Any, model: str = "", tolerance: Any = None) -> CheckResult:
    """Compare one measurement with its budget. ``actual`` None means it cannot be measured: bad input."""
    m = budget.metric
    if actual is None:
        reason = {"file-mb": "it is not a file (only .onnx/.pt MODELs have a file size)",
                  "nonzero-params": "its weights are not in a file (a fresh init or named torchvision weights), "
                                    "so their zeros are unknown; check an artifact, --weights FILE or an .onnx",
                  "rf": "no receptive field could be computed for it (no spatial layers, or RF analysis "
                        "unavailable in this install)"}.get(m.name, "this metric is not available for it")
        raise CnnscopeError(f"cannot check --{m.option}: {reason}; drop that budget for this model")
    if m.unit == "pixels":
        if actual == "global":
            return CheckResult(m.name, MIN, m.unit, budget.limit, actual, True, None, budget.text)
        size = list(actual["size"])
        slack = [(a - b) / b for a, b in zip(size, budget.limit)]
        return CheckResult(m.name, MIN, m.unit, budget.limit, size, all(s >= 0 for s in slack), min(slack), budget.text)
    if m.unit == "ms":
        spread = float(tolerance or 0.0)
        return CheckResult(m.name, MAX, m.unit, budget.limit, actual, actual <= budget.limit + spread,
                           _headroom_max(budget.limit, actual), budget.text, tolerance=spread)
    return CheckResult(m.name, MAX, m.unit, budget.limit, actual, actual <= budget.limit,
                       _headroom_max(budget.limit, actual), budget.text)


def evaluate(budgets: list[Budget], measurements: dict[str, Any], model: str = "") -> list[CheckResult]:
    """One :class:`CheckResult` per budget, in the order of :data:`METRICS`."""
    order = list(METRICS)
    return [evaluate_budget(b, measurements.get(b.metric.field), model,
                            measurements.get(b.metric.field.replace("_ms", "_iqr_ms")) if b.metric.unit == "ms" else None)
            for b in sorted(budgets, key=lambda b: order.index(b.metric.name))]


def merge_budgets(base: list[Budget], override: list[Budget]) -> list[Budget]:
    """``override`` (the command line) replaces budgets of the same metric in ``base`` (the config)."""
    names = {b.metric.name for b in override}
    return [b for b in base if b.metric.name not in names] + list(override)
