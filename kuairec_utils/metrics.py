"""The metrics files: written with the precision they carry, compared at that precision.

Every float of ``metrics/*.json`` is rounded to ``SIGNIFICANT_DIGITS`` significant digits in one
place, ``write_metrics``. The figures are estimates whose sampling error is many orders larger
than a float's last bits, and the last bits are what differ between CPUs (numpy's AVX-512 and
AVX2 loops, OpenBLAS's kernels): rounded, a run on another CPU changes no metric file unless a
figure really moved, and ``dvc metrics diff`` shows real changes only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SIGNIFICANT_DIGITS = 6


def rounded(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """``value`` with every float (in nested dicts, lists and tuples) rounded to ``digits``
    significant digits; ints, bools, strings, None, nan and infinities unchanged."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return value


def write_metrics(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON to ``path`` with its floats rounded (``rounded``);
    a value JSON cannot hold (a numpy array, a set) is refused before the file is touched."""
    path = Path(path)
    text = json.dumps(rounded(record), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Each leaf of a metrics record as (dotted path, value), e.g. ``("ci95.long[0]", 0.09)``."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from leaves(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{key}[{i}]")
    else:
        yield key, value


def disagreements(
    a: dict[str, Any], b: dict[str, Any], digits: int = SIGNIFICANT_DIGITS, floor: float = 1e-12
) -> list[str]:
    """The keys (dotted paths) where two metrics records differ beyond ``digits`` significant
    digits: numbers further apart than one unit in their last written digit (and than
    ``floor``, below which no figure of the study carries information), any other value
    unequal, or a key that only one record holds. Empty when they agree."""
    left, right = dict(leaves(a)), dict(leaves(b))
    differ = sorted(set(left) ^ set(right))
    for key in sorted(set(left) & set(right)):
        x, y = left[key], right[key]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
        if numbers and math.isfinite(x) and math.isfinite(y):
            unit = 10.0 ** (math.floor(math.log10(max(abs(x), abs(y), 1e-300))) - digits + 1)
            if abs(x - y) > max(unit * (1 + 1e-9), floor):
                differ.append(key)
        elif x != y and not (numbers and math.isnan(x) and math.isnan(y)):
            differ.append(key)
    return differ
