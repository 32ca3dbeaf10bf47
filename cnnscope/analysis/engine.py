"""Orchestration: MODEL argument or nn.Module → meta model → one recorded graph.

:func:`analyze` is the single entry point every command uses to get the dataflow graph; summary,
receptive field, explain, advise, compare and the transforms all read the :class:`Analysis` it
returns instead of tracing again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import CnnscopeError
from ..graph.dataflow import Graph
from ..loading.source import ModelSource, build_meta, default_input_size, nonzero_params, resolve
from ..units import parse_input_size


@dataclass
class Analysis:
    name: str                     # what the user called the model
    source: ModelSource | None    # None when a live nn.Module was given
    model: nn.Module              # the meta model that was traced
    graph: Graph
    input_shape: tuple[int, ...]  # (N, C, H, W)
    output: Any = None            # the meta output (pytree)
    #: non-zero parameter elements of the real weights (unstructured sparsity), None when they are unknown
    #: (a meta model, a fresh init, named weights not read)
    nonzero_params: int | None = None
    #: ops that ran with no MAC formula and no zero-on-purpose registration (see analysis.costs)
    uncounted: list = field(default_factory=list)


def _first_conv_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.in_channels
    return None


#: spatial rank of a non-image model's first conv -> (what its input is, size grammar, example)
SIGNAL_INPUTS = {1: ("a 1-D signal", "CxL", "2x16000"), 3: ("a 3-D volume or clip", "CxDxHxW", "3x16x112x112")}


def _first_conv_rank(model: nn.Module) -> tuple[int, str]:
    """(number of spatial dims, type name) of the first conv; (2, "") when there is none."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return len(m.kernel_size), type(m).__name__
    return 2, ""


def signal_input_size(name: str, model: nn.Module, input_size: Any) -> tuple[int, ...] | None:
    """(C, *spatial) for a model whose first conv is 1-D or 3-D; None for image (2-D) models.

    The graph, MACs and receptive field work for any number of spatial dims; only the input size
    differs. There is no natural default size for a signal or a clip, so it must be given.
    """
    rank, conv = _first_conv_rank(model)
    if rank == 2 or rank not in SIGNAL_INPUTS:
        return None
    what, grammar, example = SIGNAL_INPUTS[rank]
    if input_size is None:
        raise CnnscopeError(f"{name} starts with a {conv}, so its input is {what}: give its size with "
                            f"--input-size {grammar}, e.g. --input-size {example}")
    if isinstance(input_size, (tuple, list)):
        parts = [str(d) for d in input_size]
        input_size = "x".join(parts)
    else:
        import re

        parts = re.split(r"\s*[x×,]\s*", str(input_size).strip().lower())
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) == rank:
        dims = (_first_conv_channels(model) or 1, *dims)
    if len(dims) != rank + 1 or any(d <= 0 for d in dims):
        raise CnnscopeError(f"malformed input size '{input_size}' for {name}, whose first layer is a {conv}: "
                            f"expected {grammar} with positive integers, e.g. {example}")
    return dims


def split_batch(model: nn.Module, input_size: Any, batch_size: int) -> tuple[Any, int]:
    """Accept a size that includes the batch: N×C×H×W for an image model (N×C×L, N×C×D×H×W for 1-D /
    3-D first convs), as a string ``2x3x224x224`` or a tuple ``(2, 3, 224, 224)``, when its C is the
    first conv's input channels. Returns the size without N and the batch size; an N that contradicts
    an explicit ``--batch-size`` is refused."""
    import re

    if input_size is None:
        return None, batch_size
    if isinstance(input_size, (tuple, list)):
        parts = list(input_size)
    else:
        parts = re.split(r"\s*[x×,]\s*", str(input_size).strip().lower())
    rank, _ = _first_conv_rank(model)
    if len(parts) != rank + 2:
        return input_size, batch_size
    try:
        n, c = int(parts[0]), int(parts[1])
    except (TypeError, ValueError):
        return input_size, batch_size
    if c != (_first_conv_channels(model) or c):
        return input_size, batch_size      # not N×C×…: the size's own checks say what is wrong with it
    if n < 1:
        raise CnnscopeError(f"malformed input size '{input_size}': the batch N must be at least 1")
    if batch_size not in (1, n):
        raise CnnscopeError(f"input size '{input_size}' says batch {n} but --batch-size is {batch_size}; give one")
    rest = parts[1:]
    return (tuple(int(p) for p in rest) if isinstance(input_size, (tuple, list)) else "x".join(rest)), n


