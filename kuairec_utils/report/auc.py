"""The value models' section: test AUC per head, each model against the reference, what the
graph models' representations carry, and the taste model's ablation (supplementary)."""

from __future__ import annotations

from pathlib import Path

from kuairec_utils.heads import HEADS
from kuairec_utils.report.tables import interval, read, table
from kuairec_utils.study import STUDY_AUC


def _auc_row(
    name: str, auc: dict[str, float], oracle: dict | None, sd: float | None = None
) -> list[object]:
    gap = auc["mean"] - oracle["test_auc"]["mean"] if oracle else None
    return [name, *(auc[h] for h in (*HEADS, "mean")), sd, gap]


def auc_section(metrics: Path) -> list[str]:
    """Test AUC per head and mean of every model, the oracle (with, after it, the oracles
    without the session's shock) and the study."""
    rows = []
    oracle = read(metrics / "auc_oracle.json")
    if oracle is not None and oracle.get("test_auc") is None:
        oracle = None  # real data: the stage writes the file, but there is no truth
    for path in sorted(metrics.glob("auc_*.json")):
        record = read(path)
        if record is None or "model" not in record or record["model"].startswith("oracle"):
            continue
        sd = (record.get("test_auc_sd") or {}).get("mean")
        rows.append(_auc_row(record["model"], record["test_auc"], oracle, sd))
    no_shock = read(metrics / "auc_oracle_no_shock.json")
    if oracle:
        rows.append(_auc_row("oracle (true probabilities)", oracle["test_auc"], oracle))
        if no_shock and no_shock.get("test_auc"):
            name = no_shock["model"]
            rows.append(
                _auc_row(f"{name}, c_s learnt in the session", no_shock["test_auc"], oracle)
            )
            user_mean = no_shock["user_mean_c"]["test_auc"]
            rows.append(_auc_row(f"{name}, c_s at the user's mean", user_mean, oracle))
    for name, auc in STUDY_AUC.items():
        rows.append(
            [f"{name} (study, real KuaiRec)", *(auc[h] for h in (*HEADS, "mean")), None, None]
        )
    header = ["model", *HEADS, "mean", "sd over seeds", "gap to oracle"]
    seeds = (read(metrics / "auc_edge_mlp.json") or {}).get("seeds", [])
    lines = [
        "## Value models: test AUC",
        "",
        f"Each model's mean over its {len(seeds)} value-model seeds; the sd of its mean AUC "
        "across the seeds beside it.",
        "",
        *table(header, rows),
        "",
    ]
    return [*lines, *_comparison_lines(metrics), *_collapse_lines(metrics)]


def _comparison_lines(metrics: Path) -> list[str]:
    """Each model against the reference (04_gnn_vs_oracle): the pooled difference of mean test
    AUC, its spread across seeds and within run, the combined interval and the verdict."""
    record = read(metrics / "auc_comparisons.json")
    if not record:
        return []
    rows = []
    for name, c in record["models"].items():
        d = c["difference"]
        poster = None
        if name in STUDY_AUC and record["reference"] in STUDY_AUC:
            poster = STUDY_AUC[name]["mean"] - STUDY_AUC[record["reference"]]["mean"]
        rows.append(
            [name, poster, d["mean"], d["sd_seeds"], d["se_within"], interval(d["ci95"], 4)]
            + [c["verdict"]]
        )
    header = ["model", "the poster", "difference", "sd over seeds", "se within run"]
    header += ["combined 95% CI", f"beats {record['reference']}"]
    return [
        f"Each model's mean test AUC minus {record['reference']}'s, on the same test rows: each "
        "seed's difference with a standard error clustered by user, pooled over the seeds by "
        "Rubin's rules (docs/design.md section 10).",
        "",
        *table(header, rows),
        "",
    ]


def _collapse_lines(metrics: Path) -> list[str]:
    """One line per graph model on what its final representations carry (04's last sections):
    effective rank, the first direction's share, and (simulated data) the taste probe's R^2."""
    lines = []
    for path in sorted(
        [*metrics.glob("details/gnn_*.json"), *metrics.glob("details/taste_*.json")]
    ):
        record = read(path) or {}
        summary = record.get("representation", {})
        parts = []
        for key, label in (("users", "users"), ("warm_items", "videos of the training graph")):
            s = summary.get(key, {})
            if "effective_rank" not in s or "first_share" not in s:
                continue
            text = f"{label} {s['effective_rank']:.2f} ({s['first_share']:.1%} of the variance"
            text += " on the first direction"
            if "corr_log_degree" in s:
                text += f", |corr| {s['corr_log_degree']:.2f} with the log degree"
            parts.append(text + ")")
        probe = record.get("taste_probe_r2")
        if probe:
            parts.append(
                "R^2 of a linear probe of the true taste: "
                + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in probe.items())
            )
        if parts:
            name = path.stem
            lines.append(f"{name}'s final representations, effective rank: {'; '.join(parts)}.")
    return [*lines, ""] if lines else []


def ablation_section(supplementary: Path | None) -> list[str]:
    """04's ablation of the taste model (supplementary: ``make ablation``): each variant's mean
    AUCs over seeds and the paired difference from the edge MLP trained the same way."""
    record = read(supplementary / "ablation.json") if supplementary else None
    if record is None:
        return []
    scores = [
        ("val", "val"),
        ("test", "test"),
        ("test_warm", "test, warm"),
        ("test_cold", "test, cold"),
    ]
    rows = []
    for name, variant in record["variants"].items():
        row: list[object] = [name]
        for key, _ in scores:
            diff = variant[f"{key}_vs_edge_mlp"]
            spread = "" if diff["sd"] is None else f" ± {diff['sd']:.4f}"
            row.append(f"{variant[key]['mean']:.4f} ({diff['mean']:+.4f}{spread})")
        rows.append(row)
    seeds = record["seeds"]
    return [
        "## What each part of the taste model buys (supplementary: `make ablation`)",
        "",
        f"Mean AUC over the four heads, mean over {len(seeds)} seed(s); in brackets the paired "
        "difference from the edge MLP trained the same way on the same seed (± its sd over seeds).",
        "",
        *table(["variant", *(label for _, label in scores)], rows),
        "",
    ]
