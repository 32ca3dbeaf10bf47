"""torchvision classification models, configured exactly as torchvision configures them.

``--weights IMAGENET1K_V2`` must give the architecture torchvision builds for those weights
(num_classes, ViT image_size, GoogLeNet/Inception aux heads and input transform) without
downloading anything. We call torchvision's own builder with the weights enum, and while it runs,
``WeightsEnum.get_state_dict`` returns a marker that ``load_state_dict`` skips: every config
decision stays torchvision's, including what the builder does after loading (GoogLeNet drops its
aux heads), and no file is fetched.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

from torch import nn

from ..errors import CnnscopeError, UnknownNameError


class _NotLoaded(dict):
    """The state dict handed to torchvision builders while we only need the architecture."""


@contextlib.contextmanager
def _weights_not_downloaded() -> Iterator[None]:
    from torchvision.models._api import WeightsEnum

    orig_get = WeightsEnum.get_state_dict
    orig_load = nn.Module.load_state_dict

    def get_state_dict(self, *args, **kwargs):
        return _NotLoaded()

    def load_state_dict(self, state_dict, *args, **kwargs):
        if isinstance(state_dict, _NotLoaded):
            return None
        return orig_load(self, state_dict, *args, **kwargs)

    WeightsEnum.get_state_dict = get_state_dict
    nn.Module.load_state_dict = load_state_dict
    try:
        yield
    finally:
        WeightsEnum.get_state_dict = orig_get
        nn.Module.load_state_dict = orig_load


@functools.lru_cache(maxsize=1)
def classification_names() -> tuple[str, ...]:
    import torchvision

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def is_torchvision_name(name: str) -> bool:
    return name in classification_names()


def weights_enum(name: str):
    """The weights enum class of a torchvision model (e.g. ``ResNet50_Weights``)."""
    import torchvision

    return torchvision.models.get_model_weights(name)


def resolve_weights(name: str, weights: str | None):
    """``DEFAULT`` / ``IMAGENET1K_V2`` / ``ResNet50_Weights.IMAGENET1K_V2`` -> the enum member."""
    if weights is None:
        return None
    enum = weights_enum(name)
    short = weights.split(".")[-1]
    if short == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[short]
    except KeyError:
        raise UnknownNameError(f"weights for {name}", weights, ["DEFAULT", *enum.__members__],
                               hint=f"choose one of {', '.join(['DEFAULT', *enum.__members__])}") from None


def build(name: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a torchvision model with the architecture its ``weights`` imply, without loading them."""
    import torchvision

    if not is_torchvision_name(name):
        raise UnknownNameError("model", name, classification_names())
    w = resolve_weights(name, weights)
    with _weights_not_downloaded():
        return torchvision.models.get_model(name, weights=w, **kwargs)


def default_input_size(name: str, weights: str | None = None) -> tuple[int, int, int]:
    """(C, H, W): the weights' crop size when given, else the model's natural size."""
    w = resolve_weights(name, weights) or weights_enum(name).DEFAULT
    crop = None
    if weights is not None:
        try:
            crop = w.transforms().crop_size
        except Exception:  # pragma: no cover - every torchvision classification weight has one
            crop = None
        if crop:
            h = crop[0]
            wd = crop[1] if len(crop) > 1 else crop[0]
            return (3, h, wd)
    if name == "inception_v3":
        return (3, 299, 299)
    # Models without weights: ViT/MaxViT/Swin are built for 224 by default.
    return (3, 224, 224)


def published_stats(name: str) -> dict[str, Any]:
    """torchvision's published numbers for the model's first weights: num_params, GMACs, input size."""
    enum = weights_enum(name)
    first = list(enum)[0]
    meta = first.meta
    crop = first.transforms().crop_size
    return {
        "weights": first.name,
        "params": meta.get("num_params"),
        "gmacs": meta.get("_ops"),
        "input_size": (3, crop[0], crop[-1]),
    }


def load_pretrained_state_dict(name: str, weights: str) -> dict:
    """Real weights, only from the local torch hub cache (cnnscope never downloads)."""
    import os

    from torch.hub import get_dir

    w = resolve_weights(name, weights)
    fname = os.path.basename(w.url)
    path = os.path.join(get_dir(), "checkpoints", fname)
    if not os.path.exists(path):
        raise CnnscopeError(
            f"weights {w} are not in the local cache ({path}); cnnscope never downloads: "
            f"download them once elsewhere, or pass a local state_dict file with --weights FILE.pt")
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
