"""What code cnnscope runs, and who chose it.

A file cnnscope reads (an artifact, a baseline, a config, an ONNX file) may *describe* a model but
never *choose code to run* on its own. The rules, in one place:

- A model the user names (``cnnscope summary nets.py:build``, ``load_model("pkg.mod:fn")``, a
  ``model =`` entry of the user's own config) is the user's choice and runs.
- An artifact whose base is torchvision or a built-in model runs no user code: nothing to allow.
- An artifact whose base is user code runs it only when the user allows that code for this run:
  ``--trust-code`` (the code *file* the artifact names, relative to the artifact), ``--trust REF``
  (a file path or a module, repeatable), or ``trust = ["nets.py", "mypkg.models"]`` under
  ``[tool.cnnscope]`` in the current folder's ``pyproject.toml``. In the library:
  ``load_model(path, trust_code=True)`` or ``trust_code=["nets.py"]``.
- Whoever chose it, a reference never resolves to the standard library or to a denied module
  (``os:system``, ``subprocess:run``, ``runpy:run_path``, ``torch.hub:load``, ``builtins:eval``), nor to a
  file inside the standard library or an installed package. An artifact's *module* reference runs
  only when the user names that module (``--trust mypkg.models``); ``--trust-code`` alone allows files.
- Keyword arguments stored in a file are plain data (None, bool, int, float, str, lists, str-keyed
  dicts), bounded in depth and size.
- An artifact records the SHA-256 of its code file when written; a file that changed since is
  reported (a warning), so a user never runs edited code unknowingly.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import os
import sys
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import CnnscopeError, user_code_error  # noqa: F401  (re-exported)

#: modules (and their submodules) no reference may name, in addition to the standard library
DENIED_MODULES = ("torch.hub", "torch.serialization", "torch.package", "torch.jit", "torch.utils.cpp_extension",
                  "torch.utils.hipify", "torch.multiprocessing", "torch.distributed", "torch.compiler", "torch._dynamo",
                  "torch._inductor", "torch.backends", "torch.cuda", "pip", "setuptools", "pkg_resources",
                  "_pytest", "pytest", "IPython", "cnnscope")

#: bounds on keyword arguments read from a file
MAX_KWARGS_DEPTH = 8
MAX_KWARGS_ITEMS = 10_000
MAX_KWARGS_STRING = 10_000


class CodeChangedWarning(UserWarning):
    """The code file an artifact names has changed since the artifact was written."""


@dataclass(frozen=True)
class Trust:
    """The code a user allows artifacts to run in this run.

    ``files``: any code *file* an artifact names (``--trust-code``); ``named``: files (absolute paths)
    and modules the user named (``--trust REF``, ``[tool.cnnscope] trust``).
    """

    files: bool = False
    named: tuple[str, ...] = ()

    @classmethod
    def of(cls, value: "Trust | bool | str | Iterable[str] | None") -> "Trust":
        """``True`` → allow code files; a string or list → allow those files/modules; ``None``/``False`` → none."""
        if isinstance(value, Trust):
            return value
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(files=True)
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        try:
            items = [str(v) for v in value]  # type: ignore[union-attr]
        except TypeError:
            raise CnnscopeError(f"trust_code must be True, False or a list of files/modules, got "
                                f"{type(value).__name__}") from None
        return cls(named=tuple(_normalise_named(v) for v in items))

    def merged(self, other: "Trust") -> "Trust":
        return Trust(self.files or other.files, tuple(dict.fromkeys(self.named + other.named)))

    def allows_file(self, path: str) -> bool:
        if self.files:
            return True
        return any(_same_file(path, n) for n in self.named if not _looks_like_module(n))

    def allows_module(self, module: str) -> bool:
        return any(module == n or module.startswith(n + ".") for n in self.named if _looks_like_module(n))


def _looks_like_module(ref: str) -> bool:
    return not ref.endswith(".py") and os.sep not in ref and "/" not in ref


def _normalise_named(ref: str) -> str:
    ref = ref.strip()
    target = ref.rpartition(":")[0] if ":" in ref and not (len(ref) > 1 and ref[1] == ":") else ref
    if target.endswith(".py") or os.sep in target or "/" in target:
        return os.path.abspath(target)
    return target


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# ------------------------------------------------------------------------- the current policy
_CURRENT: contextvars.ContextVar[Trust] = contextvars.ContextVar("cnnscope_trust", default=Trust())


def current() -> Trust:
    return _CURRENT.get()


@contextlib.contextmanager
def trusting(trust: "Trust | bool | Iterable[str] | None") -> Iterator[Trust]:
    """Run the body with ``trust`` (merged with the policy already in force)."""
    policy = _CURRENT.get().merged(Trust.of(trust))
    token = _CURRENT.set(policy)
    try:
        yield policy
    finally:
        _CURRENT.reset(token)


def project_trust(folder: str | os.PathLike = ".") -> Trust:
    """``trust = [...]`` under ``[tool.cnnscope]`` of ``folder/pyproject.toml`` (the user's own project);
    relative file entries are relative to that folder. Missing file or key: nothing trusted."""
    path = Path(folder) / "pyproject.toml"
    try:
        if not path.is_file() or path.stat().st_size > 16 * 10**6 or b"tool.cnnscope" not in path.read_bytes():
            return Trust()      # a project without cnnscope settings (even a broken one) trusts nothing
    except OSError:
        return Trust()
    from ..fileio import load_toml as _load_toml

    data = _load_toml(path)
    table = data.get("tool", {}).get("cnnscope", {}) if isinstance(data.get("tool"), dict) else {}
    entries = table.get("trust") if isinstance(table, dict) else None
    if entries is None:
        return Trust()
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise CnnscopeError(f"'trust' under [tool.cnnscope] in '{path}' must be a list of strings "
                            f"(code files or modules), e.g. trust = [\"nets.py\"]")
    named = []
    for e in entries:
        e = e.strip()
        if e.endswith(".py") or "/" in e or os.sep in e:
            e = str(Path(folder) / e) if not os.path.isabs(e) else e
        named.append(e)
    return Trust.of(named)


# ----------------------------------------------------------------------------- the hard rules
def _top(module: str) -> str:
    return module.split(".", 1)[0]


def denied_module(module: str) -> str | None:
    """Why ``module`` may never be named by a reference, or None."""
    if _top(module) in sys.stdlib_module_names or module in sys.builtin_module_names:
        return "a standard-library module"
    for denied in DENIED_MODULES:
        if module == denied or module.startswith(denied + "."):
            return f"denied ({denied} loads or runs code)"
    return None


def _protected_roots() -> list[Path]:
    roots = []
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.append(Path(p).resolve())
    import site

    for p in list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()]:
        roots.append(Path(p).resolve())
    return roots


def denied_file(path: str) -> str | None:
    """Why the code file ``path`` may never run, or None."""
    resolved = Path(path).resolve()
    for root in _protected_roots():
        if resolved == root or root in resolved.parents:
            return f"inside {root} (the standard library or an installed package)"
    return None


def check_reference(ref: str, *, who: str) -> None:
    """Refuse a ``target:callable`` reference that names denied code, whoever chose it."""
    target, _, attr = ref.rpartition(":")
    if attr.startswith("_"):
        raise CnnscopeError(f"{who} names '{ref}', a private attribute; name a public callable that builds the model")
    if target.endswith(".py"):
        why = denied_file(target)
    else:
        why = denied_module(target)
    if why:
        raise CnnscopeError(f"{who} names '{ref}', which cnnscope never calls: '{target}' is {why}; a model "
                            f"reference must name your own code (FILE.py:fn or your package's module)")


def check_kwargs(kwargs: Any, where: str, max_items: int = MAX_KWARGS_ITEMS) -> dict:
    """Keyword arguments from a file: a str-keyed dict of plain data, bounded in depth and size."""
    count = 0

    def walk(v: Any, depth: int, path: str) -> None:
        nonlocal count
        count += 1
        if count > max_items:
            raise CnnscopeError(f"{where}: holds more than {max_items:,} values; not a model description")
        if depth > MAX_KWARGS_DEPTH:
            raise CnnscopeError(f"{where}: kwargs nest deeper than {MAX_KWARGS_DEPTH} levels at {path}")
        if v is None or isinstance(v, bool):
            return
        if isinstance(v, int):
            if abs(v) > 2 ** 63:
                raise CnnscopeError(f"{where}: kwarg {path} = {v} is out of range")
            return
        if isinstance(v, float):
            if not math.isfinite(v):
                raise CnnscopeError(f"{where}: kwarg {path} is {v}; only finite numbers are accepted")
            return
        if isinstance(v, str):
            if len(v) > MAX_KWARGS_STRING:
                raise CnnscopeError(f"{where}: kwarg {path} is a string of {len(v):,} characters")
            return
        if isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, depth + 1, f"{path}[{i}]")
            return
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise CnnscopeError(f"{where}: kwargs key {k!r} at {path} is not a string")
                walk(x, depth + 1, f"{path}.{k}")
            return
        raise CnnscopeError(f"{where}: kwarg {path} is a {type(v).__name__}; kwargs stored in a file must be plain "
                            f"data (numbers, strings, lists, dicts)")

    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise CnnscopeError(f"{where}: 'kwargs' must be a mapping, got {type(kwargs).__name__}")
    for k, v in kwargs.items():
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("__"):
            raise CnnscopeError(f"{where}: kwargs key {str(k)[:40]!r} is not a plain argument name")
        walk(v, 1, k)
    return dict(kwargs)


# ---------------------------------------------------------------------- artifacts' code bases
def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stored_code_base(base: dict, artifact_path: str | os.PathLike) -> dict:
    """The base as written into an artifact: a code file is stored relative to the artifact's folder
    with its SHA-256, so the artifact and its code travel together and an edit is noticed."""
    if base.get("source") != "code":
        return dict(base)
    target, _, attr = str(base["ref"]).rpartition(":")
    if not target.endswith(".py"):
        return dict(base)
    code = os.path.abspath(target)
    folder = os.path.dirname(os.path.abspath(artifact_path))
    try:
        rel = os.path.relpath(code, folder)
    except ValueError:   # another drive (Windows): keep it absolute
        rel = code
    stored = {**base, "ref": f"{Path(rel).as_posix()}:{attr}"}
    if os.path.isfile(code):
        stored["sha256"] = file_sha256(code)
    return stored


def allow_artifact_code(base: dict, artifact_path: str, trust: Trust) -> dict:
    """The runtime base of an artifact whose source is user code: the reference resolved (a file
    relative to the artifact), checked against the hard rules and ``trust``. Raises when refused."""
    ref = base.get("ref")
    where = f"artifact '{artifact_path}'"
    if not isinstance(ref, str) or ":" not in ref:
        raise CnnscopeError(f"{where} has a malformed code base (ref {ref!r}); expected 'FILE.py:fn' or 'pkg.mod:fn'")
    target, _, attr = ref.rpartition(":")
    if not target or not attr.isidentifier():
        raise CnnscopeError(f"{where} has a malformed code reference '{ref}'")
    check_reference(ref, who=where)
    kwargs = check_kwargs(base.get("kwargs"), where)
    if target.endswith(".py"):
        absolute = os.path.isabs(target)
        code = target if absolute else os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(artifact_path)), target))
        # an absolute path does not travel with the artifact: only naming it (--trust PATH) allows it
        allowed = any(_same_file(code, n) for n in trust.named) if absolute else trust.allows_file(code)
        if not allowed:
            shown = os.path.relpath(code)
            shown = code if shown.startswith("..") else shown
            how = f"--trust {code}" if absolute else f"--trust-code (or --trust {shown})"
            raise CnnscopeError(
                f"{where} wants to run the code in '{code}' ({attr}); cnnscope runs no code a file chooses: read "
                f"that file, then allow it with {how}, or trust = [\"...\"] under [tool.cnnscope] in pyproject.toml")
        check_reference(f"{code}:{attr}", who=where)
        if not os.path.exists(code):
            raise CnnscopeError(f"{where} needs its code file '{code}', which does not exist; put it beside the "
                                f"artifact where it was when the artifact was written")
        from ..fileio import require_regular_file

        require_regular_file(code, "code file")
        recorded = base.get("sha256")
        if isinstance(recorded, str) and recorded != file_sha256(code):
            warnings.warn(f"'{code}' changed since {artifact_path} was written (SHA-256 differs): the model is "
                          f"built by the current code", CodeChangedWarning, stacklevel=2)
        return {**base, "ref": f"{code}:{attr}", "kwargs": kwargs}
    if not trust.allows_module(target):
        raise CnnscopeError(
            f"{where} wants to import and run module '{target}' ({attr}); cnnscope runs no code a file chooses: "
            f"allow it with --trust {target}, or trust = [\"{target}\"] under [tool.cnnscope] in pyproject.toml")
    return {**base, "kwargs": kwargs}
