"""The MODEL argument shared by every command, and how each kind of source is built.

A model source is one of:

1. a torchvision classification model name (``resnet50``) or a built-in classic (``lenet5``,
   ``zfnet``, ``mnist_cnn``);
2. user code, ``path/to/file.py:callable`` or ``package.module:callable``, returning an ``nn.Module``;
3. a cnnscope artifact (``.pt``) written by :func:`cnnscope.save_model` or a transform command;
4. an ONNX file (``.onnx``), read by the ONNX analysis only.

:class:`ModelSource` is plain data: ``base`` (how to build the architecture), ``plan`` (edits to
replay) and where the weights are. :func:`build_meta` gives the architecture on the meta device (no
weight memory); :func:`build_real` gives a CPU model with the weights loaded.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CnnscopeError, UnknownNameError

ARTIFACT_FORMAT = "cnnscope/1"
ARTIFACT_SUFFIXES = (".pt", ".pth", ".cnnscope")


@dataclass
class ModelSource:
    base: dict[str, Any]
    plan: list[dict] = field(default_factory=list)
    weights_file: str | None = None      # an artifact or a state_dict file
    weights_in_artifact: bool = False
    display_name: str = ""
    path: str | None = None              # the file the MODEL argument named, if any

    @property
    def kind(self) -> str:
        return self.base["source"]


def all_model_names() -> list[str]:
    from .builtin_models import BUILTINS
    from .torchvision_models import classification_names

    return sorted(set(classification_names()) | set(BUILTINS))


def resolve(spec: str, weights: str | None = None) -> ModelSource:
    """Turn a MODEL argument (and ``--weights``) into a :class:`ModelSource`. Builds nothing."""
    from .builtin_models import BUILTINS

    if not isinstance(spec, str) or not spec.strip():
        raise CnnscopeError("empty MODEL; give a model name (resnet50), FILE.py:callable, or an artifact .pt")
    spec = spec.strip()
    lower = spec.lower()
    if lower.endswith(".onnx"):
        if not os.path.isfile(spec):
            raise CnnscopeError(f"ONNX file '{spec}' does not exist")
        return ModelSource(base={"source": "onnx", "path": os.path.abspath(spec)}, display_name=spec, path=spec)
    if lower.endswith(ARTIFACT_SUFFIXES) and ":" not in spec.replace(":\\", ""):
        src = _artifact_source(spec)
        if weights is not None:
            raise CnnscopeError(f"'{spec}' is an artifact that carries its own weights; drop --weights")
        return src
    if ":" in spec:
        base = {"source": "code", "ref": _normalise_code_ref(spec), "kwargs": {}}
        src = ModelSource(base=base, display_name=spec)
    elif spec in BUILTINS:
        src = ModelSource(base={"source": "builtin", "name": spec, "kwargs": {}}, display_name=spec)
    else:
        from .torchvision_models import is_torchvision_name

        if not is_torchvision_name(spec):
            if os.path.exists(spec):
                raise CnnscopeError(
                    f"'{spec}' is a {'folder' if os.path.isdir(spec) else 'file'} but not a model source: use a "
                    f"cnnscope artifact (.pt), an .onnx file, or FILE.py:callable")
            raise UnknownNameError("model", spec, all_model_names(),
                                   hint="`cnnscope list` shows every name")
        src = ModelSource(base={"source": "torchvision", "name": spec, "weights": None, "kwargs": {}},
                          display_name=spec)
    if weights is not None:
        _apply_weights_option(src, weights)
    return src


def _apply_weights_option(src: ModelSource, weights: str) -> None:
    looks_like_file = os.path.sep in weights or weights.lower().endswith(ARTIFACT_SUFFIXES) or os.path.exists(weights)
    if looks_like_file:
        if not os.path.isfile(weights):
            raise CnnscopeError(f"weights file '{weights}' does not exist")
        src.weights_file = weights
        return
    if src.kind != "torchvision":
        raise CnnscopeError(
            f"--weights '{weights}' is not a file; named weights exist only for torchvision models "
            f"(for {src.display_name} pass a state_dict file)")
    from .torchvision_models import resolve_weights

    member = resolve_weights(src.base["name"], weights)
    src.base["weights"] = member.name


def _normalise_code_ref(spec: str) -> str:
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise CnnscopeError(f"malformed code reference '{spec}'; expected path/to/file.py:callable or package.module:callable")
    if target.endswith(".py"):
        if not os.path.isfile(target):
            raise CnnscopeError(f"Python file '{target}' does not exist (from '{spec}')")
        return f"{os.path.abspath(target)}:{attr}"
    return spec


def _artifact_source(path: str) -> ModelSource:
    data = read_artifact(path, mmap=True)
    return ModelSource(base=dict(data["base"]), plan=list(data["plan"]), weights_file=path,
                       weights_in_artifact=True, display_name=path, path=path)


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (some, e.g. EOFError on an empty file, have none)."""
    lines = str(e).strip().splitlines()
    return lines[0][:120] if lines else type(e).__name__


