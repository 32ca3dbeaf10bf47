"""The uncounted-ops report, shared by the ATen MAC pass and the ONNX analysis."""
from __future__ import annotations

from typing import Iterable


def tally(calls: Iterable[tuple[str, str]]) -> list[dict]:
    """``(op, module)`` pairs of op calls no formula counted → ``[{"op", "count", "modules"}]``, most
    frequent first; ``module`` "" is the model itself."""
    seen: dict[str, dict] = {}
    for op, module in calls:
        entry = seen.setdefault(op, {"op": op, "count": 0, "modules": []})
        entry["count"] += 1
        where = module or "(the model)"
        if where not in entry["modules"]:
            entry["modules"].append(where)
    return sorted(seen.values(), key=lambda e: (-e["count"], e["op"]))
