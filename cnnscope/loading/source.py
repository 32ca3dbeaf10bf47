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
from ..fileio import note_read, require_regular_file
from .trust import Trust, check_kwargs, check_reference, user_code_error

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


def resolve(spec: str, weights: str | None = None, trust=None) -> ModelSource:
    """Turn a MODEL argument (and ``--weights``) into a :class:`ModelSource`. Builds nothing.

    ``trust`` (see :mod:`cnnscope.loading.trust`) says which code an *artifact* may run; default: the
    policy in force (:func:`cnnscope.loading.trust.current`), which allows none. Code the MODEL
    argument itself names is the caller's choice and needs no trust.
    """
    from .builtin_models import BUILTINS

    if not isinstance(spec, str) or not spec.strip():
        raise CnnscopeError("empty MODEL; give a model name (resnet50), FILE.py:callable, or an artifact .pt")
    spec = spec.strip()
    lower = spec.lower()
    if lower.endswith(".onnx"):
        require_regular_file(spec, "ONNX file")
        return ModelSource(base={"source": "onnx", "path": os.path.abspath(spec)}, display_name=spec, path=spec)
    if lower.endswith(ARTIFACT_SUFFIXES) and ":" not in spec.replace(":\\", ""):
        src = _artifact_source(spec, trust)
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
        require_regular_file(weights, "weights file")
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
    check_reference(spec, who="MODEL")
    if target.endswith(".py"):
        require_regular_file(target, f"Python file (from '{spec}')")
        return f"{os.path.abspath(target)}:{attr}"
    return spec


def _artifact_source(path: str, trust=None) -> ModelSource:
    from .trust import allow_artifact_code, current

    data = read_artifact(path, mmap=True)
    base = validate_base(data["base"], f"artifact '{path}'")
    plan = validate_plan(data["plan"], f"artifact '{path}'")
    if base["source"] == "code":
        base = allow_artifact_code(base, path, current() if trust is None else Trust.of(trust).merged(current()))
    return ModelSource(base=base, plan=plan, weights_file=path, weights_in_artifact=True, display_name=path,
                       path=path)


#: keys each base source may hold (besides "source"); anything else is refused
_BASE_KEYS = {"torchvision": {"name", "weights", "kwargs", "input_size"},
              "builtin": {"name", "kwargs", "input_size"},
              "code": {"ref", "kwargs", "input_size", "sha256"}}


def validate_base(base: Any, where: str) -> dict[str, Any]:
    """An artifact's ``base`` as plain, well-formed data (exit 2 naming the problem otherwise)."""
    if not isinstance(base, dict):
        raise CnnscopeError(f"{where} is damaged: its base is a {type(base).__name__}, not a mapping")
    source = base.get("source")
    if source not in _BASE_KEYS:
        raise CnnscopeError(f"{where} has an unknown model source {str(source)[:40]!r} in its base; known: "
                            f"{', '.join(sorted(_BASE_KEYS))}")
    extra = sorted(str(k)[:40] for k in base if k != "source" and k not in _BASE_KEYS[source])
    if extra:
        raise CnnscopeError(f"{where} has unexpected base entries {', '.join(extra)} for source '{source}'")
    out = {**base, "kwargs": check_kwargs(base.get("kwargs"), where)}
    if source in ("torchvision", "builtin"):
        name = base.get("name")
        if not isinstance(name, str):
            raise CnnscopeError(f"{where} has a malformed base: 'name' is {type(name).__name__}, not a string")
        from .builtin_models import BUILTINS

        if source == "builtin" and name not in BUILTINS:
            raise UnknownNameError(f"built-in model in {where}", name, list(BUILTINS))
        if source == "torchvision":
            from .torchvision_models import is_torchvision_name

            if not is_torchvision_name(name):
                raise UnknownNameError(f"torchvision model in {where}", name, all_model_names())
            w = base.get("weights")
            if w is not None and not isinstance(w, str):
                raise CnnscopeError(f"{where} has a malformed base: 'weights' must be a name or null")
            for key in ("weights", "progress", "pretrained", "weights_backbone"):
                if key in out["kwargs"]:
                    raise CnnscopeError(f"{where} passes '{key}' in its kwargs; weights are never downloaded or "
                                        f"chosen by kwargs")
    size = base.get("input_size")
    if size is not None and (not isinstance(size, (list, tuple)) or not 2 <= len(size) <= 5 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 20 for d in size)):
        raise CnnscopeError(f"{where} has a malformed input_size {str(size)[:60]}; expected a list such as "
                            f"[3, 224, 224]")
    return out


