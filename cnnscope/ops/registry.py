"""Per-op registries that refuse a second entry for the same op: two formulas for one op would
make the result depend on import order, so a duplicate is a bug caught at import."""
from __future__ import annotations

from typing import Any, Callable, Hashable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def op_registrar(table: dict, what: str) -> Callable[..., Callable[[F], F]]:
    """``register = op_registrar(MAC_FORMULAS, "MAC formula")``; then ``@register("aten.mm", …)``
    files the function under each op key and raises if one already has a ``what``."""
    def register(*keys: Hashable) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            for k in keys:
                if k in table:
                    raise RuntimeError(f"{k} already has a {what} ({table[k].__qualname__}); "
                                       f"{fn.__qualname__} would replace it")
                table[k] = fn
            return fn

        return deco

    return register
