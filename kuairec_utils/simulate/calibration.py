"""The published KuaiRec statistics the simulator is calibrated to, and the same statistics
computed from a release (simulated or real), side by side.

Sources: the KuaiRec paper and the dataset's own statistics notebook and README (big matrix);
for the small matrix, the statistics notebook's description of its watch ratios up to 5 and the
public figures of all its rows (mean, median, the shares at or above 1 and below 0.2).
docs/design.md section 8 lists them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.study import STUDY_AUC

# statistic -> (published value, relative tolerance the simulator is held to at default scale)
PUBLISHED: dict[str, tuple[float, float]] = {
    "watch_ratio mean": (0.9445, 0.10),
    "watch_ratio median": (0.7235, 0.08),
    "watch_ratio share >= 1": (0.3382, 0.08),
    "watch_ratio share >= 0.8": (0.4535, 0.08),
    "watch_ratio <= 5: mean": (0.851, 0.08),
    "watch_ratio <= 5: std": (0.719, 0.10),
    "watch_ratio <= 5: q25": (0.311, 0.30),
    "watch_ratio <= 5: q50": (0.716, 0.08),
    "watch_ratio <= 5: q75": (1.162, 0.08),
    "video_duration mean (s)": (14.6, 0.15),
    "video_duration q25 (s)": (7.4, 0.10),
    "video_duration q50 (s)": (9.6, 0.10),
    "video_duration q75 (s)": (12.2, 0.10),
    "interactions per user: mean": (1746.0, 0.15),
    "interactions per user: q25": (883.0, 0.25),
    "interactions per user: q50": (1847.0, 0.25),
    "interactions per user: q75": (2461.0, 0.20),
    "active days per user": (188322 / 7176, 0.10),
    "interactions per active user-day: mean": (66.5, 0.15),
    "interactions per active user-day: q25": (19.0, 0.25),
    "interactions per active user-day: q50": (42.0, 0.15),
    "interactions per active user-day: q75": (83.0, 0.15),
    "exact duplicate share": (968_000 / 12_530_806, 0.05),
}


# the small matrix: statistic -> (published value, relative tolerance, as the big matrix's)
PUBLISHED_SMALL: dict[str, tuple[float, float]] = {
    "watch_ratio mean": (0.92, 0.10),
    "watch_ratio median": (0.78, 0.08),
    "watch_ratio share >= 1": (0.33, 0.08),
    "watch_ratio share < 0.2": (0.11, 0.15),
    "watch_ratio <= 5: mean": (0.8554, 0.08),
    "watch_ratio <= 5: std": (0.5952, 0.10),
    "watch_ratio <= 5: q25": (0.4658, 0.30),
    "watch_ratio <= 5: q50": (0.7662, 0.08),
    "watch_ratio <= 5: q75": (1.1141, 0.08),
}


# the AUC anchors: the study's mean test AUC of the two baselines on real KuaiRec, which this
# repository's pipeline (03) is held to on the simulated data, within an absolute distance
AUC_ANCHORS: dict[str, float] = {name: STUDY_AUC[name]["mean"] for name in ("logreg", "edge_mlp")}
AUC_TOLERANCE = 0.015


def watch_ratio_statistics(watch_ratio: np.ndarray) -> dict[str, float]:
    """The watch-ratio marginals of a matrix: mean, median, shares, and the description of the
    rows up to 5 that KuaiRec's statistics notebook gives."""
    wr = np.asarray(watch_ratio, dtype=np.float64)
    w5 = wr[wr <= 5]
    q = np.quantile
    return {
        "watch_ratio mean": wr.mean(),
        "watch_ratio median": float(np.median(wr)),
        "watch_ratio share >= 1": (wr >= 1).mean(),
        "watch_ratio share >= 0.8": (wr >= 0.8).mean(),
        "watch_ratio share < 0.2": (wr < 0.2).mean(),
        "watch_ratio <= 5: mean": w5.mean(),
        "watch_ratio <= 5: std": w5.std(ddof=1),
        "watch_ratio <= 5: q25": q(w5, 0.25),
        "watch_ratio <= 5: q50": q(w5, 0.5),
        "watch_ratio <= 5: q75": q(w5, 0.75),
    }


