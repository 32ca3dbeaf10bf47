"""The ``[tool.cnnscope.check]`` table of ``pyproject.toml``: which models to check, with what budgets.

Example (see ``examples/ci/pyproject.toml`` and ``docs/ci-gates.md``)::

    [tool.cnnscope.check]
    baseline = "cnnscope-baseline.json"   # optional: fail when a metric grows by more than max-growth
    max-growth = "5%"
    max-params = "30M"                    # optional: budgets here apply to every model below …

    [[tool.cnnscope.check.models]]
    model = "resnet18"                    # any MODEL: name, FILE.py:fn, pkg.mod:fn, artifact .pt, .onnx
    max-params = "12M"                    # … unless the model sets its own
    max-macs = "1.9G"
    max-size-mb = 47
    input-size = "3x224x224"              # optional, like --input-size
    weights = "DEFAULT"                   # optional, like --weights (never downloaded)

Keys may use ``-`` or ``_``. Relative paths (``models/net.py:build``, ``exports/net.onnx``, a weights
file, the baseline) are relative to the config file's folder, so ``--config`` works from anywhere.
Reading TOML uses ``tomllib`` (Python ≥ 3.11) or, on 3.10, ``tomli`` when it is installed; runtime
dependencies do not grow for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CnnscopeError, UnknownNameError
from .budgets import Budget, is_budget_option, normalise_option, parse_budget

TABLE = "[tool.cnnscope.check]"
MODEL_KEYS = ("model", "name", "input-size", "weights", "batch-size")
TOP_KEYS = ("models", "baseline", "max-growth")
_FILE_SUFFIXES = (".onnx", ".pt", ".pth", ".cnnscope")


@dataclass
class CheckTarget:
    """One model to check. ``name`` labels it in reports and the baseline; ``spec`` is what is loaded."""

    name: str
    spec: str
    budgets: list[Budget] = field(default_factory=list)
    input_size: str | None = None
    weights: str | None = None
    batch_size: int = 1
    runtime: str = "ort"           # latency budgets: onnxruntime or PyTorch eager
    threads: int = 1               # latency budgets: intra-op threads
    latency_runs: int = 20         # latency budgets: measured runs (median and IQR)
    origin: str | None = None      # config file the target came from (for annotations)
    line: int | None = None        # 1-based line of its `model = ...` entry, when found


@dataclass
class CheckConfig:
    path: str
    targets: list[CheckTarget]
    baseline: str | None = None
    max_growth: str | None = None


def _load_toml(path: Path) -> dict:
    from ..fileio import load_toml

    return load_toml(path)


def _looks_like_path(spec: str) -> bool:
    lower = spec.lower()
    return lower.endswith(_FILE_SUFFIXES) or ".py:" in lower or os.sep in spec or "/" in spec


def _relative_to(folder: Path, spec: str) -> str:
    """A relative file reference made relative to the config's folder (names and pkg.mod:fn unchanged)."""
    if not _looks_like_path(spec):
        return spec
    file_part, sep, attr = spec.rpartition(":") if ".py:" in spec.lower() else (spec, "", "")
    if os.path.isabs(file_part):
        return spec
    return str(folder / file_part) + (sep + attr if sep else "")


def _find_line(text_lines: list[str], model: str, start: int) -> int | None:
    for i in range(start, len(text_lines)):
        line = text_lines[i].split("#", 1)[0]
        if "model" in line and (f'"{model}"' in line or f"'{model}'" in line):
            return i + 1
    return None


