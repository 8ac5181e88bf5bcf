"""The report's building blocks: a metrics file read, a figure formatted, a markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS


def read(path: Path) -> dict[str, Any] | None:
    """A metrics file's record, or None when it does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


def pair_of(metrics: Path, name: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A metrics file and its detailed record (``metrics/details/<name>``, empty if absent)."""
    return read(metrics / name), read(metrics / "details" / name) or {}


def fmt(value: object, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` decimals, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return lines


def interval(ci: list[float] | None, digits: int = 3) -> str:
    """A 95% interval as ``[lo, hi]`` (empty without one)."""
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


def vector(w: dict[str, float]) -> str:
    """Head weights as ``(complete, long, rewatch, negative)``."""
    return "(" + ", ".join(f"{w[h]:.2f}" for h in HEADS) + ")"