def release_statistics(big_matrix: pd.DataFrame) -> dict[str, float]:
    """The published statistics, computed from a big_matrix frame (duplicates included, as in
    the published figures)."""
    dur_s = big_matrix["video_duration"].to_numpy(np.float64) / 1000.0
    per_user = big_matrix.groupby("user_id", observed=True).size()
    per_day = big_matrix.groupby(["user_id", "date"], observed=True).size()
    q = np.quantile
    return watch_ratio_statistics(big_matrix["watch_ratio"]) | {
        "video_duration mean (s)": dur_s.mean(),
        "video_duration q25 (s)": q(dur_s, 0.25),
        "video_duration q50 (s)": q(dur_s, 0.5),
        "video_duration q75 (s)": q(dur_s, 0.75),
        "interactions per user: mean": per_user.mean(),
        "interactions per user: q25": per_user.quantile(0.25),
        "interactions per user: q50": per_user.quantile(0.5),
        "interactions per user: q75": per_user.quantile(0.75),
        "active days per user": len(per_day) / len(per_user),
        "interactions per active user-day: mean": per_day.mean(),
        "interactions per active user-day: q25": per_day.quantile(0.25),
        "interactions per active user-day: q50": per_day.quantile(0.5),
        "interactions per active user-day: q75": per_day.quantile(0.75),
        "exact duplicate share": big_matrix.duplicated().mean(),
    }


def calibration_table(big_matrix: pd.DataFrame) -> pd.DataFrame:
    """Each statistic of the big matrix beside the published figure, the relative gap and
    whether it is within the stated tolerance."""
    return _table(release_statistics(big_matrix), PUBLISHED)


def small_calibration_table(small_matrix: pd.DataFrame) -> pd.DataFrame:
    """The same for the small matrix's watch ratios."""
    return _table(watch_ratio_statistics(small_matrix["watch_ratio"]), PUBLISHED_SMALL)


def auc_anchor_table(test_auc: dict[str, float | None]) -> pd.DataFrame:
    """Each baseline's mean test AUC on these data beside the study's on real KuaiRec, the gap
    (absolute, not relative) and whether it is within AUC_TOLERANCE; a model not yet trained
    (None) has no gap."""
    rows = []
    for name, published in AUC_ANCHORS.items():
        value = test_auc.get(name)
        gap = None if value is None else float(value) - published
        rows.append(
            {
                "model": name,
                "data": value,
                "published": published,
                "gap": gap,
                "tolerance": AUC_TOLERANCE,
                "within": gap is not None and abs(gap) <= AUC_TOLERANCE,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def calibration_records(
    tables: dict[str, pd.DataFrame],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every row of each calibration table, JSON-ready (None where not measured), and the summary
    DVC shows: how many statistics hold and the largest gap (relative for the matrices, absolute
    for the AUC anchors; None while an anchor is not measured)."""
    details: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for name, table in tables.items():
        details[name] = {
            key: {
                c: bool(v) if c == "within" else None if pd.isna(v) else float(v)
                for c, v in row.items()
            }
            for key, row in table.to_dict(orient="index").items()
        }
        absolute = "gap" in table
        gap = table["gap"] if absolute else table["relative_gap"]
        summary[name] = {
            "statistics": len(table),
            "within_tolerance": int(table["within"].sum()),
            "max_abs_gap" if absolute else "max_abs_relative_gap": (
                None if gap.isna().any() else float(gap.abs().max())
            ),
        }
    return details, summary


def _table(
    stats: dict[str, float], published_values: dict[str, tuple[float, float]]
) -> pd.DataFrame:
    rows = []
    for name, (published, tol) in published_values.items():
        value = float(stats[name])
        gap = value / published - 1.0
        rows.append(
            {
                "statistic": name,
                "data": value,
                "published": published,
                "relative_gap": gap,
                "tolerance": tol,
                "within": abs(gap) <= tol,
            }
        )
    return pd.DataFrame(rows).set_index("statistic")
