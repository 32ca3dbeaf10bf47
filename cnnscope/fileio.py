"""Atomic file writes: a temp file in the destination folder, then ``os.replace``.

No command ever leaves a partial output file (an error or Ctrl-C mid-write removes the temp file),
and no command overwrites its own input.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import CnnscopeError


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Refuse an output that is one of the inputs or lies in a folder we cannot write."""
    out = Path(output)
    for inp in inputs:
        if inp is None:
            continue
        try:
            same = Path(inp).exists() and out.exists() and os.path.samefile(out, inp)
        except OSError:
            same = False
        if same or out.resolve() == Path(str(inp)).resolve():
            raise CnnscopeError(f"output '{out}' is the input file; choose another -o path (inputs are never overwritten)")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CnnscopeError(f"cannot write '{out}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise CnnscopeError(f"cannot write '{out}': folder '{folder}' is not writable")
    if out.is_dir():
        raise CnnscopeError(f"cannot write '{out}': it is a folder; give a file name")
    return out


@contextlib.contextmanager
def atomic_path(output: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; on success it is renamed onto ``output``."""
    out = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=str(out.parent or "."))
    except OSError as e:
        raise CnnscopeError(f"cannot write '{out}': {e.strerror or e}; choose another -o path") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)   # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_text(output: str | os.PathLike, text: str) -> None:
    with atomic_path(output) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write(output: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``output`` only if it succeeded."""
    with atomic_path(output) as tmp:
        write(tmp)
