"""Baselines: a stored record of each model's size, so a change that grows a model fails review.

The file is JSON with sorted keys, two-space indentation and one value per line, so a reviewer sees
exactly which number moved::

    {
      "convention": "1 MAC = one multiply-accumulate; FLOPs = 2 × MACs; *_bytes in bytes",
      "models": {
        "lenet5": {
          "activation_bytes": 44984,
          "flops": 833040,
          "input_shape": [1, 1, 28, 28],
          "macs": 416520,
          "params": 61706,
          "size_bytes": 246824
        }
      },
      "schema": "cnnscope.baseline/1"
    }

A metric fails when ``actual > stored × (1 + max_growth)``. Only "bigger is worse" metrics are
compared (params, MACs, FLOPs, weight bytes, file bytes, activation bytes); the receptive field is
not. ``--update-baseline`` rewrites the file with exactly the models of that run (no timings, no
paths, nothing that changes between identical runs). A ``--format json`` check report is accepted as
a baseline too.
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..errors import CnnscopeError
from .budgets import GROWTH, METRICS, CheckResult

SCHEMA = "cnnscope.baseline/1"
REPORT_SCHEMA = "cnnscope.check/1"
CONVENTION = "1 MAC = one multiply-accumulate; FLOPs = 2 × MACs; *_bytes in bytes"
DEFAULT_MAX_GROWTH = "5%"

#: measurement fields a baseline stores and compares
GROWTH_FIELDS = tuple(m.field for m in METRICS.values() if m.growth)
_METRIC_OF_FIELD = {m.field: m for m in METRICS.values()}


def parse_max_growth(text: Any) -> float:
    """``"5%"`` or ``0.05`` -> 0.05. A bare number above 1 is refused: write ``5%``, not ``5``."""
    import math

    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise CnnscopeError(f"malformed --max-growth '{text}': expected a percentage such as 5% (or 0.05)") from None
    if not math.isfinite(value):
        raise CnnscopeError(f"malformed --max-growth '{text}': expected a finite percentage such as 5% (or 0.05)")
    if value < 0:
        raise CnnscopeError(f"malformed --max-growth '{text}': growth allowance must not be negative")
    if not s.endswith("%") and value > 1:
        raise CnnscopeError(f"ambiguous --max-growth '{text}': write {s}% for {s} percent, or a fraction such as 0.05")
    return value


def baseline_entry(measurements: dict[str, Any]) -> dict[str, Any]:
    """What the baseline keeps of one model: its input shape and the growth metrics it has."""
    entry = {"input_shape": list(measurements["input_shape"])}
    for f in GROWTH_FIELDS:
        if measurements.get(f) is not None:
            entry[f] = int(measurements[f])
    return entry


def render_baseline(entries: dict[str, dict[str, Any]]) -> str:
    """Stable text: the same models and sizes always give the same bytes."""
    data = {"schema": SCHEMA, "convention": CONVENTION, "models": entries}
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    # keep shapes on one line ("[1, 3, 224, 224]") so a shape change is one line of diff
    return _collapse_int_lists(text) + "\n"


def _collapse_int_lists(text: str) -> str:
    import re

    return re.sub(r"\[\s*((?:-?\d+,\s*)*-?\d+)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def write_baseline(path: str, entries: dict[str, dict[str, Any]]) -> None:
    from ..fileio import atomic_write_text, check_output_path

    check_output_path(path)
    atomic_write_text(path, render_baseline(entries))


def _not_ours(path: str, why: str) -> CnnscopeError:
    return CnnscopeError(f"'{path}' is not a cnnscope baseline ({why}); point --baseline at another file, "
                         f"or delete it and run `cnnscope check` with --update-baseline")


def read_baseline(path: str, will_replace: bool = False) -> dict[str, dict[str, Any]]:
    """``{model name: entry}`` from a baseline file (or a ``--format json`` check report);
    ``will_replace``: read only to refuse replacing a file that is not a baseline."""
    from ..fileio import require_regular_file

    if not os.path.exists(path):
        raise CnnscopeError(f"baseline '{path}' does not exist; create it by running the same `cnnscope check` "
                            f"with --update-baseline")
    require_regular_file(path, "baseline", will_replace=will_replace)
    if os.path.getsize(path) > 64 * 10**6:
        raise _not_ours(path, f"{os.path.getsize(path):,} bytes; a baseline is a few KB")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except RecursionError:
        raise _not_ours(path, "nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise _not_ours(path, f"not JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or data.get("schema") not in (SCHEMA, REPORT_SCHEMA):
        found = data.get("schema") if isinstance(data, dict) else None
        raise _not_ours(path, f'"schema" is {found!r}, expected "{SCHEMA}"')
    if data["schema"] == REPORT_SCHEMA:
        models = {m.get("name"): {"input_shape": m.get("input_shape"),
                                  **{f: m.get("metrics", {}).get(f) for f in GROWTH_FIELDS}}
                  for m in data.get("models", []) if isinstance(m, dict)}
    else:
        models = data.get("models")
    if not isinstance(models, dict):
        raise _not_ours(path, '"models" is missing or not an object')
    for name, entry in models.items():
        _check_entry(path, name, entry)
    return models


def _check_entry(path: str, name: Any, entry: Any) -> None:
    """The baseline schema of one model: {"input_shape": [positive ints] | null, <metric>: int ≥ 0 | null}."""
    if not isinstance(name, str) or not isinstance(entry, dict):
        raise _not_ours(path, f"the entry of model {str(name)[:60]!r} is not an object")
    for f in GROWTH_FIELDS:
        v = entry.get(f)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2 ** 62):
            raise _not_ours(path, f"the entry of model '{name[:60]}' has {f} = {str(v)[:40]}, not a count")
    shape = entry.get("input_shape")
    if shape is not None and (not isinstance(shape, list) or not 1 <= len(shape) <= 6 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise _not_ours(path, f"the entry of model '{name[:60]}' has a malformed input_shape {str(shape)[:40]}")


def growth_checks(name: str, measurements: dict[str, Any], entry: dict[str, Any], max_growth: float,
                  growth_text: str) -> list[CheckResult]:
    """One GROWTH result per metric stored for ``name``; the limit is ``stored × (1 + max_growth)``."""
    stored_shape = entry.get("input_shape")
    if stored_shape is not None and list(stored_shape) != list(measurements["input_shape"]):
        shape = "×".join(map(str, measurements["input_shape"]))
        raise CnnscopeError(
            f"baseline for '{name}' was recorded at input {'×'.join(map(str, stored_shape))}, this run uses "
            f"{shape}: sizes are not comparable; fix --input-size or refresh it with --update-baseline")
    results = []
    for f in GROWTH_FIELDS:
        stored, actual = entry.get(f), measurements.get(f)
        if stored is None or actual is None:
            continue
        limit = stored * (1 + max_growth)
        growth = None if stored == 0 else actual / stored - 1
        headroom = None if limit == 0 else (limit - actual) / limit
        metric = _METRIC_OF_FIELD[f]
        results.append(CheckResult(metric.name, GROWTH, metric.unit, limit, actual, actual <= limit, headroom,
                                   growth_text, baseline=stored, growth=growth))
    return results
