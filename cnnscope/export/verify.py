"""Verification of an exported ONNX file: ``onnx.checker``, then onnxruntime against PyTorch.

The check a user would do by hand, every time: the file is valid ONNX, onnxruntime (CPU, default
graph optimisations — what a deployment runs) loads and runs it on random inputs, and its outputs
match the PyTorch model's on the same inputs.

Parity numbers, per output and reported for the worst one:

- ``max_abs_diff`` = max |ORT − PyTorch| over all elements;
- ``max_rel_diff`` = max_abs_diff / max |PyTorch|, i.e. relative to the output's scale (an
  elementwise ratio explodes on outputs near zero and says nothing about the export);
- pass when ``max_abs_diff ≤ atol + rtol · max |PyTorch|``.

A non-finite value where PyTorch has a finite one (or the reverse) always fails.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5


@dataclass
class ParityRun:
    batch_size: int
    max_abs_diff: float
    max_rel_diff: float
    ref_max_abs: float          # max |PyTorch output|: the scale the relative diff is taken against
    passed: bool
    output_shapes: list[list[int]] = field(default_factory=list)


@dataclass
class VerifyReport:
    checker: str                # "ok", or the checker's message
    runs: list[ParityRun]
    rtol: float
    atol: float
    seconds: float
    error: str | None = None    # onnxruntime could not load or run the file

    @property
    def passed(self) -> bool:
        return self.checker == "ok" and self.error is None and bool(self.runs) and all(r.passed for r in self.runs)

    @property
    def worst(self) -> ParityRun | None:
        return max(self.runs, key=lambda r: (not r.passed, r.max_rel_diff)) if self.runs else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def describe(self) -> str:
        """One line: what was checked and the numbers."""
        if self.checker != "ok":
            return f"onnx.checker failed: {self.checker}"
        if self.error:
            return f"onnxruntime failed: {self.error}"
        parts = [f"batch {r.batch_size}: max abs diff {r.max_abs_diff:.3g}, max rel diff {r.max_rel_diff:.3g}"
                 f"{'' if r.passed else ' (ABOVE TOLERANCE)'}" for r in self.runs]
        return "; ".join(parts) + f" (tolerance: abs ≤ {self.atol:g} + {self.rtol:g} × max|PyTorch|)"


def check_model(path: str | os.PathLike) -> str:
    """``onnx.checker.check_model`` on the file (by path, so > 2 GB files with external data work)."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
    return "ok"


def random_input(shape: tuple[int, ...], seed: int = 0):
    """A reproducible N(0, 1) float32 input."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def torch_outputs(model, x) -> list:
    """The model's outputs on ``x`` as float32 numpy arrays, flattened in ONNX output order."""
    import torch
    from torch.utils._pytree import tree_flatten

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        out = model(x.to(device))
    return [t.detach().float().cpu().numpy() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]


def compare(got: list, expected: list, rtol: float, atol: float, batch_size: int) -> ParityRun:
    import numpy as np

    if len(got) != len(expected):
        return ParityRun(batch_size, float("inf"), float("inf"), 0.0, False, [list(g.shape) for g in got])
    worst_abs, worst_rel, worst_ref, passed = 0.0, 0.0, 0.0, True
    for g, e in zip(got, expected):
        g = np.asarray(g, dtype=np.float64)
        e = np.asarray(e, dtype=np.float64)
        if g.shape != e.shape:
            return ParityRun(batch_size, float("inf"), float("inf"), 0.0, False, [list(x.shape) for x in got])
        finite_e, finite_g = np.isfinite(e), np.isfinite(g)
        if (finite_e != finite_g).any() or (~finite_e & (g != e) & ~(np.isnan(g) & np.isnan(e))).any():
            return ParityRun(batch_size, float("inf"), float("inf"), 0.0, False, [list(x.shape) for x in got])
        diff = np.abs(g[finite_e] - e[finite_e])
        abs_diff = float(diff.max()) if diff.size else 0.0
        ref = float(np.abs(e[finite_e]).max()) if diff.size else 0.0
        rel = abs_diff / ref if ref > 0 else (0.0 if abs_diff == 0 else float("inf"))
        passed &= abs_diff <= atol + rtol * ref
        if rel >= worst_rel:
            worst_abs, worst_rel, worst_ref = abs_diff, rel, ref
    return ParityRun(batch_size, worst_abs, worst_rel, worst_ref, bool(passed), [list(x.shape) for x in got])


def ort_session(path: str | os.PathLike):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def verify_onnx(path: str | os.PathLike, model, input_shape: tuple[int, ...], batch_sizes: list[int] | None = None,
                rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL, cache: dict | None = None) -> VerifyReport:
    """Check ``path`` and compare onnxruntime with ``model`` (a real PyTorch module, eval mode).

    ``input_shape`` is N×C×H×W at the export batch size; ``batch_sizes`` (default: just N) are the
    batch sizes to run — a second one checks a ``--dynamic-batch`` export really is dynamic.
    The input for batch size B is ``random_input(shape, seed=B)``; ``cache`` maps B to
    (input, PyTorch outputs) already computed, and is filled in, so re-verifying costs no forward.
    """
    cache = {} if cache is None else cache
    t0 = time.perf_counter()
    checker = check_model(path)
    if checker != "ok":
        return VerifyReport(checker, [], rtol, atol, time.perf_counter() - t0)
    try:
        sess = ort_session(path)
    except Exception as e:
        return VerifyReport(checker, [], rtol, atol, time.perf_counter() - t0,
                            error=f"cannot load the file: {_first_line(e)}")
    input_name = sess.get_inputs()[0].name
    runs = []
    for b in batch_sizes or [input_shape[0]]:
        shape = (b, *input_shape[1:])
        if b not in cache:
            x = random_input(shape, seed=b)
            cache[b] = (x, torch_outputs(model, x))
        x, expected = cache[b]
        try:
            got = sess.run(None, {input_name: x.numpy()})
        except Exception as e:
            return VerifyReport(checker, runs, rtol, atol, time.perf_counter() - t0,
                                error=f"running batch size {b}: {_first_line(e)}")
        runs.append(compare(got, expected, rtol, atol, b))
    del sess
    return VerifyReport(checker, runs, rtol, atol, time.perf_counter() - t0)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    lines = [l for l in text.splitlines() if l.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"
