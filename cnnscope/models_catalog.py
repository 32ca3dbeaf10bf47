"""The list of models cnnscope knows, with their size (for `cnnscope list`)."""
from __future__ import annotations


def catalog() -> list[dict]:
    from .analysis.summary import summary
    from .loading.builtin_models import BUILTINS
    from .loading.torchvision_models import classification_names, published_stats

    rows = []
    for name, (_, size, desc) in BUILTINS.items():
        s = summary(name)
        rows.append({"name": name, "source": "built-in", "input_size": list(size), "params": s.totals.params,
                     "macs": s.totals.macs, "note": f"computed ({desc})"})
    for name in classification_names():
        st = published_stats(name)
        rows.append({"name": name, "source": "torchvision", "input_size": list(st["input_size"]),
                     "params": st["params"], "macs": int(round(st["gmacs"] * 1e9)),
                     "note": f"torchvision {st['weights']} meta"})
    return sorted(rows, key=lambda r: r["name"])
