"""Reading and writing files safely: inputs are regular files, outputs are atomic and never an input.

- Every file a command reads is registered (:func:`note_read`; folders with :func:`note_read_tree`)
  while a :func:`command_scope` is open, and no write may land on one of them or inside such a folder:
  the model file, ``--weights``, the code file of ``FILE.py:fn`` or of an artifact, the config, a
  baseline, files under ``--data``.
- An input must be a regular file (:func:`require_regular_file`): a FIFO, socket or device is refused
  instead of blocking on it.
- An output is a regular file or does not exist yet: a device, FIFO or socket is refused, and so is
  a write-protected file. Writes go to a temp file in the destination folder and ``os.replace``
  onto the output; the replaced file's mode is kept. An error or a signal (see
  :mod:`cnnscope.signals`) removes the temp file, so no partial output is ever left.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import CnnscopeError

#: ``-o -``: write a text report to standard output
STDOUT = "-"

_READS: contextvars.ContextVar[list | None] = contextvars.ContextVar("cnnscope_reads", default=None)


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """While open, files read are remembered and outputs may not land on them (one per command)."""
    token = _READS.set([])
    try:
        yield
    finally:
        _READS.reset(token)


def note_read(path: str | os.PathLike | None) -> None:
    """Remember that the running command reads ``path`` (a no-op outside a :func:`command_scope`)."""
    reads = _READS.get()
    if reads is not None and path is not None:
        reads.append(("file", os.path.abspath(path)))


def note_read_tree(folder: str | os.PathLike | None) -> None:
    """Remember that the running command reads files under ``folder``."""
    reads = _READS.get()
    if reads is not None and folder is not None:
        reads.append(("tree", os.path.abspath(folder)))


def kind_of(path: str | os.PathLike) -> str:
    """'missing', 'file', 'folder', or what else the path is ('a FIFO', 'a character device', ...)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    for test, name in _SPECIAL_KINDS:
        if test(mode):
            return name
    return "not a regular file"


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def require_regular_file(path: str | os.PathLike, what: str = "file", *, will_replace: bool = False) -> None:
    """Refuse an input that does not exist, is a folder, or is not a regular file (never block on a FIFO).

    ``will_replace``: the command reads the file only to validate it and was asked to replace it
    (``check --update-baseline``), so it is not registered as an input that outputs must avoid."""
    kind = kind_of(path)
    if kind == "file":
        if not os.access(path, os.R_OK):
            raise CnnscopeError(f"{what} '{path}' is not readable (permission denied)")
        if not will_replace:
            note_read(path)
        return
    if kind == "missing":
        raise CnnscopeError(f"{what} '{path}' does not exist")
    if kind == "folder":
        raise CnnscopeError(f"{what} '{path}' is a folder, not a file")
    if kind == "unreadable":
        raise CnnscopeError(f"{what} '{path}' cannot be read (permission denied or a broken path)")
    raise CnnscopeError(f"{what} '{path}' is {kind}, not a regular file; give a regular file")


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return Path(a).resolve() == Path(str(b)).resolve()


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Refuse an output that is one of the inputs (given here or read so far), lies under a folder being
    read, is not a regular file, is write-protected, or lies in a folder we cannot write."""
    if str(output) == STDOUT:
        raise CnnscopeError("'-o -' (standard output) is only for text reports; give a file name")
    out = Path(output)
    reads = _READS.get() or []
    for inp in list(inputs) + [p for kind, p in reads if kind == "file"]:
        if inp is not None and _same(out, inp):
            raise CnnscopeError(f"output '{out}' is the input file '{inp}' of this command; choose another -o "
                                f"path (inputs are never overwritten)")
    real = Path(os.path.realpath(out))
    for kind, folder in reads:
        if kind == "tree" and Path(os.path.realpath(folder)) in real.parents:
            raise CnnscopeError(f"output '{out}' lies inside '{folder}', which this command reads; write it "
                                f"elsewhere")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CnnscopeError(f"cannot write '{out}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise CnnscopeError(f"cannot write '{out}': folder '{folder}' is not writable")
    kind = kind_of(out)
    if kind == "folder":
        raise CnnscopeError(f"cannot write '{out}': it is a folder; give a file name")
    if kind not in ("missing", "file"):
        raise CnnscopeError(f"cannot write '{out}': it is {kind}, not a regular file; outputs are regular files "
                            f"(use -o - for standard output where a text report is written)")
    if kind == "file" and not os.stat(out).st_mode & 0o222:
        raise CnnscopeError(f"cannot write '{out}': it is write-protected; choose another -o path or make it "
                            f"writable first")
    return out


@contextlib.contextmanager
def atomic_path(output: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; on success it is renamed onto ``output``.

    The output is checked again here (against everything read so far), so no later read slips past
    an earlier check. An existing output keeps its permission bits.
    """
    out = check_output_path(output)
    try:
        old_mode = stat.S_IMODE(os.stat(out).st_mode) if out.exists() else None
    except OSError:
        old_mode = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=str(out.parent or "."))
    except OSError as e:
        raise CnnscopeError(f"cannot write '{out}': {e.strerror or e}; choose another -o path") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if old_mode is None:
            umask = os.umask(0)
            os.umask(umask)
            old_mode = 0o666 & ~umask   # mkstemp makes 0600; give a new file the usual mode
        os.chmod(tmp_path, old_mode)
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_text(output: str | os.PathLike, text: str) -> None:
    with atomic_path(output) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")


def atomic_write(output: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``output`` only if it succeeded."""
    with atomic_path(output) as tmp:
        write(tmp)


def load_toml(path) -> dict:
    """A TOML file (a config, a pyproject.toml) as a dict, read as an input: a regular file of at most
    16 MB; a malformed one is one line of bad input."""
    from pathlib import Path

    path = Path(path)
    try:
        import tomllib  # Python ≥ 3.11
    except ModuleNotFoundError:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise CnnscopeError(
                f"reading {path.name} needs Python ≥ 3.11 (tomllib) or the 'tomli' package on Python 3.10: "
                f"pip install tomli, or pass MODEL and budgets on the command line") from None
    require_regular_file(path, "config file")
    if path.stat().st_size > 16 * 10**6:
        raise CnnscopeError(f"config file '{path}' is {path.stat().st_size:,} bytes; a config is a few KB")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise CnnscopeError(f"'{path}' is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise CnnscopeError(f"'{path}' is not UTF-8 text (byte {e.start}); TOML files must be UTF-8") from None
    except RecursionError:
        raise CnnscopeError(f"'{path}' nests too deeply to be a config") from None
    except OSError as e:
        raise CnnscopeError(f"cannot read '{path}': {e.strerror}") from None
