"""cnnscope's own measurement cache: the machine's peaks and latency tables, per machine.

One JSON file per kind under ``$CNNSCOPE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/cnnscope`` or
``~/.cache/cnnscope``). A cache is a convenience, never an input that decides code: a file that is
missing, unreadable, not plain JSON data or of another version is ignored and measured again; an
unwritable folder only means the next run measures again. Writes are atomic.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1


def cache_dir() -> Path:
    base = os.environ.get("CNNSCOPE_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cnnscope"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(runtime: str, threads: int, device: str = "cpu") -> str:
    """What a measurement depends on: CPU (or GPU) model, core count, runtime and its version, threads."""
    import torch

    if device == "cuda":
        hw = torch.cuda.get_device_name(0)
    else:
        hw = f"{_cpu_model()} ×{os.cpu_count()}"
    if runtime == "ort":
        import onnxruntime

        version = f"onnxruntime {onnxruntime.__version__}"
    else:
        version = f"torch {torch.__version__}"
    return f"{hw} | {device} | {version} | {threads} thread{'s' if threads != 1 else ''}"


def read(kind: str) -> dict[str, Any]:
    """The cached entries of ``kind`` (``{key: entry}``); empty when there is no usable cache."""
    path = cache_dir() / f"{kind}.json"
    try:
        if not path.is_file() or path.stat().st_size > 64 * 2**20:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def write(kind: str, entries: dict[str, Any]) -> bool:
    """Replace the cache of ``kind`` atomically; False (and nothing left behind) when it cannot."""
    folder = cache_dir()
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "entries": entries}, f, indent=1, sort_keys=True)
        os.replace(tmp, folder / f"{kind}.json")
        return True
    except OSError:
        return False
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
