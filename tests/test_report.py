"""The results page and the README's block are built from the metrics alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuairec_utils.report.page import (
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
    sd = {h: 0.0002 for h in values}
    return {
        "model": model,
        "seeds": SEEDS,
        "test_auc": values,
        "test_auc_sd": sd,
        "val_auc": values,
        "val_auc_sd": sd,
    }


SEEDS = [1, 2, 3]


def pooled(mean: float, half: float, sd: float = 0.01, se: float = 0.02) -> dict:
    """A figure pooled over three seeds, as ``uncertainty.Pooled.record`` writes it."""
    return {
        "mean": mean,
        "sd_seeds": sd,
        "se_within": se,
        "se": half / 2,
        "df": 30.0,
        "ci95": [mean - half, mean + half],
        "per_seed": [mean - sd, mean, mean + sd],
    }


def write(folder: Path, name: str, record: dict) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(record))


def estimate(w: dict, half: float, error: float, verdict: str) -> dict:
    """An estimator's pooled record in weights_<model>.json."""
    return {
        "w": w,
        "ci95": {h: [v - half, v + half] for h, v in w.items()},
        "sd_seeds": {h: 0.02 for h in w},
        "seeds": SEEDS,
        "max_abs_error": {
            "mean": error,
            "sd_seeds": 0.03,
            "ci95": [error - 0.05, error + 0.05],
            "per_seed": [error - 0.03, error, error + 0.03],
        },
        "covers_w_true": {h: True for h in w},
        "verdict": verdict,
    }


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
    write(m, "auc_comparisons.json", {
        "reference": "edge_mlp", "seeds": SEEDS,
        "models": {
            "gnn_h64": {"difference": pooled(0.01, 0.004, 0.001, 0.0015), "verdict": "holds"},
            "taste_h64": {"difference": pooled(0.03, 0.004, 0.001, 0.0015), "verdict": "holds"},
        },
    })  # fmt: skip
    write(m, "data.json", {"n_interactions": {"train": 10}, "n_users": 3})
    selection_w = {"complete": 0.25, "long": 0.05, "rewatch": 0.0, "negative": -0.7}
    write(m, "weights_gnn_h64.json", {
        "model": "gnn_h64",
        "seeds": SEEDS,
        "n_sessions": 4321,
        "w_true": W,
        "w_tolerance": 0.05,
        "estimators": {
            "plain": estimate(W, 0.1, 0.0, "not distinguishable"),
            "rank_logit": estimate(W, 0.2, 0.0, "not distinguishable"),
            "selection": estimate(selection_w, 0.6, 0.163, "does not hold"),
        },
    })  # fmt: skip
    first = {
        "estimators": {},
        "details": {
            "plain": {"objective": 0.00123},
            "selection": {"noise_sd": 0.0536, "n_sessions": 1234, "min_feed": 20,
                          "bias_correction": "jackknife",
                          "uncorrected": {"w": {"complete": 0.2, "long": 0.1, "rewatch": -0.1,
                                                "negative": -0.6}, "noise_sd": 0.0444}},
        },
    }  # fmt: skip
    write(m, "details/weights_gnn_h64.json", {
        "runs": {"1": first},
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
    verdicts = {
        "effect_is_negative": "holds",
        "effect_iv_is_negative": "holds",
        "placebo_is_null": "holds",
        "effect_recovers_truth": "not distinguishable",
        "effect_iv_recovers_truth": "holds",
    }
    write(m, "causal_gnn_h64.json", {
        "model": "gnn_h64", "seeds": SEEDS, "estimator": "selection", "quality_offset": "watch",
        "n_sessions": 999, "effect": pooled(-4.2, 1.0), "effect_iv": pooled(-4.9, 0.8),
        "placebo": pooled(0.1, 0.8), "verdicts": verdicts, "effect_true": -5.0,
        "effect_tolerance": 1.0,
        "study_estimator": {
            "effect": pooled(-0.7, 0.3), "effect_iv": pooled(-1.2, 0.5),
            "placebo": pooled(0.3, 0.4),
            "verdicts": {"effect_is_negative": "holds", "placebo_is_null": "holds"},
        },
    })  # fmt: skip
    run = {
        "effect": -4.2, "se": 0.5, "ci95": [-5.1, -3.2], "placebo": {"effect": 0.1, "se": 0.4},
        "effect_iv": {"effect": -4.9, "se": 0.7, "ci95": [-6.0, -3.5]},
        "feed_index_held": {"effect": -0.6437, "se": 0.2, "effect_iv": -1.2734, "se_iv": 0.28},
        "selectivity_variant": {"c_s": "c_s from the skips alone", "effect": 0.8591, "se": 0.31,
                                "effect_iv": 0.0352, "se_iv": 0.39},
        "watch_depth": {"slopes": {"x": 0.2914}, "offset_sd": 0.61},
    }  # fmt: skip
    write(m, "details/causal_gnn_h64.json", {
        "runs": {"1": run},
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
    """The taste model beside the GNN: a better validation AUC, 05 and 06 on it, the ablation
    (supplementary)."""
    write(m, "auc_taste_h64.json", auc("taste_h64", 0.83))
    probe = {"users": 0.61, "warm_items": 0.45, "cold_items": 0.3}
    write(m, "details/taste_h64.json", {"representation": {}, "taste_probe_r2": probe})
    weights = json.loads((m / "weights_gnn_h64.json").read_text())
    weights["model"] = "taste_h64"
    weights["estimators"]["selection"] = estimate(W, 0.05, 0.0123, "holds")
    write(m, "weights_taste_h64.json", weights)
    for kind in ("weights", "causal"):
        details = (m / "details" / f"{kind}_gnn_h64.json").read_text()
        (m / "details" / f"{kind}_taste_h64.json").write_text(details)
    causal = json.loads((m / "causal_gnn_h64.json").read_text())
    causal["effect"] = pooled(-2.5, 1.0)
    write(m, "causal_taste_h64.json", causal)
    score = {"mean": 0.85, "sd": 0.001}
    variant = {k: score for k in ("val", "test", "test_warm", "test_cold")}
    variant |= {f"{k}_vs_edge_mlp": {"mean": 0.0021, "sd": 0.0004} for k in variant}
    no_propagation = variant | {"val": {"mean": 0.851, "sd": 0.001}}
    write(
        m.parent / "supplementary",
        "ablation.json",
        {
            "seeds": [1, 2, 3],
            "variants": {"taste model": variant, "no propagation (K = 0)": no_propagation},
        },
    )


def test_the_page_puts_every_headline_and_detail_on_it(metrics: Path, tmp_path: Path) -> None:
    page = tmp_path / "docs/results.md"
    supplementary = metrics.parent / "supplementary"
    text = build_report(metrics, tmp_path / "reports", page, tmp_path, "gnn_h64", supplementary)
    lines = text.splitlines()
    assert (  # like for like: the poster's H = 64 beside this run's H = 64, with a verdict
        "| the GNN (H = 64) beats the edge MLP: difference of mean test AUC | +0.0012 (0.8482 vs "
        "0.8470; one run) | +0.0100 [0.0060, 0.0140] (0.8250 vs 0.8150; seeds' sd 0.0010) | "
        "holds | oracle 0.9150 |"
    ) in text
    assert "its ablation: the propagation adds -0.0010 of validation AUC (3 seeds)" in text
    assert (
        "| the feeds reveal the head weights w: the study's estimator (plain), on gnn_h64 | w* "
        "(0.22, 0.10, -0.02, -0.66) | w (0.30, 0.10, -0.10, -0.50); max error 0.00 [-0.05, "
        "0.05], seeds' sd 0.03 | not distinguishable | w_true (0.30, 0.10, -0.10, -0.50) |"
    ) in text
    assert "max error 0.16 [0.11, 0.21], seeds' sd 0.03 | does not hold |" in text
    assert (
        "naive -4.20 [-5.20, -3.20]; instrumented -4.90 [-5.70, -4.10]; placebo r(s+1) +0.10 "
        "[-0.70, 0.90] | effect < 0: holds (instrumented: holds); placebo null: holds; recovers "
        "the truth: holds (instrumented) | -5 |"
    ) in text
    assert "| ... with the study's estimator's w* (plain), on gnn_h64 |  | naive -0.70" in text
    oracle_row = next(i for i, line in enumerate(lines) if line.startswith("| oracle (true"))
    assert lines[oracle_row + 2].endswith("|  | -0.0300 |")  # the second no-shock oracle
    for expected in (
        "| edge_mlp | 0.8000 | 0.8100 | 0.8200 | 0.8300 | 0.8150 | 0.0002 | -0.1000 |",
        "| gnn_h64 | 0.0012 | 0.0100 | 0.0010 | 0.0015 | [0.0060, 0.0140] | holds |",
        "| head | study w* | w (plain) ± seeds' sd | combined 95% CI (plain) |",
        "| negative | -0.6600 | -0.500 ± 0.020 | [-0.600, -0.400] | -0.500 ± 0.020 | [-0.700, "
        "-0.300] | -0.700 ± 0.020 | [-1.300, -0.100] | -0.5000 |",
        "plain not distinguishable; rank_logit not distinguishable; selection does not hold.",
        "4,321 sessions; the study's objective 0.00123 at w* (first seed); the simulated feed at w*"
        " shares 28.9%",
        "fits the 1,234 sessions with a feed of at least 20 videos and no repeated video, with the"
        " split-panel jackknife's correction of the per-session parameters' bias (without it: noise"
        " sd 0.044, max error 0.100); its ranking noise has sd 0.054",
        "selection 0.163 [0.113, 0.213] (per seed 0.133, 0.163, 0.193).",
        "plain (GNN) (max error 0.07) 89.8%",
        "deterministic top K.",
        "max errors: plain 0.677, selection 0.011. The study's objective is 0.0052373 at its"
        " estimate and 0.005482 at w_true there; on the value model's probabilities 0.0056942",
        "gnn_h64's final representations, effective rank: users 1.05 (99.1% of the variance",
        "| r(s-1), instrumented (selection) | -4.9000 | 0.0100 | 0.0200 | [-5.700, -4.100] | holds |",
        "| r(s+1), placebo (the study's plain) | 0.3000 | 0.0100 | 0.0200 | [-0.100, 0.700] | holds",
        "Recovers the simulator's true effect (-5): naive not distinguishable, instrumented holds.",
        "| r(s-1), instrumented | -4.9000 | 0.7000 | [-6.0, -3.5] |",
        "| r(s-1), naive, the feed's mean index held | -0.6437 | 0.2000 |  |",
        "| r(s-1), instrumented, c_s from the skips alone | 0.0352 | 0.3900 |  |",
        "log watch_ratio rises by 0.291 per unit of the index within a session; offsets' sd 0.61",
        "- true residual, estimated c_s: -4.6543 (se 0.3000), placebo 0.0100",
        "correlates 0.028 with the true one; the true c_s on the measured r(s-1) gives -0.1262",
        "explain 19.2% of the true residual's within-user variance",
        "| no propagation (K = 0) | 0.8510 (+0.0021 ± 0.0004) |",
    ):
        assert expected in text, expected
    assert "plain (true p)" not in text  # the agreement line lists the value model's estimates
    assert "## Head weights (value model gnn_h64)" in text
    # without the supplementary stage's metrics: no ablation section, a pointer in the claim
    text = build_report(metrics, tmp_path / "reports", page, tmp_path, "gnn_h64")
    assert "What each part of the taste model buys" not in text
    assert "(its ablation: `make ablation`)" in text


def test_the_best_value_model_leads_and_both_show_downstream(metrics: Path, tmp_path: Path) -> None:
    assert headline_model(metrics) == "taste_h64"  # the higher validation mean AUC
    assert headline_model(metrics, "gnn_h64") == "gnn_h64"
    with pytest.raises(ValueError, match="05 ran on"):
        headline_model(metrics, "gnn_h128")
    text = build_report(metrics, tmp_path / "reports", tmp_path / "docs/results.md", tmp_path)
    assert "## Head weights (value model taste_h64)" in text
    assert (
        "the feeds reveal the head weights w: the selection model (beyond the study), on " in text
    )
    assert "naive -2.50 [-3.50, -1.50]" in text  # the taste model's effect in the claims
    assert (
        "| gnn_h64 | 0.8250 | 0.163 [0.113, 0.213] | 0.000 [-0.050, 0.050] | 4 of 4 | 0.0281 | "
        "-4.20 [-5.20, -3.20] |"
    ) in text
    assert "| taste_h64 | 0.8450 | 0.012 [-0.038, 0.062] |" in text
    assert "beyond the study: the taste model" in text
    assert "+0.0300 [0.0260, 0.0340] (0.8450 vs 0.8150; seeds' sd 0.0010) | holds |" in text
    assert "R^2 of a linear probe of the true taste: users 0.61, warm items 0.45" in text


def test_only_params_downstream_models_are_reported(metrics: Path, tmp_path: Path) -> None:
    """Records an earlier run left for another value_model.downstream are not read."""
    page = tmp_path / "docs/results.md"
    text = build_report(metrics, tmp_path / "reports", page, tmp_path, downstream=["taste_h64"])
    assert "| gnn_h64 | 0.8250 | 0.163" not in text
    assert "| taste_h64 | 0.8450 | 0.012 [-0.038, 0.062] |" in text
    assert headline_model(metrics, "best", ["gnn_h64"]) == "gnn_h64"
    with pytest.raises(ValueError, match="05 ran on"):
        headline_model(metrics, "taste_h64", ["gnn_h64"])


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
    levels = ("across_users", "within_user")
    measures = ("corr_target", "partial_corr_preference", "corr_true_c")
    values = {"raw": 0.8, "structural": 0.86, "true": 0.9, "target": 1.0}
    diff = {"estimate": 0.06, "se": 0.01, "ci95": [0.04, 0.08]}
    entry = {"raw": 0.8, "corrected": 0.86, "true": 0.9, "target": 1.0}
    entry["difference"] = diff | {"verdict": "holds"}
    write(
        metrics,
        "debias_gnn_h64.json",
        {
            "model": "gnn_h64",
            "correction": "structural",
            "selectivity": "in_sample",
            "signal": "structural",
            "reference_c": -1.2,
            "evaluation": {lv: {m: entry for m in measures} for lv in levels},
        },
    )
    heads = ("complete", "long", "rewatch", "negative")
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
            "fitted_coefficients": {"in_sample": {"c_s": 0.83}, "cross_fitted": {"c_s": 0.41}},
            "by_group": groups,
            "evaluation": {
                "measures": {lv: {m: values for m in measures} for lv in levels},
                "differences": {
                    lv: {m: {"structural": diff, "true": diff} for m in measures} for lv in levels
                },
                "corr_preference": {
                    lv: {h: {"raw": 0.8, "structural": 0.86, "true": 0.9} for h in heads}
                    for lv in levels
                },
            },
        },
    )
    text = build_report(
        metrics, tmp_path / "reports", tmp_path / "docs/results.md", tmp_path, "gnn_h64"
    )
    assert "## Engagement signals at a common selectivity (value model gnn_h64)" in text
    assert (
        "| across users | structural | 0.8600 | +0.060 [0.040, 0.080] | 0.8600 "
        "| +0.060 [0.040, 0.080] | 0.8600 | +0.060 [0.040, 0.080] |"
    ) in text
    assert "| across users | negative | 0.8000 | 0.8600 | 0.9000 |" in text
    assert "slope on the estimated c_s: in-sample 0.830, cross-fitted 0.410" in text
    assert "| high_active | structural | 12 | 0.2000 | [0.180, 0.220] |" in text
    assert (
        "| structural: target 0.800 -> 0.860 (+0.060 [0.040, 0.080]); partial 0.800 -> 0.860 "
        "(+0.060 [0.040, 0.080]) | target: holds; partial: holds | true c_s: target 0.900; "
        "partial 0.900 |"
    ) in text
    # the taste model leads by default and has no debiasing run: no section, no claim
    assert "Engagement signals" not in build_report(
        metrics, tmp_path, tmp_path / "docs/results.md", tmp_path
    )
