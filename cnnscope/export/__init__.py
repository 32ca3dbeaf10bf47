"""ONNX export, verification and analysis.

- :func:`export_onnx` (``cnnscope export``): any MODEL source to a verified ``.onnx`` file;
- :func:`verify_onnx`: ``onnx.checker`` plus onnxruntime-vs-PyTorch parity;
- ``cnnscope.export.onnx_summary.onnx_summary`` (``cnnscope summary model.onnx``): per-node params,
  MACs and output shapes (import it from its module: the module and the function share the name).

Imports are lazy: importing this package loads neither torch nor onnx.
"""
from __future__ import annotations

__all__ = ["export_onnx", "ExportReport", "ExportFailed", "verify_onnx", "VerifyReport"]

_WHERE = {
    "export_onnx": "onnx_export", "ExportReport": "onnx_export", "ExportFailed": "onnx_export",
    "verify_onnx": "verify", "VerifyReport": "verify",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(name)
