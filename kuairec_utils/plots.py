"""The data behind the plots DVC compares across runs (``dvc plots diff``).

Each table is written by ``write_plot_data`` as a CSV under ``metrics/plots/`` with the metrics'
significant digits, so two runs of the same seeds write the same bytes, and dvc.yaml's
``plots`` section says how to draw it: the training curves (validation mean AUC by epoch, every
seed), the ROC points (true positive rate per head on a fixed grid of false positive rates) and
each estimator's head weights against ``w_true``. The notebooks' figures are drawn by
``kuairec_utils.figures``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.heads import HEADS
from kuairec_utils.metrics import SIGNIFICANT_DIGITS

ROC_GRID = np.linspace(0.0, 1.0, 101)  # false positive rates at which the ROC points are kept


def write_plot_data(path: str | Path, frame: pd.DataFrame) -> Path:
    """``frame`` as CSV at ``path``, floats to the metrics' significant digits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format=f"%.{SIGNIFICANT_DIGITS}g", lineterminator="\n")
    return path


def training_curves(histories: Mapping[int, list[Mapping[str, float]]]) -> pd.DataFrame:
    """One row per seed and epoch: the training loss and the validation mean AUC (no wall
    time: the same seed, the same bytes)."""
    rows = [
        {"seed": int(seed), "epoch": int(r["epoch"]), "train_loss": r["train_loss"]}
        | {"val_auc": r["val_auc_mean"]}
        for seed, history in histories.items()
        for r in history
    ]
    return pd.DataFrame(rows, columns=["seed", "epoch", "train_loss", "val_auc"])


def roc_points(y: np.ndarray, p: np.ndarray, grid: np.ndarray = ROC_GRID) -> pd.DataFrame:
    """Each head's ROC curve as its true positive rate at the false positive rates ``grid``
    (the curve's upper envelope: the best rate reached at or below each false positive rate).
    ``y`` and ``p``: (n, heads) labels and probabilities."""
    from sklearn.metrics import roc_curve

    out = {"fpr": grid}
    for j, head in enumerate(HEADS):
        fpr, tpr, _ = roc_curve(y[:, j], p[:, j])
        at = np.searchsorted(fpr, grid, side="right") - 1  # the last point at or below
        out[f"tpr_{head}"] = tpr[np.clip(at, 0, len(tpr) - 1)]
    return pd.DataFrame(out)


def weights_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """One row per estimator and head of 05's record: w (mean over the seeds), its combined
    95% interval and ``w_true`` (empty on real data)."""
    w_true = record.get("w_true") or {}
    rows = []
    for name, estimate in record["estimators"].items():
        if "w" not in estimate:
            continue  # (an estimator not fitted on this data)
        for head in HEADS:
            lo, hi = estimate["ci95"][head] if estimate.get("ci95") else (np.nan, np.nan)
            rows.append(
                {"estimator": name, "head": head, "w": estimate["w"][head]}
                | {"ci_low": lo, "ci_high": hi, "w_true": w_true.get(head, np.nan)}
            )
    return pd.DataFrame(rows, columns=["estimator", "head", "w", "ci_low", "ci_high", "w_true"])