def _str_or_none(value: Any, key: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CnnscopeError(f"{where}: '{key}' must be a string, got {value!r}")
    return str(value)


def _parse_budgets(table: dict, where: str) -> list[Budget]:
    return [parse_budget(k, v, where) for k, v in table.items() if is_budget_option(k)]


def _check_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        k = normalise_option(key)
        if k not in allowed and not is_budget_option(k):
            from .budgets import BY_OPTION

            raise UnknownNameError("config key", key, list(allowed) + list(BY_OPTION), hint=where)


def parse_config(data: dict, path: str | os.PathLike, text: str = "") -> CheckConfig:
    """Validate the check table of an already-parsed TOML document (every budget parsed here)."""
    path = Path(path)
    table = data.get("tool", {}).get("cnnscope", {}).get("check") if isinstance(data.get("tool"), dict) else None
    if not isinstance(table, dict):
        raise CnnscopeError(f"'{path}' has no {TABLE} table; add one (see docs/ci-gates.md) or give MODEL arguments")
    _check_keys(table, TOP_KEYS, f"{TABLE} of {path.name}")
    defaults = _parse_budgets(table, f"{path.name} {TABLE}")
    models = table.get("models")
    if not models:
        raise CnnscopeError(f"{TABLE} in '{path}' lists no models; add [[tool.cnnscope.check.models]] entries "
                            f"with model = \"NAME\"")
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise CnnscopeError(f"'models' in {TABLE} of '{path}' must be an array of tables "
                            f"([[tool.cnnscope.check.models]])")
    folder = path.parent
    lines = text.splitlines()
    targets: list[CheckTarget] = []
    cursor = 0
    for i, entry in enumerate(models, 1):
        where = f"{path.name} models[{i}]"
        entry = {normalise_option(k): v for k, v in entry.items()}
        _check_keys(entry, MODEL_KEYS, where)
        spec = entry.get("model")
        if not isinstance(spec, str) or not spec.strip():
            raise CnnscopeError(f"{where} has no model = \"...\" (a name, FILE.py:fn, artifact .pt or .onnx)")
        budgets = defaults[:]
        own = _parse_budgets(entry, f"{where} ({spec})")
        own_names = {b.metric.name for b in own}
        budgets = [b for b in budgets if b.metric.name not in own_names] + own
        batch = entry.get("batch-size", 1)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise CnnscopeError(f"{where} ({spec}): batch-size must be a positive integer, got {batch!r}")
        weights = _str_or_none(entry.get("weights"), "weights", where)
        if weights is not None and _looks_like_path(weights):
            weights = _relative_to(folder, weights)
        line = _find_line(lines, spec, cursor)
        cursor = line if line else cursor
        targets.append(CheckTarget(
            name=_str_or_none(entry.get("name"), "name", where) or spec,
            spec=_relative_to(folder, spec),
            budgets=budgets,
            input_size=_str_or_none(entry.get("input-size"), "input-size", where),
            weights=weights,
            batch_size=batch,
            origin=str(path),
            line=line,
        ))
    check_unique_names(targets, hint=f"give each entry of {path.name} a distinct name = \"...\"")
    baseline = _str_or_none(table.get("baseline"), "baseline", f"{path.name} {TABLE}")
    if baseline is not None and not os.path.isabs(baseline):
        baseline = str(folder / baseline)
    growth = _str_or_none(table.get("max-growth", table.get("max_growth")), "max-growth", f"{path.name} {TABLE}")
    return CheckConfig(str(path), targets, baseline, growth)


def check_unique_names(targets: list[CheckTarget], hint: str) -> None:
    """Reports and baselines key models by name: two checks of one model need distinct names."""
    seen: set[str] = set()
    for t in targets:
        if t.name in seen:
            raise CnnscopeError(f"model '{t.name}' is listed twice; {hint}")
        seen.add(t.name)


def load_config(path: str | os.PathLike | None = None) -> CheckConfig:
    """Read ``path`` (default: ``pyproject.toml`` in the current directory) and validate it."""
    explicit = path is not None
    p = Path(path) if explicit else Path.cwd() / "pyproject.toml"
    if not p.exists() or (explicit and not p.is_file()):
        if explicit:
            from ..fileio import require_regular_file

            require_regular_file(p, "config file")
        raise CnnscopeError("no MODEL given and no pyproject.toml in the current directory; give MODEL "
                            "arguments, or --config FILE with a [tool.cnnscope.check] table")
    data = _load_toml(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    shown = p if explicit else Path("pyproject.toml")
    return parse_config(data, shown, text)
