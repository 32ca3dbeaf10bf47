"""How long library work reports its progress, without the library printing anything.

A function that may run for seconds takes ``progress(iterable, label)``: a context manager that
yields the iterable (and may draw a bar while it is consumed). The library default,
:func:`no_progress`, draws nothing; the CLI passes a bar on stderr (``commands/transform_helpers``),
drawn only when stderr is a terminal so logs and pipes stay clean.
"""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Iterable

Progress = Callable[[Iterable, str], ContextManager[Iterable]]


def no_progress(iterable: Iterable, label: str) -> ContextManager[Iterable]:
    return contextlib.nullcontext(iterable)
