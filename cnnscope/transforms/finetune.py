"""Fine-tuning and top-1 accuracy, to recover what pruning cost.

Plain supervised training: SGD with momentum 0.9 and weight decay 1e-4, a cosine learning-rate
schedule from ``lr`` to 0 over all steps, cross-entropy on the main logits (+ 0.4 × each auxiliary
head's loss for GoogLeNet/Inception in training mode, as torchvision's reference recipe). Runs on
CUDA when available (``device="auto"``), else on the CPU; the model is returned on the CPU in eval
mode, ready to be verified and saved.

Progress: the functions take ``progress(iterable, label)``, a context manager yielding the
iterable (the CLI passes ``click.progressbar`` writing to stderr); the library prints nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..errors import CnnscopeError
from ..progress import Progress, no_progress

AUX_WEIGHT = 0.4


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CnnscopeError("--device cuda: no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise CnnscopeError(f"unknown --device '{name}'; choose auto, cpu or cuda")
    return torch.device(name)


@dataclass
class Accuracy:
    correct: int
    total: int

    @property
    def top1(self) -> float:
        """Fraction of images whose highest logit is the true class (0..1)."""
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"top1": self.top1, "correct": self.correct, "total": self.total}


def _logits(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def evaluate(model: nn.Module, loader, device: torch.device | str = "cpu", progress: Progress = no_progress,
             label: str = "evaluating") -> Accuracy:
    """Top-1 accuracy of ``model`` over ``loader`` (model left in eval mode on ``device``)."""
    device = torch.device(device)
    model.to(device).eval()
    correct = total = 0
    with torch.no_grad(), progress(loader, label) as batches:
        for x, y in batches:
            pred = _logits(model(x.to(device))).argmax(1).cpu()
            correct += int((pred == y).sum())
            total += int(y.numel())
    return Accuracy(correct, total)


def fine_tune(model: nn.Module, loader, *, epochs: int, lr: float, device: torch.device | str = "cpu",
              progress: Progress = no_progress, momentum: float = 0.9, weight_decay: float = 1e-4,
              keep_zero: Iterable[str] = ()) -> list[float]:
    """Train ``model`` in place for ``epochs`` over ``loader``; returns the mean loss per epoch.

    ``keep_zero``: parameter names whose zero entries stay zero (after unstructured pruning, so
    fine-tuning does not undo the sparsity): they are zeroed again after every step.
    """
    if epochs < 0:
        raise CnnscopeError(f"--epochs must be 0 or more, got {epochs}")
    if not (lr > 0 and lr < float("inf")):
        raise CnnscopeError(f"--lr must be positive, got {lr}")
    device = torch.device(device)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    named = dict(model.named_parameters())
    masks = [(named[n], named[n] == 0) for n in keep_zero]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        with progress(loader, f"fine-tuning epoch {epoch + 1}/{epochs}") as batches:
            for x, y in batches:
                x, y = x.to(device), y.to(device)
                out = model(x)
                if isinstance(out, (tuple, list)):
                    loss = loss_fn(out[0], y) + AUX_WEIGHT * sum(loss_fn(o, y) for o in out[1:] if o is not None)
                else:
                    loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    for p, zero in masks:
                        p.masked_fill_(zero, 0.0)
                total += float(loss.detach()) * int(y.numel())
                count += int(y.numel())
        history.append(total / max(1, count))
    model.to("cpu").eval()
    return history
