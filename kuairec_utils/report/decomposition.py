"""06_decomposition's part of the results page: the effect measured from each combination of
ingredients (one row per measured residual, the two selectivities side by side), the shares of
the gap each ingredient closes, and the cells the study's question turns on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kuairec_utils.report.tables import fmt, pair_of, table

RESIDUAL = ("candidates", "weights", "probabilities")


def _cell(fit: Mapping[str, Any] | None) -> str:
    """``mean (combined se)``, empty for a cell the data do not have."""
    return f"{fit['mean']:.2f} ({fit['se']:.2f})" if fit else ""


def decomposition_rows(cells: list[Mapping[str, Any]]) -> list[list[object]]:
    """One row per measured residual (candidates, weights, probabilities): the naive and
    instrumented effects with 06's c_s and with the true one, the placebo with 06's c_s and the
    residual's within-user correlation with the true one."""
    by_residual: dict[tuple[str, ...], dict[str, Mapping[str, Any]]] = {}
    for cell in cells:
        by_residual.setdefault(tuple(cell[n] for n in RESIDUAL), {})[cell["selectivity"]] = cell
    rows = []
    for key, pair in by_residual.items():
        est, true = pair.get("estimated"), pair.get("true")
        corr = next(iter(pair.values()))["corr_true_within_user"]
        rows.append(
            [
                *key,
                *(_cell(c and c[e]) for c in (est, true) for e in ("effect", "effect_iv")),
                _cell(est and est["placebo"]),
                fmt(corr, 2),
            ]
        )
    return rows


def decomposition_section(metrics: Path, model: str) -> list[str]:
    """The section, or nothing when the stage did not run."""
    record, _ = pair_of(metrics, f"decomposition_{model}.json")
    if record is None:
        return []
    lines = [
        f"## What each ingredient of the causal step costs (value model {model})",
        "",
        "06's regressions on the residual measured from each combination of candidates "
        "(05's sample or the platform's logged pool), head weights and probabilities, with 06's "
        "c_s or the true one: mean over the seeds (combined se); the correlation is the "
        "residual's with the true one within a user. A `true` level is the simulator's "
        "(evaluation only), but on the logged pool true weights with true probabilities are the "
        "platform's logged scores (docs/design.md section 7).",
        "",
    ]
    header = [*RESIDUAL, "06's c_s: naive", "IV", "true c_s: naive", "IV", "placebo", "corr"]
    lines += table(header, decomposition_rows(record["cells"]))
    shares = record.get("shares")
    if shares:
        lines += ["", f"Share of the gap to {record['effect_true']:g} each ingredient closes:", ""]
        rows = []
        for name in (*record["shares"]["effect"]["fixed order"], "left"):
            row: list[object] = [name]
            for estimate in ("effect", "effect_iv"):
                for order in ("fixed order", "reverse order"):
                    steps = shares[estimate].get(order) or {}
                    value = shares[estimate]["left"] if name == "left" else steps[name]["share"]
                    row.append(f"{value:.0%}")
            rows.append(row)
        header = [
            "ingredient",
            "naive, in order",
            "naive, reversed",
            "IV, in order",
            "IV, reversed",
        ]
        lines += table(header, rows)
    targets = [
        f"{name}: {t['effect']:.2f} (se {t['se']:.2f}), {t['distance_in_se']:+.1f} se from the truth"
        for name, t in record.get("targets", {}).items()
    ]
    lines += ["", "; ".join(targets) + "."] if targets else []
    lines += ["", f"![06_decomposition_{model}](figures/06_decomposition_{model}.png)", ""]
    return lines