def validate_plan(plan: Any, where: str) -> list[dict]:
    """An artifact's ``plan``: a list of mappings of plain data, each with a string ``kind``; the step
    functions check their own fields when replayed."""
    if not isinstance(plan, list):
        raise CnnscopeError(f"{where} is damaged: its plan is a {type(plan).__name__}, not a list")
    if len(plan) > 10_000:
        raise CnnscopeError(f"{where} is damaged: its plan has {len(plan):,} steps")
    for i, step in enumerate(plan):
        if not isinstance(step, dict) or not isinstance(step.get("kind"), str):
            raise CnnscopeError(f"{where} is damaged: plan step {i} is not a mapping with a 'kind'")
        check_kwargs(step, f"{where} plan step {i}", max_items=50_000_000)
    return list(plan)


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (some, e.g. EOFError on an empty file, have none)."""
    lines = str(e).strip().splitlines()
    return lines[0][:120] if lines else type(e).__name__


def _torch_load(path: str, mmap: bool = False):
    """``torch.load(weights_only=True)`` of a regular file whose declared sizes were checked first (a
    zip bomb is refused before it is inflated), without torch's warnings (about pickle protocols of
    files that are not ours) leaking to stderr: the caller turns failures into one clear line."""
    import warnings

    import torch

    from ..limits import check_archive

    require_regular_file(path)
    if not _is_zip(path):
        _refuse_legacy(path)
    check_archive(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _is_zip(path: str) -> bool:
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _refuse_legacy(path: str) -> None:
    """torch's pre-1.6 format allocates each storage at the size the file declares before reading
    it, so a few bytes can ask for terabytes: such files (and anything else that is not a zip) are
    refused rather than read."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":   # a pickle stream: torch's legacy format, or a plain pickle
        raise CnnscopeError(f"'{path}' is a pickle stream (torch's legacy pre-1.6 format, or pickle.dump), whose "
                            f"declared tensor sizes cannot be checked before they are allocated and whose objects "
                            f"can run code; cnnscope does not read it: re-save it with a current torch.save")
    raise EOFError("not a torch.save archive")   # the caller words it: corrupt, truncated or not a torch file


def _load_checked(path: str, what: str, pickled_fix: str, mmap: bool = True):
    """``_torch_load`` with every failure as one line: pickled objects (refused by weights_only) get
    ``pickled_fix``; anything else is corrupt, truncated or not a torch file."""
    import pickle

    require_regular_file(path, what)
    try:
        return _torch_load(path, mmap=mmap)
    except CnnscopeError:
        raise
    except pickle.UnpicklingError as e:
        raise CnnscopeError(f"'{path}' holds pickled Python objects ({_pickled_what(e)}), which can run code when "
                            f"loaded, so cnnscope never unpickles them (not even with --trust-code); "
                            f"{pickled_fix}") from None
    except Exception as e:  # torch.load on garbage raises many types (KeyError, EOFError, ...)
        if mmap:   # some zip layouts cannot be memory-mapped: the plain load says what it really is
            return _load_checked(path, what, pickled_fix, mmap=False)
        raise CnnscopeError(f"'{path}' is corrupt or truncated, or not a torch file ({_first_line(e)})") from None


def _pickled_what(e: BaseException) -> str:
    """What torch's weights_only refusal names (``GLOBAL torchvision.models.resnet.ResNet``), in full."""
    import re

    text = str(e)
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m:
        return f"a {m.group(1)}: a whole pickled model, as torch.save(model) writes"
    if "legacy" in text:
        return text
    return "not plain tensors"


def read_artifact(path: str, mmap: bool = True) -> dict:
    """Load an artifact with ``weights_only=True``: no code can run, no module is unpickled."""
    data = _load_checked(path, "file", "save the model with cnnscope.save_model(model, path, base=...) or its "
                               "state_dict with torch.save(model.state_dict(), 'w.pt') and pass MODEL --weights w.pt",
                         mmap)
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        what = "a plain state_dict" if isinstance(data, dict) and data and all(
            hasattr(v, "shape") for v in data.values()) else "not a cnnscope artifact"
        raise CnnscopeError(
            f"'{path}' is {what} (no \"format\": \"{ARTIFACT_FORMAT}\" entry); pass a state_dict with "
            f"MODEL --weights {path}, or write artifacts with cnnscope.save_model")
    for key in ("base", "plan", "state_dict"):
        if key not in data:
            raise CnnscopeError(f"'{path}' is a damaged cnnscope artifact: its '{key}' entry is missing")
    _check_tensor_mapping(data["state_dict"], f"'{path}' is a damaged cnnscope artifact: its state_dict")
    return data


