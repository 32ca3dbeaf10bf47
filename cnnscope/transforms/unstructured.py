"""Unstructured (magnitude) pruning: zero the smallest weights of every conv and linear layer.

The result is an ordinary dense state dict with zeros in it: no masks, no hooks, no
re-parametrisation (``torch.nn.utils.prune`` leaves ``weight_orig`` + ``weight_mask`` behind), so
the artifact stays plain and every tool reads it. Dense runtimes (PyTorch, onnxruntime) still
multiply every zero, so this makes nothing faster or smaller on disk; it pays off only with sparse
kernels or compression, and as a study of how many weights a network needs.

``scope="global"`` ranks all prunable weights together (one magnitude threshold for the model);
``scope="layer"`` zeroes the same fraction of every layer. Exactly ``round(S·n)`` weights are
zeroed (ties broken by position), so the achieved sparsity equals the request up to rounding.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import CnnscopeError
from .common import TransformResult
from .coupling import ignored_modules, one_thread
from .prune import SCOPES, param_behind

NO_SPEEDUP = ("unstructured pruning only zeroes weights: dense runtimes (PyTorch, onnxruntime) still compute "
              "every zero, so the model is neither faster nor smaller on disk; use structured pruning "
              "(without --unstructured) for a smaller, faster model")


def prunable_weights(analysis, model: nn.Module, ignore: Iterable[str] = ()) -> list[str]:
    """Names of the weights of the multiply-accumulate ops (convs, linears), in execution order."""
    params = dict(model.named_parameters())
    skip = ignored_modules(model, ignore) if ignore else set()
    names: list[str] = []
    graph = analysis.graph
    for node in graph.ops():
        if not node.macs:
            continue
        for v in node.inputs:
            name = param_behind(graph, v)
            if name in params and params[name].dim() >= 2 and name not in names:
                if name.rsplit(".", 1)[0] not in skip:
                    names.append(name)
                break
    return names


def _smallest(magnitude: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of exactly ``k`` smallest entries (ties: first positions first)."""
    mask = torch.zeros_like(magnitude, dtype=torch.bool)
    if k <= 0:
        return mask
    if k >= magnitude.numel():
        return ~mask
    thr = magnitude.kthvalue(k).values
    mask = magnitude < thr
    need = k - int(mask.sum())
    if need > 0:
        mask[(magnitude == thr).nonzero().flatten()[:need]] = True
    return mask


def prune_unstructured(model: nn.Module, sparsity: float, *, scope: str = "global", ignore: Iterable[str] = (),
                       input_size: Any = None, batch_size: int = 1, analysis=None,
                       inplace: bool = False) -> TransformResult:
    """Zero the fraction ``sparsity`` of smallest-magnitude conv/linear weights."""
    from ..analysis.engine import analyze

    if not (0.0 < float(sparsity) < 1.0):
        raise CnnscopeError(f"--sparsity must be a fraction strictly between 0 and 1 (e.g. 0.8 zeroes 80% of the "
                            f"weights), got {sparsity}")
    if scope not in SCOPES:
        from ..errors import UnknownNameError

        raise UnknownNameError("scope", scope, SCOPES)
    if analysis is None:
        analysis = analyze(model, input_size=input_size, batch_size=batch_size)
    names = prunable_weights(analysis, model, ignore)
    if not names:
        raise CnnscopeError("no conv or linear weights to prune (all ignored?)")
    out = model if inplace else copy.deepcopy(model)
    params = dict(out.named_parameters())
    with torch.no_grad(), one_thread():
        weights = [params[n] for n in names]
        if scope == "global":
            flat = torch.cat([w.detach().abs().flatten().float() for w in weights])
            masks = torch.split(_smallest(flat, round(float(sparsity) * flat.numel())), [w.numel() for w in weights])
        else:
            masks = [_smallest(w.detach().abs().flatten().float(), round(float(sparsity) * w.numel()))
                     for w in weights]
        layers = []
        for name, w, mask in zip(names, weights, masks):
            w.masked_fill_(mask.view_as(w), 0.0)
            zeros = int((w == 0).sum())
            layers.append({"name": name, "numel": w.numel(), "zeros": zeros, "sparsity": zeros / w.numel()})
        total_n = sum(r["numel"] for r in layers)
        total_z = sum(r["zeros"] for r in layers)
        all_n = sum(p.numel() for p in out.parameters())
        all_z = sum(int((p == 0).sum()) for p in out.parameters())
    details = {
        "method": "unstructured", "scope": scope, "sparsity": float(sparsity),
        "layers": layers,
        "total": {"numel": total_n, "zeros": total_z, "sparsity": total_z / total_n},
        "all_params": {"numel": all_n, "zeros": all_z, "sparsity": all_z / all_n if all_n else 0.0},
    }
    return TransformResult(out, [], [NO_SPEEDUP], details)
