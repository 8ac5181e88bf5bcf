"""What a script's metrics record says about how it ran (the diagnostics' ``--out`` records)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kuairec_utils.config import PROJ_ROOT


def run_settings(args: argparse.Namespace, skip: tuple[str, ...] = ("out",)) -> dict[str, Any]:
    """The arguments a script ran with (``skip`` aside), paths inside the project relative to
    its root."""
    out = {}
    for name, value in vars(args).items():
        if isinstance(value, Path):
            value = str(value.relative_to(PROJ_ROOT) if value.is_relative_to(PROJ_ROOT) else value)
        if name not in skip:
            out[name] = value
    return out