def _torch_load(path: str, mmap: bool = False):
    """``torch.load(weights_only=True)`` without torch's warnings (about pickle protocols of files
    that are not ours) leaking to stderr: the caller turns failures into one clear line."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def read_artifact(path: str, mmap: bool = True) -> dict:
    """Load an artifact with ``weights_only=True``: no code can run, no module is unpickled."""
    import pickle

    if not os.path.exists(path):
        raise CnnscopeError(f"file '{path}' does not exist")
    if os.path.isdir(path):
        raise CnnscopeError(f"'{path}' is a folder, not a cnnscope artifact")
    try:
        data = _torch_load(path, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise CnnscopeError(
            f"'{path}' is not a cnnscope artifact: it holds pickled objects that weights_only loading refuses "
            f"({_first_line(e)}); save models with cnnscope.save_model") from None
    except Exception as e:  # torch.load on garbage raises many types (KeyError, EOFError, ...)
        if mmap:   # not a zip file (e.g. a plain pickle): the non-mmap load says what it really is
            return read_artifact(path, mmap=False)
        raise CnnscopeError(f"'{path}' is corrupt or truncated, or not a torch file ({_first_line(e)})") from None
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        what = "a plain state_dict" if isinstance(data, dict) and data and all(
            hasattr(v, "shape") for v in data.values()) else "not a cnnscope artifact"
        raise CnnscopeError(
            f"'{path}' is {what} (no \"format\": \"{ARTIFACT_FORMAT}\" entry); pass a state_dict with "
            f"MODEL --weights {path}, or write artifacts with cnnscope.save_model")
    for key in ("base", "plan", "state_dict"):
        if key not in data:
            raise CnnscopeError(f"'{path}' is a damaged cnnscope artifact: its '{key}' entry is missing")
    return data


def read_state_dict(path: str, mmap: bool = True) -> dict:
    """A state_dict from a plain file or from an artifact, loaded with ``weights_only=True``."""
    import pickle

    if path.lower().endswith(ARTIFACT_SUFFIXES):
        try:
            data = _torch_load(path, mmap=mmap)
        except pickle.UnpicklingError:
            raise CnnscopeError(f"'{path}' holds pickled objects that weights_only loading refuses; "
                                f"save a state_dict (model.state_dict()) instead") from None
        except Exception as e:  # torch.load on garbage raises many types (KeyError, EOFError, ...)
            if mmap:
                return read_state_dict(path, mmap=False)
            raise CnnscopeError(f"'{path}' is corrupt or truncated ({_first_line(e)})") from None
    else:
        try:
            data = _torch_load(path)
        except pickle.UnpicklingError:
            raise CnnscopeError(f"'{path}' holds pickled objects that weights_only loading refuses") from None
        except Exception as e:
            raise CnnscopeError(f"'{path}' is corrupt, truncated or not a torch file ({_first_line(e)})") from None
    if isinstance(data, dict) and data.get("format") == ARTIFACT_FORMAT:
        data = data["state_dict"]
    elif isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]  # common training-checkpoint layout
    if not isinstance(data, dict) or not all(hasattr(v, "shape") for v in data.values()):
        raise CnnscopeError(f"'{path}' does not hold a state_dict (a mapping of names to tensors)")
    return data


# ----------------------------------------------------------------------------------------- build

def _call_base(base: dict[str, Any]):
    source = base["source"]
    kwargs = dict(base.get("kwargs") or {})
    if source == "torchvision":
        from .torchvision_models import build

        return build(base["name"], base.get("weights"), **kwargs)
    if source == "builtin":
        from .builtin_models import BUILTINS

        return BUILTINS[base["name"]][0](**kwargs)
    if source == "code":
        return _call_code(base["ref"], kwargs)
    if source == "onnx":
        raise CnnscopeError(f"'{base['path']}' is an ONNX file; this command needs a PyTorch model")
    raise CnnscopeError(f"unknown model source '{source}' in artifact base")


def _call_code(ref: str, kwargs: dict):
    from torch import nn

    target, _, attr = ref.rpartition(":")
    try:
        if target.endswith(".py"):
            mod_name = "cnnscope_user_" + Path(target).stem
            spec = importlib.util.spec_from_file_location(mod_name, target)
            if spec is None or spec.loader is None:
                raise CnnscopeError(f"cannot import '{target}'")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            sys.path.insert(0, str(Path(target).parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(Path(target).parent))
        else:
            module = importlib.import_module(target)
    except CnnscopeError:
        raise
    except ModuleNotFoundError as e:
        raise CnnscopeError(f"cannot import '{target}': {e}") from None
    except Exception as e:  # the user's code failed at import time
        raise CnnscopeError(f"importing '{target}' failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise UnknownNameError(f"callable in {target}", attr,
                               [n for n in dir(module) if not n.startswith("_")])
    try:
        obj = fn(**kwargs) if callable(fn) and not isinstance(fn, nn.Module) else fn
    except (CnnscopeError, RuntimeError, NotImplementedError):
        raise   # build_on_meta retries these off the meta device; _user_code reports them
    except Exception as e:  # the user's constructor failed
        raise CnnscopeError(f"calling '{ref}' failed: {type(e).__name__}: {_first_line(e)}") from None
    if not isinstance(obj, nn.Module):
        raise CnnscopeError(f"'{ref}' returned {type(obj).__name__}, not a torch.nn.Module")
    return obj


@contextlib.contextmanager
def _user_code(base: dict[str, Any]):
    """A user's constructor that fails (also off the meta device) is bad input, not an internal error."""
    try:
        yield
    except (RuntimeError, NotImplementedError) as e:
        if base.get("source") != "code":
            raise
        raise CnnscopeError(f"calling '{base['ref']}' failed: {type(e).__name__}: {_first_line(e)}") from None


