"""What every transform shares: verification, the before/after report, and writing the artifact.

Order matters and is the same for every command: transform → verify the new model runs and keeps
the output shape(s) → verify the plan replays on the base model to the same structure (so the
artifact will reload) → only then write, atomically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from ..analysis.engine import Analysis, analyze
from ..analysis.summary import Summary, build_summary
from ..errors import CheckFailed
from ..loading.source import ModelSource, build_meta, check_state_dict_fits


@dataclass
class TransformResult:
    """A transformed real model plus the plan steps that rebuild its structure from the base."""

    model: nn.Module
    steps: list[dict]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)   # per-site data for reports (JSON-serialisable)


def output_shapes(analysis: Analysis) -> list[tuple[int, ...]]:
    return [analysis.graph.values[v].shape for v in analysis.graph.outputs]


def verify_runs(model: nn.Module, input_shape: tuple[int, ...], expected: list[tuple[int, ...]]) -> torch.Tensor:
    """Run ``model`` on a real random input; its output shapes must equal ``expected``."""
    x = torch.randn(*input_shape)
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as e:  # the transform produced a broken model: a failed check, not bad input
        raise CheckFailed(f"verification failed: the transformed model does not run ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]}); nothing was written") from None
    got = [tuple(t.shape) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    if got != [tuple(s) for s in expected]:
        raise CheckFailed(f"verification failed: output shape changed from {expected} to {got}; nothing was written")
    return out


def verify_replay(base: dict, plan: list[dict], model: nn.Module) -> None:
    """The artifact's base + plan must rebuild exactly this structure (so it reloads strictly)."""
    rebuilt = build_meta(ModelSource(base=dict(base), plan=list(plan)), check_weights=False)
    try:
        check_state_dict_fits(rebuilt, model.state_dict(), "the transformed model")
    except Exception as e:
        raise CheckFailed(f"verification failed: replaying the plan does not rebuild the model ({e}); "
                          f"nothing was written") from None


def summarize(model_or_src, input_size, batch_size: int = 1) -> Summary:
    return build_summary(analyze(model_or_src, input_size=input_size, batch_size=batch_size))


def finish_transform(src: ModelSource, before: Analysis, result: TransformResult, output: str | None,
                     *, write: bool = True) -> Summary:
    """Verify ``result`` against ``before``, write the artifact to ``output``; return the after-summary.

    ``before`` is the analysis of the input model (its graph gives the expected output shapes and the
    input size, which the artifact stores as its default ``input_size``). Raises :class:`CheckFailed` (exit 1) if verification fails; nothing is written then.
    """
    from ..loading.artifact import artifact_dict, write_artifact

    from ..limits import forward_bytes, require_memory

    input_shape = before.input_shape
    require_memory(forward_bytes(before), f"verifying the result on a real input {tuple(input_shape)}",
                   "use a smaller --input-size or --batch-size")
    verify_runs(result.model, input_shape, output_shapes(before))
    plan = list(src.plan) + list(result.steps)
    verify_replay(src.base, plan, result.model)
    after = summarize(result.model, input_shape[1:], batch_size=input_shape[0])
    after.model = output or f"{before.name} (transformed)"
    if write and output:
        # the artifact remembers the size it was made at: summary and export of it default to that size
        base = {**src.base, "input_size": [int(d) for d in input_shape[1:]]}
        write_artifact(artifact_dict(result.model, base, plan), output, src.path)
    return after
