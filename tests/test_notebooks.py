"""The real notebooks, run headlessly by papermill on the tiny simulated data set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import papermill as pm
import pytest

from kuairec_utils.causal.decomposition import INGREDIENTS
from kuairec_utils.config import PROJ_ROOT
from kuairec_utils.study import STUDY_W

KERNEL = "kuairec"
pytestmark = pytest.mark.slow


def run_notebook(name: str, out_dir: Path, **parameters: object) -> dict:
    """Execute notebooks/<name> into out_dir with papermill; return the executed notebook."""
    out = out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(PROJ_ROOT / "notebooks" / name),
        str(out),
        parameters=parameters,
        kernel_name=KERNEL,
        progress_bar=False,
        cwd=str(out_dir),
    )
    return json.loads(out.read_text())


def test_00_simulator_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    # 03's logistic regression has run, its edge MLP not yet
    (tmp_path / "metrics").mkdir()
    logreg = {"model": "logreg", "test_auc": {"mean": 0.83}}
    (tmp_path / "metrics" / "auc_logreg.json").write_text(json.dumps(logreg))
    nb = run_notebook(
        "00_simulator.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        metrics_dir=str(tmp_path / "metrics"),
        figures_dir=str(tmp_path / "figures"),
    )
    tables = json.loads((tmp_path / "metrics" / "details" / "calibration.json").read_text())
    assert tables["big_matrix"]["exact duplicate share"]["data"] == pytest.approx(0.0773, abs=0.002)
    assert "watch_ratio share < 0.2" in tables["small_matrix"]
    anchors = tables["auc_anchors"]
    assert anchors["logreg"]["gap"] == pytest.approx(0.83 - 0.8237)
    assert anchors["logreg"]["within"] is True
    assert anchors["edge_mlp"]["data"] is None and anchors["edge_mlp"]["within"] is False
    summary = json.loads((tmp_path / "metrics" / "calibration.json").read_text())
    assert summary["auc_anchors"]["max_abs_gap"] is None  # not every anchor measured
    for matrix, table in tables.items():
        assert summary[matrix]["statistics"] == len(table)
        assert summary[matrix]["within_tolerance"] == sum(row["within"] for row in table.values())
    assert (tmp_path / "figures" / "00_calibration.png").stat().st_size > 10_000
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "w_true" in printed and "effect_true" in printed  # the ground-truth section ran


def test_01_data_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    run_notebook(
        "01_data.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        interim_dir=str(tmp_path / "interim"),
        metrics_dir=str(tmp_path / "metrics"),
        figures_dir=str(tmp_path / "figures"),
    )
    summary = json.loads((tmp_path / "metrics" / "data.json").read_text())
    assert set(summary["n_interactions"]) == {"train", "val", "test"}
    assert all(n > 0 for n in summary["n_interactions"].values())
    assert len(summary["bursts"]) == 3
    assert (tmp_path / "interim" / "interactions.parquet").exists()
    assert (tmp_path / "figures" / "01_daily_volume.png").exists()


def test_02_features_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    import pandas as pd

    from kuairec_utils.config import kuairec_data_dir
    from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
    from kuairec_utils.data.kuairec import read_table
    from kuairec_utils.heads import LabelThresholds

    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")  # what 01_data writes
    interactions, _ = build_interactions(big, InteractionsConfig(), LabelThresholds())
    (tmp_path / "interim").mkdir()
    interactions.to_parquet(tmp_path / "interim" / "interactions.parquet")
    run_notebook(
        "02_features.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        interim_dir=str(tmp_path / "interim"),
        processed_dir=str(tmp_path / "processed"),
        figures_dir=str(tmp_path / "figures"),
    )
    manifest = json.loads((tmp_path / "processed" / "features.json").read_text())
    names = [f["name"] for f in manifest["features"]]
    assert {f["group"] for f in manifest["features"]} == {"user", "item", "context", "history"}
    n_rows = 0
    for split in ("train", "val", "test"):
        part = pd.read_parquet(tmp_path / "processed" / f"{split}.parquet")
        assert list(part.columns) == manifest["id_columns"] + manifest["label_columns"] + names
        assert (part["split"] == split).all() and part[names].notna().all().all()
        n_rows += len(part)
    assert n_rows == len(interactions)
    assert (tmp_path / "figures" / "02_features.png").stat().st_size > 10_000


SEEDS = [20200705, 20200706]  # two value-model seeds: every figure is pooled over them
SMALL_TRAINING = {"epochs": 2, "batch_size": 4096, "patience": 1, "device": "cpu", "seeds": SEEDS}
DOWNSTREAM = "taste_h8"  # the value model 05 and 06 run on in these tests


def seed_dir(trained: Path, name: str, seed: int = SEEDS[0]) -> Path:
    return trained / "models" / name / f"seed_{seed}"


@pytest.fixture(scope="module")
def trained(tiny_sim: Path, tiny_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """03_baselines, 04_gnn (H = 8 and 16) and 04_taste (H = 8) run on the tiny data set; their
    output folder."""
    out = tmp_path_factory.mktemp("trained")
    common = {
        "processed_dir": str(tiny_processed),
        "models_dir": str(out / "models"),
        "metrics_dir": str(out / "metrics"),
    }
    run_notebook(
        "03_baselines.ipynb", out, raw_dir=str(tiny_sim), mlp_hidden=16, **common, **SMALL_TRAINING
    )
    for hidden in (8, 16):
        nb = run_notebook(
            "04_gnn.ipynb",
            out / f"h{hidden}",
            hidden=hidden,
            mlp_hidden=16,
            **common,
            **SMALL_TRAINING,
        )
        assert nb["cells"]
    run_notebook(
        "04_taste.ipynb",
        out / "taste",
        raw_dir=str(tiny_sim),
        hidden=8,
        mlp_hidden=16,
        **common,
        **SMALL_TRAINING,
    )
    return out


def test_03_baselines_and_04_gnn_notebooks(trained: Path) -> None:
    for name in ("logreg", "edge_mlp", "gnn_h8", "gnn_h16", "oracle"):
        record = json.loads((trained / "metrics" / f"auc_{name}.json").read_text())
        assert record["model"] == name
        assert set(record["test_auc"]) == {"complete", "long", "rewatch", "negative", "mean"}
        assert 0.5 < record["test_auc"]["mean"] <= 1.0, record  # beats chance
    for name in ("logreg", "edge_mlp", "gnn_h8"):  # every seed trained, and the mean over them
        record = json.loads((trained / "metrics" / f"auc_{name}.json").read_text())
        runs = json.loads((trained / "metrics" / "details" / f"{name}.json").read_text())["runs"]
        assert record["seeds"] == SEEDS and list(runs) == [str(s) for s in SEEDS]
        per_seed = [runs[str(s)]["test_auc"]["mean"] for s in SEEDS]
        assert per_seed[0] != per_seed[1]  # the seeds train different models
        assert record["test_auc"]["mean"] == pytest.approx(np.mean(per_seed), rel=1e-5)
        assert record["test_auc_sd"]["mean"] == pytest.approx(np.std(per_seed, ddof=1), abs=2e-6)
        for seed in SEEDS:
            for split in ("val", "test"):
                assert (seed_dir(trained, name, seed) / f"predictions_{split}.parquet").exists()
    history = pd.read_csv(seed_dir(trained, "gnn_h8") / "history.csv")
    assert "seconds" not in history.columns  # a rerun writes the same bytes (no wall times)
    assert history["val_auc_mean"].notna().all() and history["epoch"].is_monotonic_increasing
    embeddings = np.load(seed_dir(trained, "gnn_h8") / "embeddings.npz")
    assert embeddings["user"].shape[1] == 8 and len(embeddings["item"]) == len(
        embeddings["video_id"]
    )
    oracle = json.loads((trained / "metrics" / "auc_oracle.json").read_text())["test_auc"]["mean"]
    for name in ("logreg", "edge_mlp", "gnn_h8"):
        model = json.loads((trained / "metrics" / f"auc_{name}.json").read_text())["test_auc"][
            "mean"
        ]
        assert model < oracle + 0.01  # nothing beats the truth (beyond sampling noise)


def test_04_taste_notebook(trained: Path) -> None:
    record = json.loads((trained / "metrics" / "auc_taste_h8.json").read_text())
    assert record["model"] == "taste_h8" and 0.5 < record["test_auc"]["mean"] <= 1.0
    for rows in ("test_auc_warm", "test_auc_cold"):  # both kinds of test rows on the tiny data
        assert 0.5 < record[rows]["mean"] <= 1.0, rows
    config = json.loads((seed_dir(trained, "taste_h8") / "config.json").read_text())
    assert config["arch"] == "taste" and config["settings"]["n_tags"] > 1
    details = json.loads((trained / "metrics" / "details" / "taste_h8.json").read_text())
    users = details["representation"]["users"]
    assert users["dead_dims"] == 0 and users["effective_rank"] > 2  # not collapsed
    probe = details["taste_probe_r2"]  # the tiny platform's taste, read by evaluation only
    assert set(probe) == {"users", "warm_items", "cold_items"}
    assert probe["warm_items"] > 0.2  # videos start from their tags, which carry their taste


def test_04_taste_ablation_notebook(
    trained: Path, tiny_sim: Path, tiny_processed: Path, tmp_path: Path
) -> None:
    run_notebook(
        "04_taste_ablation.ipynb",
        tmp_path,
        processed_dir=str(tiny_processed),
        raw_dir=str(tiny_sim),
        metrics_dir=str(tmp_path / "metrics"),
        study_metrics_dir=str(trained / "metrics"),  # the taste stage's runs, reused
        n_seeds=2,
        hidden=8,
        mlp_hidden=16,
        **{**SMALL_TRAINING, "epochs": 1},
    )
    record = json.loads((tmp_path / "metrics" / "ablation.json").read_text())
    runs = json.loads((tmp_path / "metrics" / "details" / "ablation.json").read_text())["runs"]
    assert record["seeds"] == SEEDS
    assert len(record["variants"]) == 8 and len(runs) == 16
    reference = record["variants"]["edge MLP, same training"]
    assert reference["test_vs_edge_mlp"] == {"mean": 0.0, "sd": 0.0}
    taste = record["variants"]["taste model"]
    by_seed = {r["seed"]: r["test"] for r in runs if r["variant"] == "taste model"}
    assert taste["test"]["mean"] == pytest.approx(sum(by_seed.values()) / 2, abs=1e-6)
    assert len(set(by_seed.values())) == 2  # the seeds train different models
    # the taste model's rows are the taste stage's own runs, not trained again
    trained_runs = json.loads((trained / "metrics" / "details" / "taste_h8.json").read_text())
    for seed in SEEDS:
        assert by_seed[seed] == trained_runs["runs"][str(seed)]["test_auc"]["mean"]


def test_04_gnn_vs_oracle_notebook(
    trained: Path, tiny_sim: Path, tiny_interim: Path, tiny_processed: Path
) -> None:
    run_notebook(
        "04_gnn_vs_oracle.ipynb",
        trained,
        processed_dir=str(tiny_processed),
        interim_dir=str(tiny_interim),
        raw_dir=str(tiny_sim),
        models_dir=str(trained / "models"),
        metrics_dir=str(trained / "metrics"),
        reports_dir=str(trained / "reports"),
        figures_dir=str(trained / "figures"),
        models="logreg,edge_mlp,gnn_h8,gnn_h16",
        seeds=SEEDS,
    )
    table = (trained / "reports" / "auc_table.md").read_text()
    comparisons = json.loads((trained / "metrics" / "auc_comparisons.json").read_text())
    per_seed = json.loads((trained / "metrics" / "details" / "auc_comparisons.json").read_text())
    assert comparisons["reference"] == "edge_mlp" and set(comparisons["models"]) == {
        "logreg",
        "gnn_h8",
        "gnn_h16",
    }
    for name, c in comparisons["models"].items():  # each seed's paired difference, pooled
        runs = per_seed["models"][name]
        assert list(runs) == [str(s) for s in SEEDS]
        own = json.loads((trained / "metrics" / f"auc_{name}.json").read_text())["test_auc"]
        ref = json.loads((trained / "metrics" / "auc_edge_mlp.json").read_text())["test_auc"]
        assert c["difference"]["mean"] == pytest.approx(own["mean"] - ref["mean"], abs=2e-6)
        lo, hi = c["difference"]["ci95"]
        assert lo < c["difference"]["mean"] < hi and c["difference"]["sd_seeds"] > 0
        assert c["verdict"] == (
            "holds" if lo > 0 else "does not hold" if hi < 0 else "not distinguishable"
        )
    for row in ("oracle", "logreg", "gnn_h16", "edge_mlp (study, real KuaiRec)"):
        assert row in table
    no_shock = json.loads((trained / "metrics" / "auc_oracle_no_shock.json").read_text())
    oracle = json.loads((trained / "metrics" / "auc_oracle.json").read_text())["test_auc"]
    for auc in (no_shock["test_auc"], no_shock["user_mean_c"]["test_auc"]):
        assert 0.5 < auc["mean"] <= oracle["mean"] + 0.02
    assert "oracle, c_s learnt in the session" in table
    for plot in ("04_roc.png", "04_calibration.png"):
        assert (trained / "figures" / plot).stat().st_size > 10_000


def test_auc_ceiling_diagnostic_on_the_tiny_data(
    trained: Path, tiny_sim: Path, tiny_processed: Path
) -> None:
    """diagnostics/auc_ceiling.py: the ceilings of a model trained on the training days."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "auc_ceiling", Path(__file__).parents[1] / "diagnostics" / "auc_ceiling.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table, cold_share, _ = module.ceilings(tiny_processed, tiny_sim, trained / "models", epochs=3)
    info, info_no_shock = (
        "information ceiling, cold videos' own taste unknown",
        "information ceiling, shock and cold videos' own taste unknown",
    )
    assert list(table.index) == [
        "edge MLP (03_baselines)",
        "learnable ceiling (edge MLP)",
        "architecture ceiling (edge MLP, exact latents)",
        "structural learner, shock out (videos' taste and quality learnt)",
        info_no_shock,
        info,
        "oracle",
    ]
    assert 0 < cold_share < 1  # the later days show videos the training days never did
    assert table.loc["oracle", "gap to oracle (all)"] == 0
    assert ((table[["all", "warm videos", "cold videos"]] > 0.5).all()).all()
    # the information ceiling is the oracle on warm videos, and not on cold ones
    assert table.loc[info, "warm videos"] == table.loc["oracle", "warm videos"]
    assert table.loc[info, "cold videos"] != table.loc["oracle", "cold videos"]
    assert table.loc[info_no_shock, "all"] != table.loc[info, "all"]
    # the exact latents carry most of the utility: a model given them beats the plain MLP
    mlp = table.loc["edge MLP (03_baselines)"]
    assert table.loc["architecture ceiling (edge MLP, exact latents)", "all"] > mlp["all"]


