"""Numbers read from a file or a flag: checked finite and in range, shown as plain numbers in errors.

`plain(1e309)` is `inf`, `plain(np.float64(0.5))` is `0.5` (never `np.float64(...)`), a string is quoted;
`check_number` raises a DataError naming where the number came from (`report.jsonl:3: 'macro_f1'`,
`--t1`) with what was given."""

from __future__ import annotations

import math
from typing import Any

from culturellm.errors import DataError


def plain(value: Any) -> str:
    """A value as a user would write it: numpy scalars unwrapped, floats as `0.5`/`inf`/`nan`."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and abs(value) >= 10**30:  # never str() of a 5,000-digit number
        return f"{'-' if value < 0 else ''}a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_number(
    value: Any,
    what: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float | int:
    """`value` as a finite number (an int with `integer`) in [lo, hi]; DataError naming `what` otherwise."""
    rng = (
        f" from {plain(lo)} to {plain(hi)}"
        if lo is not None and hi is not None
        else f" of at least {plain(lo)}"
        if lo is not None
        else f" of at most {plain(hi)}"
        if hi is not None
        else ""
    )
    kind = "a whole number" if integer else "a finite number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    ok = ok and not isinstance(value, bool) and (integer or math.isfinite(value))
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise DataError(f"{what} must be {kind}{rng}, got {plain(value)}")
    return value
