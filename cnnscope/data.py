"""Image data for fine-tuning and accuracy: an ImageFolder tree ``DIR/train/<class>/*.png`` and
``DIR/val/<class>/*.png`` (class = folder name; labels are the sorted folder names, as in
``torchvision.datasets.ImageFolder``, which reads them).

Preprocessing, exactly and nothing else (no augmentation, no cropping):

1. decode and convert to the model's channel count: 1 → grayscale (PIL "L"), 3 → RGB, 4 → RGBA;
2. resize to the model's input size H×W (bilinear; the aspect ratio is not kept);
3. scale to [0, 1] (``ToTensor``);
4. normalise ``(x − mean) / std`` per channel: with the mean/std of the torchvision weights the
   model was given (``--weights IMAGENET1K_V2``), or with ``--mean/--std``; otherwise not at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import CnnscopeError

PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass
class Normalisation:
    mean: list[float]
    std: list[float]
    source: str          # where the numbers come from, for the report


@dataclass
class DataSplits:
    train: Any           # torch DataLoader
    val: Any
    classes: list[str]
    train_size: int
    val_size: int


def parse_floats(text: str, what: str, channels: int) -> list[float]:
    """``"0.485,0.456,0.406"`` → three floats; one value is repeated for every channel."""
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise CnnscopeError(f"malformed {what} '{text}': expected comma-separated numbers such as "
                            f"0.485,0.456,0.406") from None
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise CnnscopeError(f"{what} has {len(values)} values but the model takes {channels} channels")
    return values


def normalisation_for(src, channels: int, mean: str | None = None, std: str | None = None) -> Normalisation | None:
    """``--mean/--std`` if given, else the torchvision weights' own, else None (no normalisation)."""
    if (mean is None) != (std is None):
        raise CnnscopeError("give both --mean and --std, or neither")
    if mean is not None:
        m, s = parse_floats(mean, "--mean", channels), parse_floats(std, "--std", channels)
        if any(v <= 0 for v in s):
            raise CnnscopeError(f"--std must be positive, got {std}")
        return Normalisation(m, s, "--mean/--std")
    base = getattr(src, "base", None) or {}
    if base.get("source") == "torchvision" and base.get("weights"):
        from .loading.torchvision_models import resolve_weights

        preset = resolve_weights(base["name"], base["weights"]).transforms()
        if channels == len(preset.mean):
            return Normalisation(list(preset.mean), list(preset.std), f"{base['name']} {base['weights']} weights")
    return None


def image_transform(input_chw: tuple[int, int, int], norm: Normalisation | None):
    """The preprocessing above as a callable PIL image → tensor (C, H, W)."""
    from torchvision import transforms as T

    steps = [T.Resize((int(input_chw[1]), int(input_chw[2])), antialias=True), T.ToTensor()]
    if norm is not None:
        steps.append(T.Normalize(norm.mean, norm.std))
    return T.Compose(steps)


def _loader_for(channels: int):
    if channels not in PIL_MODES:
        raise CnnscopeError(f"images can be converted to 1, 3 or 4 channels, but the model takes {channels}")
    mode = PIL_MODES[channels]

    def load(path: str):
        from PIL import Image

        from .fileio import require_regular_file

        require_regular_file(path, "image")     # a FIFO among the images must not block the run
        with open(path, "rb") as f:
            return Image.open(f).convert(mode)

    return load


def image_folder(root: str, input_chw: tuple[int, int, int], norm: Normalisation | None):
    """``torchvision.datasets.ImageFolder`` with the preprocessing above; clear errors."""
    from torchvision.datasets import ImageFolder

    if not os.path.isdir(root):
        raise CnnscopeError(f"data folder '{root}' does not exist (expected DIR/train/<class>/ and DIR/val/<class>/)")
    try:
        return ImageFolder(root, transform=image_transform(input_chw, norm), loader=_loader_for(input_chw[0]))
    except FileNotFoundError as e:
        raise CnnscopeError(f"'{root}' holds no images in class folders ({str(e).splitlines()[0][:120]}); "
                            f"expected {root}/<class>/<image>") from None


def data_loaders(data_dir: str, input_chw: tuple[int, int, int], norm: Normalisation | None,
                 batch_size: int = 32, workers: int = 0, seed: int = 0) -> DataSplits:
    """Loaders of ``DIR/train`` (shuffled, seeded) and ``DIR/val`` (in order)."""
    import torch
    from torch.utils.data import DataLoader

    if not os.path.isdir(data_dir):
        raise CnnscopeError(f"--data folder '{data_dir}' does not exist")
    from .fileio import note_read_tree

    note_read_tree(data_dir)     # no output may land among the images
    for split in ("train", "val"):
        if not os.path.isdir(os.path.join(data_dir, split)):
            raise CnnscopeError(f"--data folder '{data_dir}' has no '{split}/' subfolder; expected the ImageFolder "
                                f"layout DIR/train/<class>/... and DIR/val/<class>/...")
    train = image_folder(os.path.join(data_dir, "train"), input_chw, norm)
    val = image_folder(os.path.join(data_dir, "val"), input_chw, norm)
    if train.classes != val.classes:
        only = sorted(set(train.classes) ^ set(val.classes))
        raise CnnscopeError(f"train/ and val/ have different class folders (differing: {', '.join(only[:5])}); "
                            f"labels would not match")
    gen = torch.Generator().manual_seed(seed)
    return DataSplits(
        DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers, generator=gen),
        DataLoader(val, batch_size=batch_size, shuffle=False, num_workers=workers),
        list(train.classes), len(train), len(val))
