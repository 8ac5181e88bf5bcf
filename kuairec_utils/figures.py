"""The notebooks' figures of the study's headline results, drawn from the same records as the
pages: each estimator's head weights against the study's and the truth, and each value model's
AUC difference from the reference with its intervals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kuairec_utils.heads import HEADS

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def plot_weights(table: pd.DataFrame, study_w: Mapping[str, float], ax: Axes) -> None:
    """Each estimator's w per head with its combined interval, beside the study's w* and
    (simulated data) ``w_true``."""
    names = list(dict.fromkeys(table["estimator"]))
    width = 0.8 / (len(names) + 1)
    x = np.arange(len(HEADS))
    for i, name in enumerate(names):
        rows = table[table["estimator"] == name].set_index("head").loc[list(HEADS)]
        error = np.abs(rows[["ci_low", "ci_high"]].to_numpy().T - rows["w"].to_numpy())
        ax.errorbar(x + (i - len(names) / 2) * width, rows["w"], yerr=error, fmt="o", label=name)
    ax.scatter(x, [study_w[h] for h in HEADS], marker="_", s=600, color="grey", label="study w*")
    truth = table.drop_duplicates("head").set_index("head")["w_true"]
    if truth.notna().all():
        ax.scatter(x, truth.loc[list(HEADS)], marker="x", s=80, color="k", label="w_true")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xticks=x, xticklabels=list(HEADS), ylabel="weight (unit L1 sphere)")
    ax.legend(fontsize=8)


def plot_auc_differences(
    comparisons: Mapping[str, Any], study: Mapping[str, float], ax: Axes
) -> None:
    """Each model's pooled difference of mean test AUC from the reference with its combined
    95% interval (every seed's difference as a dot), beside the poster's difference."""
    names = list(comparisons["models"])
    for i, name in enumerate(names):
        d = comparisons["models"][name]["difference"]
        lo, hi = d["ci95"]
        label = "this run: mean, combined 95% CI, each seed" if i == 0 else None
        error = [[d["mean"] - lo], [hi - d["mean"]]]
        ax.errorbar(i, d["mean"], yerr=error, fmt="o", color="C0", label=label)
        ax.scatter([i] * len(d["per_seed"]), d["per_seed"], s=10, color="C0", alpha=0.5)
    shown = [i for i, name in enumerate(names) if name in study]
    ax.scatter(shown, [study[names[i]] for i in shown], marker="D", color="C3", label="the poster")
    ax.axhline(0, color="grey", lw=0.5)
    reference = comparisons["reference"]
    ax.set(xticks=range(len(names)), xticklabels=names, ylabel=f"mean test AUC - {reference}'s")
    ax.legend(fontsize=8)


def plot_decomposition(cells: list[Mapping[str, Any]], effect_true: float | None, ax: Axes) -> None:
    """Every cell of the causal step's decomposition: its naive and instrumented effects with
    their combined 95% intervals, one row per cell (candidates, weights, probabilities,
    selectivity), beside the true effect (simulated data)."""
    labels = [
        " · ".join(c[n] for n in ("candidates", "weights", "probabilities", "selectivity"))
        for c in cells
    ]
    y = np.arange(len(cells))[::-1]
    for j, (name, label) in enumerate((("effect", "naive"), ("effect_iv", "instrumented"))):
        mean = np.array([c[name]["mean"] for c in cells])
        ci = np.array([c[name]["ci95"] for c in cells]).T
        ax.errorbar(mean, y + (0.15 - 0.3 * j), xerr=np.abs(ci - mean), fmt="o", ms=3, label=label)
    if effect_true is not None:
        ax.axvline(effect_true, color="k", linestyle="--", label=f"true effect ({effect_true:g})")
    ax.axvline(0.0, color="grey", linewidth=0.5)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set(xlabel="effect of r(s-1) on c_s (combined 95% CI over the seeds)")
    ax.legend(loc="lower right", fontsize=8)
