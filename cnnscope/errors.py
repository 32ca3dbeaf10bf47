"""Errors that reach the user as one clear line.

Every error a user can cause (a bad model name, a malformed size, a file that is not ours) is a
:class:`CnnscopeError`. The CLI prints its message and exits with code 2; the library raises it so
callers can catch one type. Exit code 1 is reserved for "a check or budget failed".
"""
from __future__ import annotations

import difflib
from typing import Iterable

BAD_INPUT_EXIT = 2
CHECK_FAILED_EXIT = 1


class CnnscopeError(Exception):
    """A problem with the user's input: one line naming the problem and the fix."""

    exit_code = BAD_INPUT_EXIT


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
        return str(self.args[0])


class InputTooSmallError(CnnscopeError):
    """The input is too small for a layer: its output would have no pixels."""


class CheckFailed(CnnscopeError):
    """A budget or verification failed (exit code 1, not 2)."""

    exit_code = CHECK_FAILED_EXIT