HEAD_WEIGHTS_SMALL = {
    "n_others": 20,
    "n_screen": 8,
    "max_evaluations": 40,
    "n_boot": 5,
    "boot_grid": 20,
    "boot_refine": 5,
    "selection_min_feed": 10,  # the tiny platform has few long feeds (the jackknife needs 10)
    "selection_splits": 2,
}


@pytest.fixture(scope="module")
def head_weights(trained: Path, tiny_sim: Path, tiny_interim: Path, tiny_processed: Path) -> dict:
    """05_head_weights run once on the tiny data set: its parameters."""
    out = trained / "weights"
    common = {
        "interim_dir": str(tiny_interim),
        "processed_dir": str(tiny_processed),
        "raw_dir": str(tiny_sim),
        "models_dir": str(trained / "models"),
        "metrics_dir": str(out / "metrics"),
        "figures_dir": str(out / "figures"),
        "model": DOWNSTREAM,
        "seeds": SEEDS,
        **HEAD_WEIGHTS_SMALL,
    }
    run_notebook("05_head_weights.ipynb", out, **common)
    return common


def test_05_head_weights_notebook(head_weights: dict, trained: Path) -> None:
    out = trained / "weights"
    record = json.loads((out / "metrics" / f"weights_{DOWNSTREAM}.json").read_text())
    details = json.loads((out / "metrics" / "details" / f"weights_{DOWNSTREAM}.json").read_text())
    heads = ["complete", "long", "rewatch", "negative"]
    assert list(record["estimators"]) == ["plain", "rank_logit", "selection"]
    assert set(record["w_true"]) == set(heads) and record["n_sessions"] > 100
    assert record["seeds"] == SEEDS and list(details["runs"]) == [str(s) for s in SEEDS]
    runs = {s: details["runs"][str(s)] for s in SEEDS}
    for name, estimate in record["estimators"].items():  # each head pooled over the seeds
        per_seed = [runs[s]["estimators"][name] for s in SEEDS]
        for w in per_seed:  # every seed's w on the L1 sphere, with an interval
            assert sum(abs(v) for v in w["w"].values()) == pytest.approx(1.0, abs=1e-5)
            assert all(w["ci95"][h][0] <= w["ci95"][h][1] for h in heads), name
        for h in heads:
            values = [w["w"][h] for w in per_seed]
            assert estimate["w"][h] == pytest.approx(np.mean(values), abs=2e-6), (name, h)
            assert estimate["sd_seeds"][h] == pytest.approx(np.std(values, ddof=1), abs=2e-6)
            lo, hi = estimate["ci95"][h]
            assert lo <= min(values) and max(values) <= hi  # it holds both seeds' estimates
        errors = [max(abs(w["w"][h] - record["w_true"][h]) for h in heads) for w in per_seed]
        assert estimate["max_abs_error"]["mean"] == pytest.approx(np.mean(errors), abs=5e-6)
        covers = all(estimate["covers_w_true"].values())
        assert estimate["verdict"] in ("holds", "does not hold", "not distinguishable")
        assert (estimate["verdict"] == "does not hold") == (not covers), name
    selection = runs[SEEDS[0]]["estimators"]["selection"]  # the feeds of 10+ videos, no repeat
    more = runs[SEEDS[0]]["details"]["selection"]
    assert more["min_feed"] == 10 and more["n_sessions"] >= 30 and more["converged"]
    assert more["bias_correction"] == "jackknife" and more["splits"] == 2
    assert more["uncorrected"]["w"] != selection["w"] and 0 < more["noise_sd"]
    assert 0 < more["share_of_sessions_with_a_repeat"] < 1
    for h, (lo, hi) in selection["ci95"].items():  # normal intervals from the clustered se
        half = 1.959964 * more["se"][h]
        assert (lo, hi) == pytest.approx(
            (selection["w"][h] - half, selection["w"][h] + half), rel=1e-5, abs=2e-6
        )  # each figure written to 6 significant digits
    # each evaluation against the truth agrees with the estimate it judges
    diagnosis = details["diagnosis_true_probabilities"]
    assert set(diagnosis) == {"plain", "plain_gnn", "rank_logit", "selection"}
    first = runs[SEEDS[0]]
    judged = [(e, first["details"][n]) for n, e in first["estimators"].items()]
    for estimate, extra in [*judged, *((d, d) for n, d in diagnosis.items() if n != "plain_gnn")]:
        errors = [abs(estimate["w"][h] - record["w_true"][h]) for h in heads]
        assert estimate["max_abs_error"] == pytest.approx(max(errors), abs=5e-6)
        for h, (lo, hi) in estimate.get("ci95", {}).items():
            assert extra["ci_covers_w_true"][h] == (lo <= record["w_true"][h] <= hi), h
    offline = details["offline_small_matrix"]
    assert {"plain w", "rank_logit w", "selection w", "study w*"} < set(offline)
    assert set(offline["per_seed"]) == {str(s) for s in SEEDS}
    agreement = details["ranking_agreement_true_probabilities"]
    assert 0.5 < agreement["platform_keeps_deterministic_top_k"] <= 1
    # the simulator's w_true is the study's w*: ranked alike; a single head ranks otherwise
    assert record["w_true"] == STUDY_W
    assert agreement["study w*"] == {"max_abs_error": 0, "spearman": 1, "top_k_overlap": 1}
    for name in ("complete only", "-negative only"):
        assert agreement[name]["spearman"] < 1 and agreement[name]["top_k_overlap"] < 1, name
    assert offline["n_users"] > 5 and offline["k"] == 10
    assert offline["plain w"]["watch_ratio"] > 0
    folder = trained / "models" / "head_weights" / DOWNSTREAM
    feeds = pd.read_parquet(folder / f"seed_{SEEDS[0]}" / "feeds.parquet")
    per_session = feeds.groupby("session_id")[["observed", "simulated"]].sum()
    assert (per_session["observed"] == per_session["simulated"]).all()  # K_s videos each
    assert len(per_session) == record["n_sessions"]
    probs = [np.load(folder / f"seed_{s}" / "candidates.npz")["probs"] for s in SEEDS]
    assert probs[0].shape == probs[1].shape and not np.array_equal(probs[0], probs[1])
    # a second run reads the cached candidate probabilities and gives the same metrics
    nb = run_notebook("05_head_weights.ipynb", out / "again", **head_weights)
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert f"read from the cache for seeds {SEEDS}" in printed
    assert json.loads((out / "metrics" / f"weights_{DOWNSTREAM}.json").read_text()) == record


