"""Model-size gates for CI: budgets, the pyproject config, baselines and report renderers.

Library use (the CLI is `cnnscope check`)::

    from cnnscope.check import CheckTarget, parse_budget, run_checks, render
    t = CheckTarget("lenet5", "lenet5", [parse_budget("max-params", "62K")])
    report = run_checks([t])
    print(render(report.to_dict(), "text")); report.passed   # True: 61,706 ≤ 62,000

Modules: :mod:`.budgets` (metrics, parsing, verdicts), :mod:`.config` (``[tool.cnnscope.check]``),
:mod:`.baseline` (stored sizes and growth), :mod:`.runner` (analyse each model once, judge),
:mod:`.report` (text, json, junit, github). Importing this package does not import torch.
"""
from __future__ import annotations

from .budgets import METRICS, Budget, CheckResult, parse_budget
from .config import CheckConfig, CheckTarget, load_config
from .report import render
from .runner import CheckReport, ModelReport, run_checks

__all__ = ["METRICS", "Budget", "CheckResult", "parse_budget", "CheckConfig", "CheckTarget", "load_config",
           "render", "CheckReport", "ModelReport", "run_checks"]
