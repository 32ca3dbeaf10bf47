"""The list of models cnnscope knows, with their size (for `cnnscope list`)."""
from __future__ import annotations

from typing import Iterable


def catalog(pattern: str | None = None, exact: bool = False, progress=None) -> list[dict]:
    """One row per model name matching the glob ``pattern``.

    ``params`` are exact. ``macs`` is exact for built-in models (computed here) and, with ``exact``, for
    torchvision ones too (each analysed on meta tensors at its weights' input size); otherwise it is None
    for torchvision rows and ``gmacs`` carries torchvision's published ``_ops``, which is rounded to
    three decimals (resnet18: 1.814, where the exact count is 1,814,073,344). ``progress(items, label)``
    sees the models being analysed (see :mod:`cnnscope.progress`).
    """
    import fnmatch

    from .analysis.summary import summary
    from .loading.builtin_models import BUILTINS
    from .loading.torchvision_models import classification_names, published_stats
    from .progress import no_progress

    def wanted(names: Iterable[str]) -> list[str]:
        return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]

    rows = []
    for name in wanted(BUILTINS):
        _, size, desc = BUILTINS[name]
        s = summary(name)
        rows.append({"name": name, "source": "built-in", "input_size": list(size), "params": s.totals.params,
                     "macs": s.totals.macs, "gmacs": s.totals.macs / 1e9, "note": f"computed ({desc})"})
    names = wanted(classification_names())
    with (progress or no_progress)(names, "analysing") as items:
        for name in items:
            st = published_stats(name)
            macs = summary(name, input_size=tuple(st["input_size"])).totals.macs if exact else None
            rows.append({"name": name, "source": "torchvision", "input_size": list(st["input_size"]),
                         "params": st["params"], "macs": macs, "gmacs": st["gmacs"],
                         "note": f"torchvision {st['weights']} meta" + ("; MACs computed" if exact else "")})
    return sorted(rows, key=lambda r: r["name"])