@pytest.fixture(scope="module")
def causal(head_weights: dict, trained: Path) -> Path:
    """06_causal run once on the tiny data set (after 05): its output folder."""
    out = trained / "causal"
    run_notebook(
        "06_causal.ipynb",
        out,
        interim_dir=head_weights["interim_dir"],
        raw_dir=head_weights["raw_dir"],
        models_dir=head_weights["models_dir"],
        metrics_dir=head_weights["metrics_dir"],
        figures_dir=str(out / "figures"),
        model=DOWNSTREAM,
        n_boot=3,
        seeds=SEEDS,
    )
    return out


def test_06_causal_notebook(head_weights: dict, causal: Path) -> None:
    record = json.loads(
        (Path(head_weights["metrics_dir"]) / f"causal_{DOWNSTREAM}.json").read_text()
    )
    details = json.loads(
        (Path(head_weights["metrics_dir"]) / "details" / f"causal_{DOWNSTREAM}.json").read_text()
    )
    for key in ("effect", "effect_iv", "placebo", "verdicts", "n_sessions", "effect_true"):
        assert key in record, key
    assert record["estimator"] == "selection" and record["seeds"] == SEEDS
    runs = details["runs"]
    assert list(runs) == [str(s) for s in SEEDS] and record["n_sessions"] > 50
    for key in ("effect", "effect_iv", "placebo"):  # each seed's estimate, pooled
        per_seed = [r[key] if key == "effect" else r[key]["effect"] for r in runs.values()]
        pooled = record[key]
        assert pooled["mean"] == pytest.approx(np.mean(per_seed), abs=1e-5), key
        assert pooled["ci95"][0] < pooled["mean"] < pooled["ci95"][1] and pooled["se"] > 0
    lo, hi = record["effect"]["ci95"]
    expected = "holds" if hi < 0 else "does not hold" if lo > 0 else "not distinguishable"
    assert record["verdicts"]["effect_is_negative"] == expected
    study = record["study_estimator"]  # the study's estimator's residual, beside
    assert set(study) == {"effect", "effect_iv", "placebo", "verdicts"}
    assert study["effect"]["mean"] != record["effect"]["mean"]
    first = runs[str(SEEDS[0])]
    assert first["ci95"][0] <= first["ci95"][1] and first["se"] > 0
    assert np.isfinite(first["effect"]) and np.isfinite(first["placebo"]["effect"])
    held = first["feed_index_held"]  # the variant with the feed's mean index as a control
    assert all(np.isfinite(held[k]) for k in ("effect", "effect_iv"))
    assert held["se"] > 0 and held["se_iv"] > 0 and held["effect"] != first["effect"]
    # the variant that holds the other candidates' score mean and sd of each residual's session
    cand = first["candidates_held"]
    assert all(np.isfinite(cand[k]) for k in ("effect", "effect_iv", "placebo"))
    assert min(cand["se"], cand["se_iv"], cand["placebo_se"]) > 0
    assert cand["effect"] != first["effect"] and cand["placebo"] != first["placebo"]["effect"]
    evaluation = details["evaluation"]
    assert "true c_s on measured r(s+1), the candidates' scores held" in evaluation["diagnosis"]
    assert set(evaluation["with_the_truth"]) == {
        "true residual, estimated c_s",
        "true residual, true c_s",
        "true residual, estimated c_s, feed's index held",
        "true residual, estimated c_s, the candidates' scores held",
        "true residual, c_s from the skips alone",
        "true residual, c_s from the skips with the true quality offset",
    }
    # the default c_s adds the watch-depth offset; the skips alone are the side variant
    assert record["quality_offset"] == "watch"
    variant = first["selectivity_variant"]
    assert variant["c_s"] == "c_s from the skips alone" and variant["se"] > 0
    assert np.isfinite(variant["effect"]) and variant["effect"] != first["effect"]
    assert first["watch_depth"]["scale"] > 0 and first["watch_depth"]["offset_sd"] > 0
    assert evaluation["corr_c_true"] == evaluation["corr_c_watch_true"]
    # the estimates measure their targets, if noisily: each correlates positively with the truth
    assert evaluation["corr_c_true"] > evaluation["corr_c_skips_true"] > 0
    assert evaluation["corr_quality_offset_true"] > 0
    diagnosis = evaluation["diagnosis"]
    assert diagnosis["corr_residual_true_within_user"] > 0
    for name in ("true c_s on measured r(s-1)", "error of estimated c_s on measured r(s-1)"):
        assert np.isfinite(diagnosis[name]["effect"]) and diagnosis[name]["se"] > 0, name
    observable = evaluation["observable_part"]
    assert 0 <= observable["within_r2_length_only"] <= observable["within_r2"] <= 1
    for name in ("true c_s on projected r(s-1)", "estimated c_s on projected r(s-1)"):
        assert np.isfinite(observable[name]["effect"]) and observable[name]["se"] > 0, name
    assert (causal / "figures" / f"06_causal_{DOWNSTREAM}.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def decomposition(head_weights: dict, causal: Path) -> Path:
    """06_decomposition run once on the tiny data set (after 06): its output folder."""
    out = causal.parent / "decomposition"
    run_notebook(
        "06_decomposition.ipynb",
        out,
        **{k: head_weights[k] for k in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")},
        figures_dir=str(out / "figures"),
        model=DOWNSTREAM,
        seeds=SEEDS,
    )
    return out


def test_06_decomposition_notebook(head_weights: dict, decomposition: Path) -> None:
    """Every cell of the decomposition on the tiny data: the logged pool beside the sampled
    candidates, each ingredient at each level, pooled over the seeds; its first cell is 06's
    main regression (the same residual and c_s), and with every true ingredient the measured
    residual is the simulator's."""
    metrics = Path(head_weights["metrics_dir"])
    record = json.loads((metrics / f"decomposition_{DOWNSTREAM}.json").read_text())
    details = json.loads((metrics / "details" / f"decomposition_{DOWNSTREAM}.json").read_text())
    causal = json.loads((metrics / "details" / f"causal_{DOWNSTREAM}.json").read_text())
    assert record["candidate_sets"] == ["sampled", "logged"] and record["effect_true"] == -5.0
    cells = {tuple(c[n] for n in INGREDIENTS): c for c in record["cells"]}
    assert len(cells) == 2 * 3 * 2 * 2  # candidates x weights (plain, selection, true) x ...
    for cell in cells.values():
        for name in ("effect", "effect_iv", "placebo"):
            assert cell[name]["se"] > 0 and len(cell[name]["per_seed"]) == len(SEEDS), name
            lo, hi = cell[name]["ci95"]
            assert lo < cell[name]["mean"] < hi
        assert -1 <= cell["corr_true_within_user"] <= 1
    today = cells[("sampled", "selection", "value model", "estimated")]
    for s in SEEDS:  # the first cell is 06's main regression, seed by seed
        main = causal["runs"][str(s)]
        run = {tuple(c[n] for n in INGREDIENTS): c for c in details["runs"][str(s)]}
        cell = run[("sampled", "selection", "value model", "estimated")]
        assert cell["effect"] == pytest.approx(main["effect"], rel=1e-6)
        assert cell["effect_se"] == pytest.approx(main["se_clustered"], rel=1e-6)
    assert today["effect"]["per_seed"] == pytest.approx(
        [causal["runs"][str(s)]["effect"] for s in SEEDS], rel=1e-6
    )
    # with the platform's logged scores the residual is the simulator's own, on every seed
    platform = cells[("logged", "true", "true", "true")]
    assert platform["corr_true_within_user"] > 0.95
    assert platform["effect"]["sd_seeds"] == pytest.approx(0.0, abs=1e-9)
    for estimate in ("effect", "effect_iv"):
        shares = record["shares"][estimate]
        for order in ("fixed order", "reverse order"):  # each path ends at the same cell
            steps = shares[order]
            assert tuple(steps) == (INGREDIENTS if order == "fixed order" else INGREDIENTS[::-1])
            total = sum(step["share"] for step in steps.values())
            size = sum(abs(step["share"]) for step in steps.values()) + abs(shares["left"])
            assert total + shares["left"] == pytest.approx(1.0, abs=1e-5 * size)  # 6 digits each
    assert set(record["targets"]) >= {"every true ingredient", "outside researcher, logged pool"}
    assert (
        decomposition / "figures" / f"06_decomposition_{DOWNSTREAM}.png"
    ).stat().st_size > 10_000


@pytest.fixture(scope="module")
def debias(head_weights: dict, causal: Path) -> Path:
    """07_debias run once on the tiny data set (after 06): its output folder."""
    out = causal.parent / "debias"
    run_notebook(
        "07_debias.ipynb",
        out,
        **{k: head_weights[k] for k in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")},
        figures_dir=str(out / "figures"),
        model=DOWNSTREAM,
        min_session_length=5,
        n_boot=20,
        seeds=SEEDS,
    )
    return out


def test_07_debias_notebook(head_weights: dict, debias: Path) -> None:
    metrics = Path(head_weights["metrics_dir"])
    record = json.loads((metrics / f"debias_{DOWNSTREAM}.json").read_text())
    details = json.loads((metrics / "details" / f"debias_{DOWNSTREAM}.json").read_text())
    assert (record["correction"], record["selectivity"]) == ("structural", "in_sample")
    assert record["signal"] == "structural" and np.isfinite(record["reference_c"])
    assert record["seeds"] == SEEDS and list(details["runs"]) == [str(s) for s in SEEDS]
    assert "share_of_gain_kept" not in json.dumps(record)
    first = details["runs"][str(SEEDS[0])]
    for level in ("across_users", "within_user"):
        for measure in ("corr_target", "partial_corr_preference", "corr_true_c"):
            entry = record["evaluation"][level][measure]
            diff = entry["difference"]  # paired: the difference of the written estimates
            assert diff["estimate"] == pytest.approx(entry["corrected"] - entry["raw"], abs=1e-5)
            assert diff["ci95"][0] <= diff["ci95"][1] and diff["se"] > 0, (level, measure)
            per_seed = [
                r["evaluation"]["differences"][level][measure]["structural"]["estimate"]
                for r in details["runs"].values()
            ]  # pooled over the seeds
            assert diff["per_seed"] == pytest.approx(per_seed, abs=1e-6)
            assert diff["estimate"] == pytest.approx(np.mean(per_seed), abs=1e-6)
    evaluation = details["evaluation"]
    signals = {"raw", "structural", "fitted", "structural_cross_fitted", "fitted_cross_fitted"}
    for level in ("across_users", "within_user"):
        for head in ("complete", "long", "rewatch", "negative"):
            assert set(evaluation["corr_preference"][level][head]) == signals | {"true"}
        assert set(evaluation["differences"][level]["corr_target"]) == signals - {"raw"} | {"true"}
    # on the tiny data selectivity biases the users' raw quick-skip rates: the true c_s moves them
    # toward their exact target. The headline correction takes selectivity out (its correlation
    # with the true c_s comes near the target's own) and tells more of the preference than the
    # value model's index; the fitted one, which keeps the part of the rate its slope leaves,
    # also moves the rates toward the target. (The in-sample structural rate follows the tiny
    # value model's index, too weak to beat the raw rate's correlation with the target here.)
    across = record["evaluation"]["across_users"]
    assert across["corr_target"]["true"] > across["corr_target"]["raw"] + 0.05
    selectivity = across["corr_true_c"]
    assert selectivity["raw"] > 0.3
    assert abs(selectivity["corrected"] - selectivity["target"]) < (
        abs(selectivity["raw"] - selectivity["target"]) - 0.2
    )
    partial = across["partial_corr_preference"]
    assert partial["difference"]["estimate"] > 0.1  # over the seeds, and on each seed
    for run in details["runs"].values():
        gain = run["evaluation"]["differences"]["across_users"]["partial_corr_preference"]
        assert gain["structural"]["estimate"] > 0.05
    fitted = evaluation["measures"]["across_users"]["corr_target"]["fitted"]
    assert fitted > across["corr_target"]["raw"]
    # 07 reproduced 06's c_s (the watch-depth offset, the index uncentred) before cross-fitting
    assert first["cross_fit"]["quality_offset"] == "watch"
    assert first["cross_fit"]["center_index"] == "no"
    assert details["fitted_coefficients"]["in_sample"]["c_s"] > 0  # more selective, more skips
    # the debiased skip rates vary less across users than the raw ones
    spread = first["skip_rate_sd_across_users"]
    assert first["evaluation"]["skip_rate_sd_across_users"]["true"] < spread["raw"]
    groups = pd.DataFrame(details["by_group"])
    assert set(groups["signal"]) == {"raw", "structural"}
    assert (groups["ci95_low"] <= groups["ci95_high"]).all() and (groups["users"] > 0).all()
    assert (debias / "figures" / f"07_debias_{DOWNSTREAM}.png").stat().st_size > 10_000


def test_06_scores_with_the_selection_estimate_or_names_its_absence(
    head_weights: dict, trained: Path, tmp_path: Path
) -> None:
    """causal.estimator = selection reads 05's selection model; without it, 06 stops at once
    with the reason (and writes no causal file)."""
    name = f"weights_{DOWNSTREAM}.json"
    record = json.loads((Path(head_weights["metrics_dir"]) / "details" / name).read_text())
    del record["runs"][str(SEEDS[0])]["estimators"]["selection"]["w"]  # as 05 writes it when
    metrics = tmp_path / "metrics"  # too few feeds are long
    (metrics / "details").mkdir(parents=True)
    (metrics / "details" / name).write_text(json.dumps(record))
    with pytest.raises(pm.PapermillExecutionError, match="holds no selection estimate"):
        run_notebook(
            "06_causal.ipynb",
            tmp_path / "out",
            interim_dir=head_weights["interim_dir"],
            raw_dir=head_weights["raw_dir"],
            models_dir=head_weights["models_dir"],
            metrics_dir=str(metrics),
            figures_dir=str(tmp_path / "figures"),
            model=DOWNSTREAM,
            estimator="selection",
            n_boot=3,
            seeds=SEEDS,
        )
    assert not (metrics / f"causal_{DOWNSTREAM}.json").exists()


def test_06_with_the_skips_alone_reports_the_watch_depth_offset_beside(
    head_weights: dict, causal: Path, tmp_path: Path
) -> None:
    """causal.quality_offset = none: c_s from the skips alone is the main estimate (the default
    run's side row), and the watch-depth offset is the side row."""
    details = Path(head_weights["metrics_dir"]) / "details"
    default = json.loads((details / f"causal_{DOWNSTREAM}.json").read_text())
    default = default["runs"][str(SEEDS[0])]
    metrics = tmp_path / "metrics"
    (metrics / "details").mkdir(parents=True)
    shutil.copy(details / f"weights_{DOWNSTREAM}.json", metrics / "details")
    models = tmp_path / "models"
    shutil.copytree(Path(head_weights["models_dir"]) / "head_weights", models / "head_weights")
    shutil.copytree(Path(head_weights["models_dir"]) / DOWNSTREAM, models / DOWNSTREAM)
    run_notebook(
        "06_causal.ipynb",
        tmp_path / "out",
        interim_dir=head_weights["interim_dir"],
        raw_dir=head_weights["raw_dir"],
        models_dir=str(models),
        metrics_dir=str(metrics),
        figures_dir=str(tmp_path / "figures"),
        model=DOWNSTREAM,
        n_boot=3,
        quality_offset="none",
        seeds=SEEDS,
    )
    assert json.loads((metrics / f"causal_{DOWNSTREAM}.json").read_text())["quality_offset"] == (
        "none"
    )
    details = json.loads((metrics / "details" / f"causal_{DOWNSTREAM}.json").read_text())
    record = details["runs"][str(SEEDS[0])] | {"evaluation": details["evaluation"]}
    assert record["selectivity_variant"]["c_s"] == "c_s with the watch-depth offset"
    # the two runs swap their main and side estimates
    assert record["effect"] == pytest.approx(default["selectivity_variant"]["effect"], rel=2e-6)
    assert record["selectivity_variant"]["effect"] == pytest.approx(default["effect"], rel=2e-6)
    evaluation = record["evaluation"]
    assert evaluation["corr_c_true"] == evaluation["corr_c_skips_true"]


def test_residual_measurement_diagnostic_on_the_tiny_data(head_weights: dict, causal: Path) -> None:
    """diagnostics/residual_measurement.py: measurements of the residual against the truth."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "residual_measurement",
        Path(__file__).parents[1] / "diagnostics" / "residual_measurement.py",
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table, r2 = module.measurements(
        *(Path(head_weights[d]) for d in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")),
        sigma=0.08,
        draws=2,
        model=DOWNSTREAM,
    )
    assert len(table) >= 4 and all(0 <= value <= 1 for value in r2.values())
    corr = table["within-user corr with the true residual"]
    assert corr.iloc[-1] == pytest.approx(1.0)  # the true residual itself
    assert ((corr >= -1) & (corr <= 1 + 1e-12)).all()
    assert np.isfinite(table["true c_s on r(s-1)"]).all() and (table["se"] > 0).all()


# what the ground truth adds to 05's and 06's metrics: evaluation only (dotted key prefixes)
ESTIMATORS = ("plain", "rank_logit", "selection")
TRUTH_ONLY = {  # each metrics file (headline and details): the keys the truth adds (prefixes)
    f"weights_{DOWNSTREAM}.json": (
        "w_true",
        "w_tolerance",
        *(
            f"estimators.{n}.{k}"
            for n in ESTIMATORS
            for k in ("max_abs_error", "covers", "verdict")
        ),
    ),
    f"details/weights_{DOWNSTREAM}.json": (
        *(f"runs.{s}.estimators.{n}.max_abs_error" for s in SEEDS for n in ESTIMATORS),
        *(f"runs.{s}.details.{n}.ci_covers_w_true" for s in SEEDS for n in ESTIMATORS),
        *(f"pooled.{n}.{h}.verdict" for n in ESTIMATORS for h in STUDY_W),
        "diagnosis_true_probabilities",
        "ranking_agreement_true_probabilities",
    ),
    f"causal_{DOWNSTREAM}.json": (
        "effect_true",
        "verdicts.effect_recovers",
        "verdicts.effect_iv_recovers",
    ),
    f"details/causal_{DOWNSTREAM}.json": ("evaluation",),
    f"debias_{DOWNSTREAM}.json": ("evaluation",),
    f"details/debias_{DOWNSTREAM}.json": ("evaluation", *(f"runs.{s}.evaluation" for s in SEEDS)),
}


def test_05_06_and_07_estimate_the_same_without_the_ground_truth(
    head_weights: dict, causal: Path, debias: Path, decomposition: Path, tmp_path: Path
) -> None:
    """Estimators never read the truth: 05, 06 and 07 run afresh on the same release without its
    ground_truth/ folder write every estimate of the run with it, bit for bit, and lack only
    the evaluation against the truth."""
    from kuairec_utils.metrics import leaves

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "KuaiRec 2.0").symlink_to(Path(head_weights["raw_dir"]) / "KuaiRec 2.0")
    models = tmp_path / "models"
    shutil.copytree(Path(head_weights["models_dir"]) / DOWNSTREAM, models / DOWNSTREAM)
    common = {**head_weights, "raw_dir": str(raw), "models_dir": str(models)}
    common |= {"metrics_dir": str(tmp_path / "metrics"), "figures_dir": str(tmp_path / "figures")}
    nb = run_notebook("05_head_weights.ipynb", tmp_path / "05", **common)
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "read from the cache for seeds []" in printed  # the candidates were scored afresh
    run_notebook(
        "06_causal.ipynb",
        tmp_path / "06",
        **{k: common[k] for k in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")},
        figures_dir=str(tmp_path / "figures"),
        model=DOWNSTREAM,
        n_boot=3,
        seeds=SEEDS,
    )
    run_notebook(
        "07_debias.ipynb",
        tmp_path / "07",
        **{k: common[k] for k in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")},
        figures_dir=str(tmp_path / "figures"),
        model=DOWNSTREAM,
        min_session_length=5,
        n_boot=20,
        seeds=SEEDS,
    )
    run_notebook(
        "06_decomposition.ipynb",
        tmp_path / "06d",
        **{k: common[k] for k in ("interim_dir", "raw_dir", "models_dir", "metrics_dir")},
        figures_dir=str(tmp_path / "figures"),
        model=DOWNSTREAM,
        seeds=SEEDS,
    )
    name = f"decomposition_{DOWNSTREAM}.json"  # the cells that need no truth, the same figures
    with_truth = json.loads((Path(head_weights["metrics_dir"]) / name).read_text())
    without = json.loads((tmp_path / "metrics" / name).read_text())
    assert "shares" not in without and "effect_true" not in without

    def no_truth(cell: dict) -> bool:  # the logged pool's true w with true p: its logged scores
        platform = cell["candidates"] == "logged" and cell["weights"] == cell["probabilities"]
        levels = (cell["weights"], cell["probabilities"])
        return cell["selectivity"] == "estimated" and (platform or "true" not in levels)

    expected = [c | {"corr_true_within_user": None} for c in with_truth["cells"] if no_truth(c)]
    assert len(expected) == 5 and without["cells"] == expected
    for name, evaluation in TRUTH_ONLY.items():
        with_truth = dict(
            leaves(json.loads((Path(head_weights["metrics_dir"]) / name).read_text()))
        )
        without = dict(leaves(json.loads((tmp_path / "metrics" / name).read_text())))
        assert set(without) <= set(with_truth), sorted(set(without) - set(with_truth))
        assert {k: with_truth[k] for k in without} == without, name
        added = sorted(set(with_truth) - set(without))
        assert added and all(k.startswith(evaluation) for k in added), [
            k for k in added if not k.startswith(evaluation)
        ]
        for prefix in evaluation:  # each evaluation key is there with the truth only
            assert any(k.startswith(prefix) for k in added), prefix
