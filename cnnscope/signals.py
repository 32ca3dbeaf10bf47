"""SIGINT, SIGTERM and SIGHUP end a command the same way: cleanly.

:func:`install` makes each of them raise :class:`KeyboardInterrupt` in the main thread, so every
``try/finally`` and ``except BaseException`` on the way out runs: temporary files and folders
(:mod:`cnnscope.fileio`, the export's staging folder, onnxruntime's scratch copies) are removed and
nothing partial is left. The first signal is remembered (:func:`received`); later ones are ignored so
the clean-up itself cannot be cut short. A :class:`KeyboardInterrupt` raised while no signal arrived
came from the model's own code, and is reported as that (bad input), not as an interruption.
"""
from __future__ import annotations

import signal
from typing import Any

HANDLED = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None),
                            getattr(signal, "SIGHUP", None)) if s is not None)

_received: int | None = None


def _handler(signum: int, frame: Any) -> None:
    global _received
    if _received is not None:
        return           # already stopping: let the clean-up finish
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Route the handled signals through :func:`_handler` (main thread only; a no-op elsewhere)."""
    global _received
    _received = None
    for sig in HANDLED:
        try:
            signal.signal(sig, _handler)
        except (ValueError, OSError):   # not the main thread, or not settable here
            pass


def received() -> int | None:
    """The signal that interrupted this command, or None."""
    return _received


def name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)