def build_meta(src: ModelSource, check_weights: bool = True):
    """The architecture on the meta device, plan replayed; weights are only checked to fit."""
    from .meta_build import build_on_meta
    from .plan import replay

    with _user_code(src.base):
        model = build_on_meta(lambda: _call_base(src.base))
    model = replay(model, src.plan)
    model.eval()
    if check_weights and src.weights_file:
        sd = _state_dict_of(src)
        check_state_dict_fits(model, sd, src.weights_file)
    return model


def _state_dict_of(src: ModelSource) -> dict:
    if src.weights_in_artifact:
        return read_artifact(src.weights_file, mmap=True)["state_dict"]
    return read_state_dict(src.weights_file, mmap=True)


def check_state_dict_fits(model, state_dict: dict, where: str) -> None:
    """Raise a clear error naming the keys that do not fit the architecture."""
    expected = model.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
             for k in expected if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                shown = ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        raise CnnscopeError(f"weights in '{where}' do not fit the architecture: " + "; ".join(parts))


def _build_base(base: dict[str, Any]):
    with _user_code(base):
        return _call_base(base)


def build_real(src: ModelSource):
    """A CPU model with real weights: the artifact's or ``--weights`` file's, else a fresh init."""

    from .plan import replay

    base = dict(src.base)
    if src.kind == "torchvision" and base.get("weights") and not src.weights_file:
        from .torchvision_models import load_pretrained_state_dict

        sd = load_pretrained_state_dict(base["name"], base["weights"])
        model = replay(_build_base(base), src.plan)
        check_state_dict_fits(model, sd, base["weights"])
        model.load_state_dict(sd)
        return model.eval()
    if not src.weights_file:
        model = replay(_build_base(base), src.plan)
        return model.eval()
    sd = _state_dict_of(src)
    model = build_meta(src, check_weights=False)
    check_state_dict_fits(model, sd, src.weights_file)
    cloned = type(sd)((k, v.clone()) for k, v in sd.items())
    if hasattr(sd, "_metadata"):      # keep per-module versions (MNASNet needs them)
        cloned._metadata = sd._metadata
    model.load_state_dict(cloned, strict=True, assign=True)
    if any(t.device.type == "meta" for t in list(model.parameters()) + list(model.buffers())):
        # non-persistent buffers are not in the state dict: build for real and copy the weights in
        model = replay(_build_base(base), src.plan)
        model.load_state_dict(sd, strict=True)
    return model.eval()


def default_input_size(src: ModelSource) -> tuple[int, int, int]:
    """(C, H, W) the model expects when ``--input-size`` is not given."""
    base = src.base
    if "input_size" in base and base["input_size"]:
        return tuple(base["input_size"])  # type: ignore[return-value]
    if src.kind == "torchvision":
        from .torchvision_models import default_input_size as tv_default

        return tv_default(base["name"], base.get("weights"))
    if src.kind == "builtin":
        from .builtin_models import BUILTINS

        return BUILTINS[base["name"]][1]
    return (3, 224, 224)
