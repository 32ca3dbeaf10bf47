"""Replayable edits: the ``plan`` of a cnnscope artifact.

A transform (prune, reduce, stride, factorize) changes a model's structure. The artifact stores the
base model's spec plus an ordered list of plain-data edits; loading builds the base and replays each
edit, then loads the state dict. Each edit kind registers one function here::

    @register_plan_step("prune")
    def apply_prune(model: nn.Module, step: dict) -> nn.Module: ...

A step must create new tensors on the device of the tensors it replaces (meta while analysing), and
must be deterministic: replaying it on the base model gives the same structure every time.
"""
from __future__ import annotations

import importlib
from typing import Callable

from torch import nn

from ..errors import CnnscopeError

PlanStep = Callable[[nn.Module, dict], nn.Module]
_STEPS: dict[str, PlanStep] = {}

#: modules that register steps, imported on first replay so loading stays cheap
_STEP_MODULES = (
    "cnnscope.transforms.prune",
    "cnnscope.transforms.rewrites",
)


def register_plan_step(kind: str) -> Callable[[PlanStep], PlanStep]:
    def deco(fn: PlanStep) -> PlanStep:
        _STEPS[kind] = fn
        return fn

    return deco


def _load_step_modules() -> None:
    for mod in _STEP_MODULES:
        importlib.import_module(mod)


def replay(model: nn.Module, plan: list[dict]) -> nn.Module:
    if not plan:
        return model
    _load_step_modules()
    for i, step in enumerate(plan):
        kind = step.get("kind") if isinstance(step, dict) else None
        if kind not in _STEPS:
            raise CnnscopeError(
                f"artifact plan step {i} has unknown kind '{kind}'; it was written by a newer cnnscope "
                f"(known: {', '.join(sorted(_STEPS)) or 'none'})")
        try:
            model = _STEPS[kind](model, step)
        except CnnscopeError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError, AssertionError) as e:
            # a step read from a file that does not fit this model (or is malformed) is bad input
            text = str(e).strip().splitlines()
            raise CnnscopeError(f"artifact plan step {i} ('{kind}') does not apply to this model: "
                                f"{type(e).__name__}{': ' + text[0][:160] if text else ''}") from None
    return model
