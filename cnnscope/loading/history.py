"""A model's history as lines: the base it was built from, each replayable edit of its plan, and for an
ONNX file written by cnnscope the history it carries in its metadata (``cnnscope.history``)."""
from __future__ import annotations

import json


def describe_step(step: dict) -> str:
    """One line for a plan step of an artifact (prune, reduce, stride, factorize)."""
    kind = step.get("kind", "?")
    if kind == "prune":
        keep = step.get("keep")
        kept = sum(len(v) for v in keep.values()) if isinstance(keep, dict) else None
        return "prune: structured channels" + (f" ({kept:,} channels kept)" if kept else "")
    if kind in ("reduce", "factorize", "stride"):
        sites = step.get("sites") or []
        method = f" --method {step['method']}" if step.get("method") else ""
        return f"{kind}{method}: {len(sites)} site{'s' if len(sites) != 1 else ''}"
    return str(kind)


def history(src) -> list[str]:
    """``["base: resnet18", "prune: …", …]`` for a ModelSource (None: no lines); an ONNX file's own
    ``cnnscope.history`` metadata when it has one (plain strings, never code), else its name."""
    if src is None:
        return []
    if src.kind == "onnx":
        return onnx_history(src.path) or [f"base: {src.display_name}"]
    base = src.base or {}
    start = base.get("name") or base.get("ref") or base.get("path") or src.display_name
    return [f"base: {start}"] + [describe_step(s) for s in (src.plan or [])]


def onnx_history(path) -> list[str]:
    """The ``cnnscope.history`` metadata of an ONNX file: a JSON list of strings, or [] when absent or malformed."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the summary reports an unreadable file; history is optional
        return []
    for prop in proto.metadata_props:
        if prop.key == "cnnscope.history":
            try:
                lines = json.loads(prop.value)
            except ValueError:
                return []
            if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
                return [x[:300] for x in lines[:100]]
    return []
