"""Build models without allocating parameter memory.

The analysis runs on the ``meta`` device: tensors with shapes and no storage. ``with
torch.device("meta")`` is the fast way, but some constructors compute with tensors (torchvision's
RegNets call ``.tolist()`` on a computed tensor), which fails on meta. The fallback constructs on the
CPU while every parameter and buffer is turned into a meta tensor the moment it is registered, so
at most one freshly ``torch.empty``'d (untouched, hence unpaged) tensor exists at a time and
initialisers run on meta tensors for free.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Callable, Iterator, TypeVar

import torch
from torch import nn

T = TypeVar("T")


@contextlib.contextmanager
def _params_born_on_meta() -> Iterator[None]:
    orig_param = nn.Module.register_parameter
    orig_buffer = nn.Module.register_buffer

    def register_parameter(self, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        orig_param(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        orig_buffer(self, name, tensor, persistent=persistent)

    nn.Module.register_parameter = register_parameter
    nn.Module.register_buffer = register_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter = orig_param
        nn.Module.register_buffer = orig_buffer


def build_on_meta(builder: Callable[[], T]) -> T:
    """Call ``builder()`` so that every parameter and buffer ends up on the meta device."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return builder()
        except (NotImplementedError, RuntimeError):
            pass
        with _params_born_on_meta():
            model = builder()
    if isinstance(model, nn.Module):
        # attributes assigned directly (not through register_*) may still be real: move them too
        model = model.to("meta")
    return model


def meta_shadow(model: nn.Module) -> nn.Module:
    """A structural copy of ``model`` whose parameters and buffers are meta tensors.

    The user's model is neither moved nor mutated, and no weight memory is copied: ``deepcopy`` is
    given the meta stand-ins in its memo, so it never touches the real tensors.
    """
    memo: dict[int, object] = {}
    for p in model.parameters(recurse=True):
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers(recurse=True):
        memo[id(b)] = torch.empty_like(b, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shadow = copy.deepcopy(model, memo)
    strip_user_hooks(shadow)
    return shadow


#: the per-module hook tables a forward runs
HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _is_torch_hook(hook) -> bool:
    """Hooks torch itself installs for a module to work (weight_norm, spectral_norm, pruning masks)."""
    import inspect

    target = getattr(hook, "func", hook)        # functools.partial
    if inspect.isfunction(target) or inspect.ismethod(target):
        module = getattr(target, "__module__", "") or ""
    else:
        module = type(target).__module__
    return module == "torch" or module.startswith("torch.")


def strip_user_hooks(model: nn.Module) -> None:
    """Remove the user's forward/backward hooks from ``model`` (a copy cnnscope owns), so they never
    run on cnnscope's meta tensors nor store them in the user's objects. Hooks torch installs for
    the module to compute correctly (``weight_norm``'s pre-hook, ...) are kept."""
    for m in model.modules():
        for table in HOOK_TABLES:
            hooks = getattr(m, table, None)
            if not hooks:
                continue
            object.__setattr__(m, table, type(hooks)((k, h) for k, h in hooks.items() if _is_torch_hook(h)))
        kept = set(getattr(m, "_forward_hooks", {})) | set(getattr(m, "_forward_pre_hooks", {}))
        for flags_table in ("_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                            "_forward_pre_hooks_with_kwargs"):
            flags = getattr(m, flags_table, None)
            if flags:
                object.__setattr__(m, flags_table, type(flags)((k, v) for k, v in flags.items() if k in kept))


def is_meta(model: nn.Module) -> bool:
    return any(t.device.type == "meta" for t in list(model.parameters()) + list(model.buffers()))