def input_chw(name: str, model: nn.Module, input_size: Any, default: Any = None) -> tuple[int, ...]:
    """(C, *spatial) of the input to analyse or export ``model`` on: ``input_size`` if given (CxHxW,
    HxW or one side; CxL / CxDxHxW for 1-D / 3-D first convs), else ``default`` (the model's natural
    size, or None), else C×224×224 with C read from the first conv. 1-D/3-D models need a size."""
    signal = signal_input_size(name, model, input_size if input_size is not None else default)
    if signal is not None:
        return signal
    if default is None:
        default = (_first_conv_channels(model) or 3, 224, 224)
    if input_size is None:
        return tuple(default)
    return parse_input_size(input_size, default_channels=default[0])


def analyze(model_or_spec: nn.Module | str | ModelSource, input_size: Any = None, weights: str | None = None,
            batch_size: int = 1, training: bool = False) -> Analysis:
    """Build ``model_or_spec`` on meta tensors and record its forward pass once.

    The result is the same whatever autograd mode the caller is in (``torch.inference_mode()``,
    ``no_grad`` or grad-enabled): the recording always runs in plain no-grad mode — or, with
    ``training``, in train mode with autograd on (cnnscope's own meta copy is put in train mode; the
    caller's model is untouched), which the training cost (:mod:`.training`) reads.
    """
    import torch

    with torch.inference_mode(False), torch.no_grad():
        return _analyze(model_or_spec, input_size, weights, batch_size, training)


def _analyze(model_or_spec, input_size, weights, batch_size, training=False) -> Analysis:
    import torch

    from ..graph.tracer import trace
    from . import shape_checks  # noqa: F401  (registers the input-too-small checks)
    from .costs import annotate_macs, uncounted_ops

    if batch_size < 1:
        raise CnnscopeError(f"--batch-size must be at least 1, got {batch_size}")
    if isinstance(model_or_spec, nn.Module):
        from ..graph.meta_build import meta_shadow

        src = getattr(model_or_spec, "_cnnscope_source", None)
        nonzero = _nonzero_of_live(model_or_spec)
        model = meta_shadow(model_or_spec).eval()
        name = type(model_or_spec).__name__
        default = default_input_size(src) if src is not None else None
    else:
        src = model_or_spec if isinstance(model_or_spec, ModelSource) else resolve(model_or_spec, weights)
        if src.kind == "onnx":
            raise CnnscopeError(f"'{src.display_name}' is an ONNX file; use `cnnscope summary` on it directly")
        model = build_meta(src)
        nonzero = nonzero_params(src, model)
        name = src.display_name
        default = default_input_size(src) if src.kind in ("torchvision", "builtin") or "input_size" in src.base else None
    input_size, batch_size = split_batch(model, input_size, batch_size)
    shape = (int(batch_size), *input_chw(name, model, input_size, default))
    example = torch.empty(shape, device="meta")
    if training:
        model.train()
    graph, out = trace(model, example, already_meta=True, training=training)
    macs = annotate_macs(graph)
    graph.totals["macs"] = macs
    return Analysis(name, src, model, graph, shape, out, nonzero, uncounted_ops(graph))


def _nonzero_of_live(model: nn.Module) -> int | None:
    """Non-zero elements of a live model's parameters (each shared one once); None on meta."""
    import torch

    params = list(model.parameters())
    if not params or any(p.device.type == "meta" for p in params):
        return None
    return sum(int(torch.count_nonzero(p.detach())) for p in params)
