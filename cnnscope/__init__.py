"""cnnscope: analyse, compress and export convolutional networks.

Library API (mirrors the CLI)::

    import cnnscope
    s = cnnscope.summary("resnet50")          # Summary; s.to_dict() == `cnnscope summary --format json`
    m = cnnscope.load_model("resnet18")       # an nn.Module with real (fresh or loaded) weights
    cnnscope.save_model(m, "r18.pt")          # artifact: torch.load(weights_only=True) compatible

Importing ``cnnscope`` does not import torch; the functions do, when called.
Convention: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["summary", "load_model", "save_model", "analyze", "CnnscopeError", "__version__"]


def summary(model_or_spec, input_size=None, weights=None, batch_size: int = 1, trust_code=False):
    """Analyse ``model_or_spec`` (nn.Module or MODEL string) on meta tensors; returns a Summary.

    ``trust_code``: an artifact whose base is user code runs it only when this allows it (``True``
    for the code file beside the artifact, or a list of files/modules); see the README's Security.
    An ``.onnx`` path is read as ``cnnscope summary model.onnx`` reads it (its weights are the file's)."""
    import os

    from .analysis.summary import summary as _summary
    from .loading.trust import trusting

    if isinstance(model_or_spec, (str, os.PathLike)) and os.fspath(model_or_spec).lower().endswith(".onnx"):
        if weights is not None:
            from .errors import CnnscopeError

            raise CnnscopeError("an ONNX file carries its weights; drop --weights for it")
        from .export.onnx_summary import onnx_summary

        return onnx_summary(model_or_spec, input_size=input_size, batch_size=batch_size)
    with trusting(trust_code):
        return _summary(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size)


def analyze(model_or_spec, input_size=None, weights=None, batch_size: int = 1, trust_code=False):
    """The recorded dataflow graph and its context (see :class:`cnnscope.analysis.engine.Analysis`)."""
    from .analysis.engine import analyze as _analyze
    from .loading.trust import trusting

    with trusting(trust_code):
        return _analyze(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size)


def load_model(spec: str, weights: str | None = None, trust_code=False):
    """Build MODEL as a real CPU ``nn.Module`` in eval mode, with its weights loaded if it has any.

    An artifact whose base is user code is refused unless ``trust_code`` allows it (``True``: the code
    file stored beside the artifact; a list: those files or modules)."""
    from .loading.artifact import load_model as _load

    return _load(spec, weights=weights, trust_code=trust_code)


def save_model(model, path, base: str | None = None, plan: list | None = None) -> None:
    """Write ``model`` as a cnnscope artifact (see :mod:`cnnscope.loading.artifact`)."""
    from .loading.artifact import save_model as _save

    _save(model, path, base=base, plan=plan)


def __getattr__(name: str):
    if name == "CnnscopeError":
        from .errors import CnnscopeError

        return CnnscopeError
    raise AttributeError(name)
