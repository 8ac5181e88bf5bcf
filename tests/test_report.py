"""The results page and the README's block are built from the metrics alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuairec_utils.report import (
    README_END,
    README_START,
    build_report,
    headline_model,
    main,
    update_readme,
)

HEADS = ["complete", "long", "rewatch", "negative"]
W = {"complete": 0.3, "long": 0.1, "rewatch": -0.1, "negative": -0.5}


def auc(model: str, base: float) -> dict:
    values = {h: base + 0.01 * i for i, h in enumerate(HEADS)}
    values["mean"] = sum(values.values()) / 4
    return {"model": model, "test_auc": values, "val_auc": values}


def write(folder: Path, name: str, record: dict) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(record))


@pytest.fixture
def metrics(tmp_path: Path) -> Path:
    """A metrics folder as the stages write it, headline files and their details."""
    m = tmp_path / "metrics"
    representation = {
        "users": {"n": 9, "effective_rank": 1.0512, "first_share": 0.9912, "corr_log_degree": 0.97},
        "warm_items": {"n": 7, "effective_rank": 1.04, "first_share": 0.998},
    }
    for name, base in (("gnn_h64", 0.81), ("edge_mlp", 0.8), ("oracle", 0.9)):
        write(m, f"auc_{name}.json", auc(name, base))
    write(m, "details/gnn_h64.json", {"representation": representation})
    no_shock = {**auc("oracle without the session shock", 0.88), "user_mean_c": auc("x", 0.87)}
    write(m, "auc_oracle_no_shock.json", no_shock)
    write(m, "data.json", {"n_interactions": {"train": 10}, "n_users": 3})
    selection_w = {"complete": 0.25, "long": 0.05, "rewatch": 0.0, "negative": -0.7}
    write(m, "weights_gnn_h64.json", {
        "model": "gnn_h64",
        "n_sessions": 4321,
        "w_true": W,
        "estimators": {
            "plain": {"w": W, "ci95": {h: [v - 0.1, v + 0.1] for h, v in W.items()},
                      "max_abs_error": 0.0},
            "rank_logit": {"w": W, "ci95": {h: [v - 0.2, v + 0.2] for h, v in W.items()},
                           "max_abs_error": 0.0},
            "selection": {"w": selection_w, "ci95": {h: [-0.9, 0.4567] for h in W},
                          "max_abs_error": 0.163},
        },
    })  # fmt: skip
    write(m, "details/weights_gnn_h64.json", {
        "estimators": {
            "plain": {"objective": 0.00123},
            "selection": {"noise_sd": 0.0536, "n_sessions": 1234, "min_feed": 20,
                          "bias_correction": "jackknife",
                          "uncorrected": {"w": {"complete": 0.2, "long": 0.1, "rewatch": -0.1,
                                                "negative": -0.6}, "noise_sd": 0.0444}},
        },
        "feed_overlap": 0.289,
        "ranking_agreement_true_probabilities": {
            "platform_keeps_deterministic_top_k": 0.8634,
            "plain (GNN)": {"max_abs_error": 0.07, "spearman": 0.99, "top_k_overlap": 0.8977},
            "plain (true p)": {"max_abs_error": 0.5, "spearman": 0.9, "top_k_overlap": 0.5},
        },
        "diagnosis_true_probabilities": {
            "plain": {"max_abs_error": 0.6771, "objective": 0.0052373,
                      "objective_at_w_true": 0.005482},
            "plain_gnn": {"objective": 0.0056942, "objective_at_w_true": 0.0059933},
            "selection": {"max_abs_error": 0.0113},
        },
    })  # fmt: skip
    write(m, "causal_gnn_h64.json", {
        "effect": -4.2, "se": 0.5, "ci95": [-5.1, -3.2], "n_sessions": 999, "effect_true": -5.0,
        "placebo": {"effect": 0.1, "se": 0.4},
        "effect_iv": {"effect": -4.9, "se": 0.7, "ci95": [-6.0, -3.5]},
        "quality_offset": "watch",
    })  # fmt: skip
    write(m, "details/causal_gnn_h64.json", {
        "feed_index_held": {"effect": -0.6437, "se": 0.2, "effect_iv": -1.2734, "se_iv": 0.28},
        "selectivity_variant": {"c_s": "c_s from the skips alone", "effect": 0.8591, "se": 0.31,
                                "effect_iv": 0.0352, "se_iv": 0.39},
        "watch_depth": {"slopes": {"x": 0.2914}, "offset_sd": 0.61},
        "evaluation": {
            "with_the_truth": {"true residual, estimated c_s": {"effect": -4.6543, "se": 0.3,
                                                                "placebo": 0.01, "placebo_se": 0.2}},
            "diagnosis": {
                "corr_residual_true_within_user": 0.0281,
                "true c_s on measured r(s-1)": {"effect": -0.1262, "se": 0.06},
                "error of estimated c_s on measured r(s-1)": {"effect": 3.0134, "se": 0.1},
            },
            "observable_part": {
                "within_r2": 0.1923,
                "true c_s on projected r(s-1)": {"effect": -5.0261, "se": 0.2},
                "estimated c_s on projected r(s-1)": {"effect": -1.9861, "se": 0.6},
            },
        },
    })  # fmt: skip
    taste(m)
    return m


def taste(m: Path) -> None:
    """The taste model beside the GNN: a better validation AUC, 05 and 06 on it, the ablation."""
    write(m, "auc_taste_h64.json", auc("taste_h64", 0.83))
    probe = {"users": 0.61, "warm_items": 0.45, "cold_items": 0.3}
    write(m, "details/taste_h64.json", {"representation": {}, "taste_probe_r2": probe})
    weights = json.loads((m / "weights_gnn_h64.json").read_text())
    weights["model"] = "taste_h64"
    weights["estimators"]["selection"] |= {"w": W, "max_abs_error": 0.0123}
    write(m, "weights_taste_h64.json", weights)
    for kind in ("weights", "causal"):
        details = (m / "details" / f"{kind}_gnn_h64.json").read_text()
        (m / "details" / f"{kind}_taste_h64.json").write_text(details)
    causal = json.loads((m / "causal_gnn_h64.json").read_text()) | {"effect": -2.5}
    write(m, "causal_taste_h64.json", causal)
    score = {"mean": 0.85, "sd": 0.001}
    variant = {k: score for k in ("val", "test", "test_warm", "test_cold")}
    variant |= {f"{k}_vs_edge_mlp": {"mean": 0.0021, "sd": 0.0004} for k in variant}
    write(m, "ablation.json", {"seeds": [1, 2, 3], "variants": {"taste model": variant}})


def test_the_page_puts_every_headline_and_detail_on_it(metrics: Path, tmp_path: Path) -> None:
    page = tmp_path / "docs/results.md"
    text = build_report(metrics, tmp_path / "reports", page, tmp_path, headline="gnn_h64")
    lines = text.splitlines()
    assert "| the GNN beats the edge MLP (mean test AUC) | gnn_h64 0.8482 vs 0.8470 |" in text
    assert "gnn_h64 0.8250 vs 0.8150 | oracle 0.9150 |" in text
    assert "w* (0.22, 0.10, -0.02, -0.66) | plain (0.30, 0.10, -0.10, -0.50);" in text
    assert "selection (0.25, 0.05, 0.00, -0.70) | w_true (0.30, 0.10, -0.10, -0.50) |" in text
    assert "| naive -4.20 (se 0.50); instrumented -4.90 (se 0.70) | -5 |" in text
    oracle_row = next(i for i, line in enumerate(lines) if line.startswith("| oracle (true"))
    assert lines[oracle_row + 2].endswith("| -0.0300 |")  # the second no-shock oracle
    for expected in (
        "| head | study w* | w (plain) | 95% CI (plain) | w (rank_logit) | 95% CI (rank_logit)",
        "| negative | -0.6600 | -0.5000 | [-0.600, -0.400] | -0.5000 | [-0.700, -0.300] | -0.7000"
        " | [-0.900, 0.457] | -0.5000 |",
        "4,321 sessions; the study's objective 0.00123 at w*; the simulated feed at w* shares 28.9%",
        "fits the 1,234 sessions with a feed of at least 20 videos and no repeated video, with the"
        " split-panel jackknife's correction of the per-session parameters' bias (without it: noise"
        " sd 0.044, max error 0.100); its ranking noise has sd 0.054",
        "Max |w - w_true|: plain 0.000, rank_logit 0.000, selection 0.163.",
        "plain (GNN) (max error 0.07) 89.8%",
        "deterministic top K.",
        "max errors: plain 0.677, selection 0.011. The study's objective is 0.0052373 at its"
        " estimate and 0.005482 at w_true there; on the value model's probabilities 0.0056942",
        "gnn_h64's final representations, effective rank: users 1.05 (99.1% of the variance",
        "| r(s-1), instrumented | -4.9000 | 0.7000 | [-6.0, -3.5] |",
        "| r(s-1), naive, the feed's mean index held | -0.6437 | 0.2000 |  |",
        "| r(s-1), instrumented, c_s from the skips alone | 0.0352 | 0.3900 |  |",
        "log watch_ratio rises by 0.291 per unit of the index within a session; offsets' sd 0.61",
        "The simulator's true effect: -5.0.",
        "- true residual, estimated c_s: -4.6543 (se 0.3000), placebo 0.0100",
        "correlates 0.028 with the true one; the true c_s on the measured r(s-1) gives -0.1262",
        "explain 19.2% of the true residual's within-user variance",
    ):
        assert expected in text, expected
    assert "plain (true p)" not in text  # the agreement line lists the value model's estimates
    assert "## Head weights (value model gnn_h64)" in text


def test_the_best_value_model_leads_and_both_show_downstream(metrics: Path, tmp_path: Path) -> None:
    assert headline_model(metrics) == "taste_h64"  # the higher validation mean AUC
    assert headline_model(metrics, "gnn_h64") == "gnn_h64"
    with pytest.raises(ValueError, match="05 ran on"):
        headline_model(metrics, "gnn_h128")
    text = build_report(metrics, tmp_path / "reports", tmp_path / "docs/results.md", tmp_path)
    assert "## Head weights (value model taste_h64)" in text
    assert "the feeds reveal the head weights w (on taste_h64)" in text
    assert "naive -2.50 (se 0.50)" in text  # the taste model's effect in the claims
    assert (
        "| gnn_h64 | 0.8250 | (0.25, 0.05, 0.00, -0.70) | 0.1630 | 4 of 4 | 0.0000 | 0.0281 |"
        in text
    )
    assert "| taste_h64 | 0.8450 | (0.30, 0.10, -0.10, -0.50) | 0.0123 | 4 of 4 |" in text
    assert (
        "a graph model that learns taste beats the edge MLP |  | taste_h64 0.8450 vs 0.8150" in text
    )
    assert "| taste model | 0.8500 (+0.0021 ± 0.0004) |" in text
    assert "R^2 of a linear probe of the true taste: users 0.61, warm items 0.45" in text


def test_main_writes_the_page_and_copies_the_figures(metrics: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "figures").mkdir(parents=True)
    (reports / "figures" / "06_causal_gnn_h64.png").write_bytes(b"\x89PNG fake")
    page, figures = tmp_path / "docs" / "results.md", tmp_path / "docs" / "figures"
    figures.mkdir(parents=True)
    (figures / "06_causal.png").write_bytes(b"\x89PNG stale")  # no stage writes it any more
    args = ["--metrics", str(metrics), "--reports", str(reports), "--page", str(page)]
    assert main([*args, "--figures", str(figures)]) == 0
    assert (figures / "06_causal_gnn_h64.png").read_bytes() == b"\x89PNG fake"
    assert not (figures / "06_causal.png").exists()
    assert "![06_causal_gnn_h64.png](figures/06_causal_gnn_h64.png)" in page.read_text()


def test_readme_block_is_replaced_and_the_rest_kept(metrics: Path, tmp_path: Path) -> None:
    figures = tmp_path / "docs" / "figures"
    figures.mkdir(parents=True)
    (figures / "06_causal_taste_h64.png").write_bytes(b"\x89PNG fake")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{README_START}\nold 0.123\n{README_END}\n\nafter\n")
    update_readme(readme, metrics, figures)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old 0.123" not in text and "| claim | the poster, real KuaiRec |" in text
    assert "![06_causal_taste_h64](docs/figures/06_causal_taste_h64.png)" in text
    update_readme(readme, metrics, figures)
    assert readme.read_text() == text  # idempotent
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no results block"):
        update_readme(readme, metrics, figures)
    assert readme.read_text() == "no markers\n"


def test_the_debiasing_section_and_its_claim(metrics: Path, tmp_path: Path) -> None:
    share = {"estimate": 0.61, "ci95": [0.4, 0.8]}
    write(
        metrics,
        "debias_gnn_h64.json",
        {
            "model": "gnn_h64",
            "correction": "structural",
            "reference_c": -1.2,
            "share_of_gain_kept": share,
            "share_of_gain_kept_within_user": share,
            "corr_skip": {
                level: {"raw": 0.8, "structural": 0.86, "fitted": 0.84, "true": 0.9}
                for level in ("across_users", "within_user")
            },
        },
    )
    corr = {
        level: {
            h: {"raw": 0.8, "structural": 0.86, "fitted": 0.84, "true": 0.9}
            for h in ("complete", "long", "rewatch", "negative")
        }
        for level in ("across_users", "within_user")
    }
    shares = {
        level: {
            c: {h: share for h in ("complete", "long", "rewatch", "negative")}
            for c in ("structural", "fitted")
        }
        for level in corr
    }
    groups = [
        {
            "group": "high_active",
            "signal": s,
            "users": 12,
            "rate": 0.2,
            "ci95_low": 0.18,
            "ci95_high": 0.22,
            "head": "negative",
        }
        for s in ("raw", "structural")
    ]
    write(
        metrics,
        "details/debias_gnn_h64.json",
        {
            "correlation": corr,
            "share_of_gain": shares,
            "by_group": groups,
            "fitted_coefficients": {
                "intercept": 0.1,
                "c_s": 0.83,
                "index": -0.9,
                "log_position": 0.1,
            },
        },
    )
    text = build_report(
        metrics, tmp_path / "reports", tmp_path / "docs/results.md", tmp_path, "gnn_h64"
    )
    assert "## Engagement signals at a common selectivity (value model gnn_h64)" in text
    assert (
        "| across users | negative | 0.8000 | 0.8600 | 0.8400 | 0.9000 | 0.61 [0.400, 0.800] |"
        in text
    )
    assert "slope on the estimated c_s: 0.830" in text
    assert "| high_active | structural | 12 | 0.2000 | [0.180, 0.220] |" in text
    assert "| 0.61 [0.400, 0.800]; corr 0.800 -> 0.860 | corr 0.900 with the true c_s |" in text
    # the taste model leads by default and has no debiasing run: no section, no claim
    assert "Engagement signals" not in build_report(
        metrics, tmp_path, tmp_path / "docs/results.md", tmp_path
    )
