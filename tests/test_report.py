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
    representation = {
        "users": {"n": 9, "effective_rank": 1.0512, "first_share": 0.9912, "corr_log_degree": 0.97},
        "warm_items": {"n": 7, "effective_rank": 1.04, "first_share": 0.998},
    }
    gnn = {**auc("gnn_h64", 0.81), "representation": representation}
    (metrics / "auc_gnn_h64.json").write_text(json.dumps(gnn))
    (metrics / "auc_oracle.json").write_text(json.dumps(auc("oracle", 0.9)))
    no_shock = {**auc("oracle without the session shock", 0.88), "user_mean_c": auc("x", 0.87)}
    (metrics / "auc_oracle_no_shock.json").write_text(json.dumps(no_shock))
    (metrics / "data.json").write_text(json.dumps({"n_interactions": {"train": 10}, "n_users": 3}))
    w = {"complete": 0.3, "long": 0.1, "rewatch": -0.1, "negative": -0.5}
    weights = {
        "w": w,
        "ci95": {h: [v - 0.1, v + 0.1] for h, v in w.items()},
        "objective": 0.00123,
        "n_sessions": 4321,
        "w_true": w,
        "rank_logit": {"w": w, "max_abs_error": 0.0},
        "selection": {
            "w": {"complete": 0.25, "long": 0.05, "rewatch": 0.0, "negative": -0.7},
            "ci95": {h: [-0.9, 0.4567] for h in w},
            "noise_sd": 0.0536,
            "n_sessions": 1234,
            "min_feed": 20,
            "max_abs_error": 0.163,
            "bias_correction": "jackknife",
            "uncorrected": {
                "w": {"complete": 0.2, "long": 0.1, "rewatch": -0.1, "negative": -0.6},
                "noise_sd": 0.0444,
            },
        },
        "max_abs_error": 0.0,
        "ranking_agreement_true_probabilities": {
            "platform_keeps_deterministic_top_k": 0.8634,
            "plain w* (GNN)": {"max_abs_error": 0.07, "spearman": 0.99, "top_k_overlap": 0.8977},
            "rank logit w (GNN)": {
                "max_abs_error": 0.55,
                "spearman": 0.98,
                "top_k_overlap": 0.9412,
            },
        },
        "diagnosis_true_probabilities": {
            "plain": {
                "max_abs_error": 0.6771,
                "objective": 0.0052373,
                "objective_at_w_true": 0.005482,
            },
            "plain_gnn": {"objective": 0.0056942, "objective_at_w_true": 0.0059933},
            "rank_logit": {"max_abs_error": 0.3782},
            "selection": {"max_abs_error": 0.0113},
        },
    }
    (metrics / "weights.json").write_text(json.dumps(weights))
    causal = {
        "effect": -4.2,
        "se": 0.5,
        "ci95": [-5.1, -3.2],
        "n_sessions": 999,
        "effect_true": -5.0,
        "placebo": {"effect": 0.1, "se": 0.4},
        "feed_index_held": {"effect": -0.6437, "se": 0.2, "effect_iv": -1.2734, "se_iv": 0.28},
        "candidates_held": {
            "effect": -0.4121,
            "se": 0.21,
            "effect_iv": -1.2013,
            "se_iv": 0.29,
            "placebo": 0.4937,
            "placebo_se": 0.16,
        },
        "quality_offset": "watch",
        "selectivity_variant": {
            "c_s": "c_s from the skips alone",
            "effect": 0.8591,
            "se": 0.31,
            "effect_iv": 0.0352,
            "se_iv": 0.39,
        },
        "watch_depth": {
            "slopes": {"x": 0.2914, "log_duration": -0.47, "log_position": -0.11},
            "scale": 4.22,
            "offset_sd": 0.61,
            "sessions_all_skipped": 98,
        },
        "evaluation": {
            "corr_quality_offset_true": 0.6167,
            "with_the_truth": {
                "true residual, estimated c_s": {"effect": -4.6543, "se": 0.3},
                "true residual, c_s from the skips alone": {"effect": -8.8251, "se": 0.55},
                "true residual, c_s from the skips with the true quality offset": {
                    "effect": -5.0412,
                    "se": 0.26,
                },
                "true residual, estimated c_s, feed's index held": {"effect": -4.3471, "se": 0.29},
                "true residual, estimated c_s, the candidates' scores held": {
                    "effect": -5.8941,
                    "se": 0.27,
                },
            },
            "diagnosis": {
                "corr_residual_true_within_user": 0.0281,
                "true c_s on measured r(s-1)": {"effect": -0.1262, "se": 0.06},
                "error of estimated c_s on measured r(s-1)": {"effect": 3.0134, "se": 0.1},
                "true c_s on measured r(s+1)": {"effect": 0.2118, "se": 0.064},
                "true c_s on measured r(s+1), the candidates' scores held": {
                    "effect": -0.0731,
                    "se": 0.065,
                },
            },
            "observable_part": {
                "within_r2": 0.1923,
                "within_r2_length_only": 0.1051,
                "true c_s on projected r(s-1)": {"effect": -5.0261, "se": 0.2},
                "estimated c_s on projected r(s-1)": {"effect": -1.9861, "se": 0.6},
            },
        },
    }
    (metrics / "causal.json").write_text(json.dumps(causal))
    text = build_report(metrics, tmp_path / "reports")
    for expected in ("0.8100", "0.9000", "-0.0900", "4,321", "-4.2000", "0.1000", "-5.0", "0.8237"):
        assert expected in text, expected
    lines = text.splitlines()
    oracle_row = next(i for i, line in enumerate(lines) if line.startswith("| oracle (true"))
    assert lines[oracle_row + 1].startswith(
        "| oracle without the session shock, c_s learnt in the session | 0.8800 |"
    )
    assert lines[oracle_row + 2].startswith(
        "| oracle without the session shock, c_s at the user's mean | 0.8700 |"
    )
    assert lines[oracle_row + 2].endswith("| -0.0300 |")
    for expected in (
        "plain w* (GNN) (max error 0.07) 89.8%",
        "(max error 0.55) 94.1%",
        "86.3%",
        "plain 0.677 (objective 0.0052373 at its estimate, 0.005482 at w_true)",
        "rank logit 0.378, selection 0.011; on the GNN's: objective 0.0056942 at w*, 0.0059933"
        " at w_true.",
        "| w (selection) | 95% CI (selection) | w_true |",
        "| -0.7000 | [-0.900, 0.457] | -0.5000 |",
        "fits the 1,234 sessions with a feed of at least 20 videos",
        "noise has sd 0.054",
        "no repeated video, with the split-panel jackknife's correction of the per-session"
        " parameters' bias (without it: noise sd 0.044, max error 0.100); its ranking",
        "Max |w - w_true|: plain 0.000, rank logit 0.000, selection 0.163 (target 0.02).",
        "gnn_h64's final representations, effective rank: users 1.05 (99.1% of the variance on"
        " the first direction, |corr| 0.97 with the log degree); videos of the training graph"
        " 1.04 (99.8% of the variance on the first direction).",
    ):
        assert expected in text, expected
    for expected in (
        "| r(s-1), naive, the feed's mean index held | -0.6437 | 0.2000 |  |",
        "(se 0.3000); with the feed's mean index held too: -4.3471 (se 0.2900).",
        "| r(s-1), instrumented, the feed's mean index held | -1.2734 | 0.2800 |  |",
        "| r(s-1), naive, c_s from the skips alone | 0.8591 | 0.3100 |  |",
        "| r(s-1), instrumented, c_s from the skips alone | 0.0352 | 0.3900 |  |",
        "| r(s-1), naive, the candidates' scores held | -0.4121 | 0.2100 |  |",
        "| r(s-1), instrumented, the candidates' scores held | -1.2013 | 0.2900 |  |",
        "| r(s+1), placebo, the candidates' scores held | 0.4937 | 0.1600 |  |",
        "the true c_s on the measured r(s+1) gives 0.2118 (se 0.0640), and -0.0731 (se 0.0650)"
        " with the next session's candidates' score mean and sd held",
        "with the true residual the same control gives -5.8941 (se 0.2700).",
        "log watch_ratio rises by 0.291 per unit of the index within a session; offsets' sd 0.61",
        "With the true residual and c_s from the skips alone: -8.8251 (se 0.5500).",
        "(a perfect watch-depth measurement): -5.0412 (se 0.2600); the watch-depth offset"
        " correlates 0.617 with it.",
    ):
        assert expected in text, expected
    for expected in ("-4.6543", "0.028 with the true one", "-0.1262", "3.0134", "19.2%", "-5.0261"):
        assert expected in text, expected
    assert main(["--metrics", str(metrics), "--reports", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "results.md").read_text() == text


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    import pytest

    from kuairec_utils.report import README_END, README_START, update_readme

    metrics, reports = tmp_path / "metrics", tmp_path / "reports"
    (reports / "figures").mkdir(parents=True)
    metrics.mkdir()
    representation = {
        "users": {"n": 9, "effective_rank": 1.0512, "first_share": 0.9912, "corr_log_degree": 0.97},
        "warm_items": {"n": 7, "effective_rank": 1.04, "first_share": 0.998},
    }
    gnn = {**auc("gnn_h64", 0.81), "representation": representation}
    (metrics / "auc_gnn_h64.json").write_text(json.dumps(gnn))
    (reports / "figures" / "04_roc.png").write_bytes(b"\x89PNG fake")
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Title\n\nbefore\n\n{README_START}\nold numbers 0.123\n{README_END}\n\nafter\n"
    )
    update_readme(readme, metrics, reports, tmp_path / "docs" / "figures")
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old numbers" not in text and "### Value models: test AUC" in text
    assert "| gnn_h64 | 0.8100 |" in text
    assert "![04_roc](docs/figures/04_roc.png)" in text
    assert (tmp_path / "docs" / "figures" / "04_roc.png").read_bytes() == b"\x89PNG fake"
    update_readme(readme, metrics, reports, tmp_path / "docs" / "figures")
    assert readme.read_text() == text  # idempotent
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no results block"):
        update_readme(readme, metrics, reports, tmp_path / "docs" / "figures")
    assert readme.read_text() == "no markers\n"
