"""Pages written from templates filled with this run's metrics (Jinja2).

A template under ``kuairec_utils/report/templates/`` is markdown with figures written as
expressions over the metrics, e.g. ``{{ m.causal.effect | pooled }}`` for the pooled naive
effect of the headline model with its combined interval. What a template may read:

- ``m``: the metrics files (``Metrics``): ``m["auc_edge_mlp"]`` reads ``metrics/auc_edge_mlp.json``;
  ``m.weights``, ``m.causal``, ``m.debias`` the headline model's records; ``m.details[...]`` the
  detailed ones;
- ``model``: the headline value model; ``simulated``: whether the run has the simulator's truth
  (every sentence about the truth sits in ``{% if simulated %}``); ``params``: params.yaml.

A figure a template names but the metrics lack stops the report with an error naming the
template, its line and the missing figure, before any page is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


class Metrics:
    """The metrics files of one run by name, read once each."""

    def __init__(self, folder: Path, model: str | None, sub: str = "") -> None:
        self.folder, self.model, self.sub = Path(folder), model, sub
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            path = self.folder / self.sub / f"{name}.json"
            if not path.exists():
                raise jinja2.UndefinedError(f"no metrics file {path}")
            self._cache[name] = json.loads(path.read_text())
        return self._cache[name]

    def has(self, name: str) -> bool:
        return (self.folder / self.sub / f"{name}.json").exists()

    @cached_property
    def details(self) -> Metrics:
        """The detailed records (``metrics/details/``), read once each too."""
        return Metrics(self.folder, self.model, "details")

    @property
    def weights(self) -> Any:
        return self[f"weights_{self.model}"]

    @property
    def causal(self) -> Any:
        return self[f"causal_{self.model}"]

    @property
    def debias(self) -> Any:
        return self[f"debias_{self.model}"]


def ci(value: Any, digits: int = 2) -> str:
    """A combined 95% interval (a pooled figure or its ``ci95``) as ``[lo, hi]``."""
    lo, hi = value["ci95"] if isinstance(value, Mapping) else value
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def pooled(value: Mapping[str, Any], digits: int = 2, signed: bool = True) -> str:
    """A pooled figure (its ``mean``, or a difference's ``estimate``) as ``mean [lo, hi]``."""
    sign = "+" if signed else ""
    mean = value["mean"] if "mean" in value else value["estimate"]
    return f"{mean:{sign}.{digits}f} {ci(value, digits)}"


def num(value: float | None, spec: str = ".2f") -> str:
    """A number with a format spec (``"+.3f"``, ``",d"``, ``".1%"``); None (a spread over one
    seed) as an empty string."""
    return "" if value is None else format(value, spec)


def largest(values: Any) -> float | None:
    """The largest of the values that exist (None with one value-model seed)."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # markdown, not HTML
    )
    env.filters |= {"ci": ci, "pooled": pooled, "num": num, "largest": largest}
    return env


def fill(template: str, context: Mapping[str, Any]) -> str:
    """The template filled with ``context``; a figure it cannot find is a ValueError naming
    the template, the line and the figure."""
    try:
        return environment().get_template(template).render(**context)
    except jinja2.UndefinedError as e:
        raise ValueError(f"{TEMPLATES / template}, line {_line(e, template)}: {e}") from e
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"{TEMPLATES / template}, line {_line(e, template)}: {e!r}") from e


def _line(error: BaseException, template: str) -> int | str:
    """The template's line the error came from (its traceback's frame in the template)."""
    tb = error.__traceback__
    line: int | str = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(template):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
