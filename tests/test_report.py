"""The results page is built from the metrics alone."""

from __future__ import annotations

import json
from pathlib import Path

from kuairec_utils.report import build_report, main

HEADS = ["complete", "long", "rewatch", "negative"]


def auc(model: str, base: float) -> dict:
    values = {h: base + 0.01 * i for i, h in enumerate(HEADS)}
    values["mean"] = sum(values.values()) / 4
    return {"model": model, "test_auc": values, "val_auc": values}


def test_report_puts_every_metric_on_the_page(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "auc_gnn_h64.json").write_text(json.dumps(auc("gnn_h64", 0.81)))
    (metrics / "auc_oracle.json").write_text(json.dumps(auc("oracle", 0.9)))
    (metrics / "data.json").write_text(json.dumps({"n_interactions": {"train": 10}, "n_users": 3}))
    w = {"complete": 0.3, "long": 0.1, "rewatch": -0.1, "negative": -0.5}
    weights = {
        "w": w,
        "ci95": {h: [v - 0.1, v + 0.1] for h, v in w.items()},
        "objective": 0.00123,
        "n_sessions": 4321,
        "w_true": w,
        "rank_logit": {"w": w, "max_abs_error": 0.0},
        "max_abs_error": 0.0,
    }
    (metrics / "weights.json").write_text(json.dumps(weights))
    causal = {
        "effect": -4.2,
        "se": 0.5,
        "ci95": [-5.1, -3.2],
        "n_sessions": 999,
        "effect_true": -5.0,
        "placebo": {"effect": 0.1, "se": 0.4},
    }
    (metrics / "causal.json").write_text(json.dumps(causal))
    text = build_report(metrics, tmp_path / "reports")
    for expected in ("0.8100", "0.9000", "-0.0900", "4,321", "-4.2000", "0.1000", "-5.0", "0.8237"):
        assert expected in text, expected
    assert main(["--metrics", str(metrics), "--reports", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "results.md").read_text() == text
