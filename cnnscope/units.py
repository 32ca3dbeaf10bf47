"""Parsing and formatting of counts, byte sizes and input sizes.

Counts use SI suffixes (K = 1e3, M = 1e6, G = 1e9, T = 1e12): ``25.6M`` parameters, ``4.09G`` MACs.
Byte sizes accept ``KB/MB/GB`` (powers of 1000) and ``KiB/MiB/GiB`` (powers of 1024).
"""
from __future__ import annotations

import math
import re

from .errors import CnnscopeError

#: the largest count, byte size or tensor dimension accepted from a user or a file (2**62 is
#: beyond any model and fits torch's int64 sizes with room for products)
MAX_NUMBER = 2 ** 62
#: the largest single tensor dimension (batch, channels, height, ...)
MAX_DIM = 2 ** 31 - 1


def _bounded(value: float, text, what: str) -> int:
    if not math.isfinite(value) or value > MAX_NUMBER:
        raise CnnscopeError(f"{what} '{text}' is out of range; give a finite number below {MAX_NUMBER:.3g}")
    return int(round(value))


def finite(value: float, what: str, *, minimum: float | None = 0.0) -> float:
    """``value`` if it is a finite number (and at least ``minimum``); else one clear error."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise CnnscopeError(f"{what} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise CnnscopeError(f"{what} must be at least {minimum:g}, got {value}")
    return float(value)

_SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTES = {
    "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"


def parse_count(text: str | int | float, what: str = "count") -> int:
    """``"25M"`` -> 25_000_000, ``"4.2G"`` -> 4_200_000_000, ``"1e6"`` -> 1_000_000."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise CnnscopeError(f"{what} must not be negative, got {text}")
        return _bounded(float(text), text, what)
    m = re.fullmatch(_NUMBER + r"\s*([KMGT]?)", str(text).strip(), flags=re.IGNORECASE)
    if not m:
        raise CnnscopeError(
            f"malformed {what} '{text}': expected a number with an optional K/M/G/T suffix, e.g. 25M or 4.2G")
    return _bounded(float(m.group(1)) * _SI[m.group(2).upper()], text, what)


def parse_bytes(text: str | int | float, what: str = "size") -> int:
    """``"100MB"`` -> 100_000_000 bytes, ``"1.5GiB"`` -> 1_610_612_736; a bare number means MB."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise CnnscopeError(f"{what} must not be negative, got {text}")
        return _bounded(float(text) * 10**6, text, what)
    m = re.fullmatch(_NUMBER + r"\s*([KMGT]?I?B)?", str(text).strip(), flags=re.IGNORECASE)
    if not m:
        raise CnnscopeError(
            f"malformed {what} '{text}': expected a number with a unit such as 100MB, 95MiB or 1.5GB")
    unit = (m.group(2) or "MB").upper()
    return _bounded(float(m.group(1)) * _BYTES[unit], text, what)


def parse_duration_ms(text, what: str = "time") -> float:
    """``30ms``, ``30 ms``, ``0.03s``, ``30`` (ms) -> 30.0 milliseconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ms|s|us|µs)?\s*", str(text).lower()) \
        if not isinstance(text, bool) else None
    if m is None:
        raise CnnscopeError(f"malformed {what} '{text}': expected a time such as 30ms or 0.5s")
    value = float(m.group(1)) * {"s": 1000.0, "us": 1e-3, "µs": 1e-3}.get(m.group(2) or "ms", 1.0)
    if not 0 < value < 1e9:
        raise CnnscopeError(f"malformed {what} '{text}': the time must be positive")
    return value


def parse_fraction(text: str | float, what: str = "ratio", *, allow_percent: bool = True) -> float:
    """``"0.5"`` or ``"50%"`` -> 0.5."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if allow_percent and s.endswith("%") else float(s)
    except ValueError:
        raise CnnscopeError(f"malformed {what} '{text}': expected a number such as 0.5 or 50%") from None
    if not math.isfinite(value):
        raise CnnscopeError(f"malformed {what} '{text}': expected a finite number such as 0.5 or 50%")
    return value


def parse_input_size(text: str | None, default_channels: int = 3) -> tuple[int, ...] | None:
    """Parse ``3x224x224``, ``224x224`` or ``224`` into (C, H, W).

    A bare size means a square image; a missing channel count takes ``default_channels``.
    """
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        dims = tuple(int(d) for d in text)
    else:
        if "," in str(text):
            raise CnnscopeError(f"input size '{text}' has a comma, which separates the sizes of a sweep (summary "
                                f"--input-size 224,320,448); one size is CxHxW, HxW or a single number")
        parts = re.split(r"\s*[x×]\s*", str(text).strip().lower())
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            raise CnnscopeError(
                f"malformed input size '{text}': expected CxHxW, HxW or a single size, e.g. 3x224x224 or 224"
            ) from None
    if not dims or len(dims) > 3 or any(d <= 0 for d in dims):
        raise CnnscopeError(
            f"malformed input size '{text}': expected CxHxW, HxW or a single size with positive integers")
    if any(d > MAX_DIM for d in dims):
        raise CnnscopeError(f"input size '{text}' has a dimension above {MAX_DIM:,}; no tensor can be that large")
    if len(dims) == 1:
        dims = (default_channels, dims[0], dims[0])
    elif len(dims) == 2:
        dims = (default_channels, *dims)
    return dims


def human_count(n: float | int | None, digits: int = 3) -> str:
    """25557032 -> '25.6M'; 4089184256 -> '4.09G'; small numbers stay exact."""
    if n is None:
        return "-"
    n = float(n)
    if abs(n) < 1000:
        return f"{int(n)}" if n == int(n) else f"{n:.3g}"
    scales = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))
    for i, (suffix, scale) in enumerate(scales):
        if abs(n) >= scale:
            text = f"{n / scale:.{digits}g}"
            if abs(float(text)) >= 1000 and i > 0:   # 999.95M rounds to 1000M: say 1G, not 1e+03M
                suffix, scale = scales[i - 1]
                text = f"{n / scale:.{digits}g}"
            return f"{text}{suffix}"
    return str(n)  # pragma: no cover


def human_bytes(n: float | int | None) -> str:
    """Bytes in powers of 1000: 102_400_000 -> '102.4 MB'."""
    if n is None:
        return "-"
    n = float(n)
    for suffix, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{int(n)} B"
