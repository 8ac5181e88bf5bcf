"""The four heads of the value model and their labels (docs/design.md section 3).

complete: watch_ratio > 1; long: watch_ratio > 1.5 or play > 12 s; rewatch: watch_ratio >= 2;
negative: play < 2 s. The thresholds live in ``params.yaml`` (section ``labels``); this module is
the one place that turns them into labels, for the pipeline and for the simulator's truth alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

HEADS: tuple[str, ...] = ("complete", "long", "rewatch", "negative")


@dataclass(frozen=True)
class LabelThresholds:
    """Thresholds of the four heads."""

    complete_ratio: float = 1.0  # complete: watch_ratio > complete_ratio
    long_ratio: float = 1.5  # long: watch_ratio > long_ratio ...
    long_play_s: float = 12.0  # ... or play_duration > long_play_s
    rewatch_ratio: float = 2.0  # rewatch: watch_ratio >= rewatch_ratio
    negative_play_s: float = 2.0  # negative: play_duration < negative_play_s

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> LabelThresholds:
        """Build from the ``labels`` section of params.yaml, checking every value."""
        names = set(cls.__dataclass_fields__)
        unknown = set(section) - names
        if unknown:
            raise ValueError(
                f"params labels: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}"
            )
        values = {}
        for name in names:
            value = section.get(name, getattr(cls, name))
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"params labels.{name} = {value!r}: must be a positive number")
            values[name] = float(value)
        if values["rewatch_ratio"] < values["complete_ratio"]:
            raise ValueError(
                f"params labels.rewatch_ratio = {values['rewatch_ratio']!r}: must be at least "
                f"labels.complete_ratio ({values['complete_ratio']!r})"
            )
        return cls(**values)


def head_labels(
    watch_ratio: np.ndarray, play_duration_ms: np.ndarray, thresholds: LabelThresholds
) -> dict[str, np.ndarray]:
    """The four binary labels (int8 arrays) of interactions, by head."""
    wr = np.asarray(watch_ratio, dtype=np.float64)
    play_s = np.asarray(play_duration_ms, dtype=np.float64) / 1000.0
    t = thresholds
    return {
        "complete": (wr > t.complete_ratio).astype(np.int8),
        "long": ((wr > t.long_ratio) | (play_s > t.long_play_s)).astype(np.int8),
        "rewatch": (wr >= t.rewatch_ratio).astype(np.int8),
        "negative": (play_s < t.negative_play_s).astype(np.int8),
    }
