"""cnnscope artifacts: a model saved as plain data, never as a pickled module.

Format (a dict saved with ``torch.save``, loadable with ``torch.load(weights_only=True)``)::

    {"format": "cnnscope/1",
     "base": {"source": "torchvision"|"builtin"|"code", "name"/"ref": ..., "weights": ..., "kwargs": {...}},
     "plan": [<ordered replayable edits; see cnnscope.loading.plan>],
     "state_dict": {name: tensor}}

Loading builds ``base``, replays ``plan`` and loads ``state_dict`` with ``strict=True``.
"""
from __future__ import annotations

import copy
import os
from typing import Any

from torch import nn

from ..errors import CnnscopeError
from .source import ARTIFACT_FORMAT, ModelSource, build_real, resolve

SOURCE_ATTR = "_cnnscope_source"


def load_model(spec: str | ModelSource, weights: str | None = None, trust_code=False) -> nn.Module:
    """Build MODEL with its weights. An artifact whose base is user code is refused unless
    ``trust_code`` allows it (``True``: the code file beside the artifact; a list: those files or
    modules); see :mod:`cnnscope.loading.trust`."""
    from .trust import trusting

    with trusting(trust_code):
        src = spec if isinstance(spec, ModelSource) else resolve(spec, weights)
        model = build_real(src)
    object.__setattr__(model, SOURCE_ATTR, src)
    return model


def source_of(model: nn.Module) -> ModelSource | None:
    return getattr(model, SOURCE_ATTR, None)


def artifact_dict(model: nn.Module, base: dict[str, Any], plan: list[dict]) -> dict[str, Any]:
    state = model.state_dict()
    sd = type(state)((k, v.detach().clone().contiguous()) for k, v in state.items())
    if hasattr(state, "_metadata"):   # per-module versions: MNASNet refuses to load without them
        sd._metadata = copy.deepcopy(state._metadata)
    if any(v.device.type == "meta" for v in sd.values()):
        raise CnnscopeError("cannot save a model whose weights are on the meta device")
    return {"format": ARTIFACT_FORMAT, "base": copy.deepcopy(base), "plan": copy.deepcopy(plan), "state_dict": sd}


def write_artifact(data: dict[str, Any], path: str | os.PathLike, *inputs: str | None) -> None:
    """Atomic ``torch.save``; refuses to overwrite any of ``inputs``. A code base is stored relative to
    ``path`` with the code file's SHA-256 (see :func:`cnnscope.loading.trust.stored_code_base`)."""
    import torch

    from ..fileio import atomic_write, check_output_path
    from .trust import stored_code_base

    check_output_path(path, *inputs)
    code = str(data["base"].get("ref", "")).rpartition(":")[0] if data["base"].get("source") == "code" else None
    if code:
        check_output_path(path, code)
    data = {**data, "base": stored_code_base(data["base"], path)}
    atomic_write(path, lambda tmp: torch.save(data, tmp))


def save_model(model: nn.Module, path: str | os.PathLike, base: str | None = None,
               plan: list[dict] | None = None) -> None:
    """Save ``model`` as an artifact.

    ``base`` says how to rebuild the architecture (a MODEL string such as ``"resnet18"`` or
    ``"nets.py:build"``); it defaults to the source of a model obtained from :func:`load_model`.
    """
    src = source_of(model)
    if base is not None:
        src = resolve(base)
    if src is None:
        raise CnnscopeError(
            "save_model needs to know how to rebuild this model: pass base='resnet18' or base='file.py:fn', "
            "or get the model from cnnscope.load_model")
    if src.kind == "onnx":
        raise CnnscopeError("an ONNX model cannot be saved as a cnnscope artifact")
    full_plan = list(src.plan) + list(plan or [])
    from .source import build_meta, check_state_dict_fits

    rebuilt = build_meta(ModelSource(base=dict(src.base), plan=full_plan), check_weights=False)
    check_state_dict_fits(rebuilt, model.state_dict(), "the model being saved")
    write_artifact(artifact_dict(model, src.base, full_plan), path, src.path)