def _check_tensor_mapping(sd: Any, what: str) -> None:
    import torch

    if not isinstance(sd, dict):
        raise CnnscopeError(f"{what} is a {type(sd).__name__}, not a mapping of names to tensors")
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CnnscopeError(f"{what} maps {str(k)[:60]!r} to a {type(v).__name__}; expected names to tensors")


def read_state_dict(path: str, mmap: bool = True) -> dict:
    """A state_dict from a plain file or from an artifact, loaded with ``weights_only=True``."""
    data = _load_checked(path, "weights file", "save the state_dict instead: torch.save(model.state_dict(), "
                                               "'w.pt')", mmap)
    if isinstance(data, dict) and data.get("format") == ARTIFACT_FORMAT:
        data = data["state_dict"]
    elif isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]  # common training-checkpoint layout
    if not isinstance(data, dict) or not all(hasattr(v, "shape") for v in data.values()):
        raise CnnscopeError(f"'{path}' does not hold a state_dict (a mapping of names to tensors)")
    _check_tensor_mapping(data, f"the state_dict in '{path}'")
    return data


# ----------------------------------------------------------------------------------------- build

def _call_base(base: dict[str, Any]):
    source = base["source"]
    kwargs = dict(base.get("kwargs") or {})
    if source in ("torchvision", "builtin"):
        try:
            if source == "torchvision":
                from .torchvision_models import build

                return build(base["name"], base.get("weights"), **kwargs)
            from .builtin_models import BUILTINS

            return BUILTINS[base["name"]][0](**kwargs)
        except (TypeError, ValueError, KeyError, AssertionError, OverflowError, ZeroDivisionError) as e:
            if not kwargs:
                raise
            # kwargs stored in an artifact that the builder does not take (or cannot use)
            raise CnnscopeError(f"building {base['name']} with the stored kwargs failed: {type(e).__name__}: "
                                f"{_first_line(e)}") from None
    if source == "code":
        return _call_code(base["ref"], kwargs)
    if source == "onnx":
        raise CnnscopeError(f"'{base['path']}' is an ONNX file; this command needs a PyTorch model")
    raise CnnscopeError(f"unknown model source '{source}' in artifact base")


def _call_code(ref: str, kwargs: dict):
    """Import the user's module or file and call ``fn(**kwargs)``. Whatever that code raises, including
    ``SystemExit`` and ``KeyboardInterrupt``, becomes one line naming it (never a silent exit)."""
    from torch import nn

    check_reference(ref, who="model reference")
    target, _, attr = ref.rpartition(":")
    try:
        if target.endswith(".py"):
            require_regular_file(target, "Python file")
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
        local = target.replace(".", os.sep) + ".py"
        hint = (f"; '{local}' is in this folder: name the file, {local}:{attr}" if os.path.isfile(local)
                else "; is it installed in this Python, or should it be FILE.py:fn?")
        raise CnnscopeError(f"cannot import '{target}': {e}{hint}") from None
    except BaseException as e:  # the user's code failed (or exited) at import time
        raise user_code_error(e, f"importing '{target}'") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise UnknownNameError(f"callable in {target}", attr,
                               [n for n in dir(module) if not n.startswith("_")])
    try:
        obj = fn(**kwargs) if callable(fn) and not isinstance(fn, nn.Module) else fn
    except (CnnscopeError, RuntimeError, NotImplementedError):
        raise   # build_on_meta retries these off the meta device; _user_code reports them
    except BaseException as e:  # the user's constructor failed (or exited)
        raise user_code_error(e, f"calling '{ref}'") from None
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
    from ..graph.meta_build import build_on_meta
    from .plan import replay

    with _user_code(src.base):
        model = build_on_meta(lambda: _call_base(src.base))
    model = replay(model, src.plan)
    model.eval()
    if check_weights and src.weights_file:
        sd = _state_dict_of(src)
        check_state_dict_fits(model, sd, src.weights_file)
    return model


def nonzero_params(src: ModelSource, meta_model) -> int | None:
    """Non-zero parameter elements in ``src``'s weights file (an artifact's or ``--weights``'), each shared
    parameter once; None when the weights are not in a file (a fresh init, or named torchvision weights,
    whose zeros are not known without building them). Reads the memory-mapped file, allocates nothing."""
    import torch

    if not src.weights_file:
        return None
    sd = _state_dict_of(src)
    names = [n for n, _ in meta_model.named_parameters()]
    return sum(int(torch.count_nonzero(sd[n])) for n in names if n in sd)


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
