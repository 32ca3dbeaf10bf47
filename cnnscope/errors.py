"""Errors that reach the user as one clear line.

Every error a user can cause (a bad model name, a malformed size, a file that is not ours) is a
:class:`CnnscopeError`. The CLI prints its message and exits with code 2; the library raises it so
callers can catch one type. Exit code 1 is reserved for "a check or budget failed".
"""
from __future__ import annotations

import contextvars
import difflib
import re
from typing import Iterable

BAD_INPUT_EXIT = 2
CHECK_FAILED_EXIT = 1

#: True while the command line runs (set by ``cnnscope.cli.main``): messages name its options there
IN_CLI: contextvars.ContextVar[bool] = contextvars.ContextVar("cnnscope_in_cli", default=False)

#: option -> what the Python API calls it, for messages read outside the command line
PYTHON_NAMES = {"--input-size": "input_size", "--batch-size": "batch_size", "--weights": "weights",
                "--trust-code": "trust_code=True", "--trust": "trust_code=[...]", "--layers": "layers",
                "--seed": "seed"}
_TRUST_REF = re.compile(r"(?<![\w-])--trust (?!-)([^\s),;]+)")
_OPTION = re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in sorted(PYTHON_NAMES, key=len, reverse=True))
                     + r")(?![\w-])")


def for_reader(message: str) -> str:
    """``message`` as written (command-line options) inside the CLI; with the Python API's argument
    names (``input_size=``) when a library caller reads it."""
    if IN_CLI.get():
        return message
    message = _TRUST_REF.sub(lambda m: f'trust_code=["{m.group(1)}"]', message)
    return _OPTION.sub(lambda m: PYTHON_NAMES[m.group(1)], message)


class CnnscopeError(Exception):
    """A problem with the user's input: one line naming the problem and the fix. The text names
    command-line options; read from Python, they read as the API's argument names (:func:`for_reader`)."""

    exit_code = BAD_INPUT_EXIT

    def __str__(self) -> str:
        return for_reader(super().__str__())


class UnknownNameError(CnnscopeError, KeyError):
    """A name (model, layer, criterion, ...) that is not known; the message lists the closest."""

    def __init__(self, what: str, name: str, known: Iterable[str], hint: str = "") -> None:
        close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
        msg = f"unknown {what} '{name}'"
        if close:
            msg += "; closest: " + ", ".join(close)
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return for_reader(str(self.args[0]))


class InputTooSmallError(CnnscopeError):
    """The input is too small for a layer: its output would have no pixels."""


class CheckFailed(CnnscopeError):
    """A budget or verification failed (exit code 1, not 2)."""

    exit_code = CHECK_FAILED_EXIT


def user_code_error(e: BaseException, doing: str) -> BaseException:
    """What to raise for ``e``, raised by the user's code while ``doing``: a real interruption (a
    signal, see :mod:`cnnscope.signals`) stays one; anything else, ``SystemExit`` and a
    ``KeyboardInterrupt`` the code raised itself included, is one line of bad input."""
    from . import signals

    if isinstance(e, KeyboardInterrupt) and signals.received() is not None:
        return e
    if isinstance(e, SystemExit):
        what = f"called sys.exit({e.code!r})"
    elif isinstance(e, KeyboardInterrupt):
        what = "raised KeyboardInterrupt (no signal was received)"
    else:
        text = str(e).strip().splitlines()
        what = f"raised {type(e).__name__}" + (f": {text[0][:160]}" if text else "")
    return CnnscopeError(f"{doing} failed: the model's code {what}")
