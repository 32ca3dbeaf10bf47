"""Model-size gates for CI: budgets, the pyproject config, baselines and report renderers.

Library use (the CLI is `cnnscope check`)::

    import cnnscope
    report = cnnscope.check("resnet18", max_params="12M", max_macs="1.9G")
    report.passed; report.to_dict()          # == `cnnscope check resnet18 ... -f json`

    from cnnscope.check import CheckTarget, parse_budget, run_checks, render
    t = CheckTarget("lenet5", "lenet5", [parse_budget("max-params", "62K")])
    report = run_checks([t])
    print(render(report.to_dict(), "text")); report.passed   # True: 61,706 ≤ 62,000

Modules: :mod:`.budgets` (metrics, parsing, verdicts), :mod:`.config` (``[tool.cnnscope.check]``),
:mod:`.baseline` (stored sizes and growth), :mod:`.runner` (analyse each model once, judge),
:mod:`.report` (text, json, junit, github). Importing this package does not import torch.
"""
from __future__ import annotations

import sys
import types

from .budgets import METRICS, Budget, CheckResult, parse_budget
from .config import CheckConfig, CheckTarget, load_config
from .report import render
from .runner import CheckReport, ModelReport, check_models, run_checks

__all__ = ["METRICS", "Budget", "CheckResult", "parse_budget", "CheckConfig", "CheckTarget", "load_config",
           "render", "CheckReport", "ModelReport", "check_models", "run_checks"]


class _CallablePackage(types.ModuleType):
    """``cnnscope.check`` is both this package and the library's ``check`` function: once any
    ``cnnscope.check.*`` module is imported, Python binds the package to ``cnnscope.check``, so the
    package itself answers the call."""

    def __call__(self, *models: str, config=None, trust_code=False, **options) -> CheckReport:
        """``cnnscope.check("resnet18", max_params="12M")``: see :func:`check_models`. Budget keywords
        are the ``--max-…``/``--min-…`` options with underscores; the rest are check_models' options."""
        from ..loading.trust import trusting

        keys = ("fail_on_uncounted", "input_size", "weights", "batch_size", "baseline", "max_growth",
                "update_baseline", "progress")
        kwargs = {k: options.pop(k) for k in keys if k in options}
        with trusting(trust_code):
            return check_models(models, config=config, budgets=options, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
