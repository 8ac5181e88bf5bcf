"""The study's claims at a glance (the README's table and the results page's first section),
from the metrics: each claim like for like with the poster's figure, this repository's figure as
its mean over the value-model seeds with the combined 95% interval, and the verdict of the rule
of docs/design.md section 10 (computed by the stage that wrote the figure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS
from kuairec_utils.report.debias import debias_claim
from kuairec_utils.report.tables import interval, read, vector
from kuairec_utils.study import STUDY_AUC, STUDY_W

HEADER = ["claim", "the poster, real KuaiRec", "this repository", "verdict", "the truth"]
SHOWN_ESTIMATORS = {  # the head-weight estimators the claims table shows, and how it names them
    "plain": "the study's estimator (plain)",
    "selection": "the selection model (beyond the study)",
}


def pooled_text(p: dict[str, Any], digits: int = 2) -> str:
    """A pooled figure as ``mean [combined 95% CI]``."""
    return f"{p['mean']:+.{digits}f} {interval(p['ci95'], digits)}"


def auc_rows(metrics: Path, supplementary: Path | None = None) -> list[list[str]]:
    """One row per GNN size beside the poster's same size, and the taste model: the difference
    of mean test AUC from the edge MLP, pooled over the seeds (``auc_comparisons.json``)."""
    comparisons = read(metrics / "auc_comparisons.json")
    if not comparisons:
        return []
    oracle = (read(metrics / "auc_oracle.json") or {}).get("test_auc") or {}
    truth = f"oracle {oracle['mean']:.4f}" if oracle else ""
    reference = comparisons["reference"]
    aucs = {m: (read(metrics / f"auc_{m}.json") or {}).get("test_auc", {}) for m in ["edge_mlp"]}
    rows = []
    for name, compared in comparisons["models"].items():
        if not (name.startswith("gnn_h") or name.startswith("taste_h")):
            continue
        d = compared["difference"]
        own = (read(metrics / f"auc_{name}.json") or {}).get("test_auc", {})
        mine = (
            f"{d['mean']:+.4f} {interval(d['ci95'], 4)} ({own.get('mean', 0):.4f} vs "
            f"{aucs[reference].get('mean', 0):.4f}; seeds' sd {d['sd_seeds'] or 0:.4f})"
        )
        if name.startswith("gnn_h"):
            size = name.removeprefix("gnn_h")
            claim = f"the GNN (H = {size}) beats the edge MLP: difference of mean test AUC"
            poster = ""
            if name in STUDY_AUC:
                diff = STUDY_AUC[name]["mean"] - STUDY_AUC[reference]["mean"]
                poster = (
                    f"{diff:+.4f} ({STUDY_AUC[name]['mean']:.4f} vs "
                    f"{STUDY_AUC[reference]['mean']:.4f}; one run)"
                )
        else:
            claim = (
                "beyond the study: the taste model (nodes started from their features, a "
                "per-head taste term) beats the edge MLP" + ablation_note(supplementary)
            )
            poster = ""
        rows.append([claim, poster, mine, compared["verdict"], truth])
    return rows


def ablation_note(supplementary: Path | None) -> str:
    """What the taste model's ablation (supplementary) says of its propagation, if it ran."""
    ablation = read(supplementary / "ablation.json") if supplementary else None
    if not ablation:
        return " (its ablation: `make ablation`)"
    variants = ablation["variants"]
    name = "no propagation (K = 0)"
    if name not in variants or "taste model" not in variants:
        return ""
    gain = variants["taste model"]["val"]["mean"] - variants[name]["val"]["mean"]
    return (
        f"; its ablation: the propagation adds {gain:+.4f} of validation AUC "
        f"({len(ablation['seeds'])} seeds), so the gain is the features and the taste term"
    )


def weights_rows(metrics: Path, model: str) -> list[list[str]]:
    """The study's estimator and the selection model on ``model``: the pooled w, the mean
    largest error against w_true and the verdict on recovering it."""
    record = read(metrics / f"weights_{model}.json")
    if not record:
        return []
    w_true = record.get("w_true")
    rows = []
    for name, label in SHOWN_ESTIMATORS.items():
        estimate = record["estimators"].get(name, {})
        if "w" not in estimate:
            continue
        text = f"w {vector(estimate['w'])}"
        error = estimate.get("max_abs_error")
        if error:
            text += f"; max error {error['mean']:.2f} {interval(error['ci95'], 2)}"
            if error.get("sd_seeds") is not None:
                text += f", seeds' sd {error['sd_seeds']:.2f}"
        claim = f"the feeds reveal the head weights w: {label}, on {model}"
        truth = ""
        if w_true:
            same = all(abs(w_true[h] - STUDY_W[h]) < 1e-9 for h in HEADS)
            truth = f"w_true{' = the poster' + chr(39) + 's w*' if same else ''} {vector(w_true)}"
        poster = f"w* {vector(STUDY_W)}" if name == "plain" else ""
        rows.append([claim, poster, text, estimate.get("verdict", ""), truth])
    return rows


def causal_rows(metrics: Path, model: str) -> list[list[str]]:
    """The effect of r(s-1) on the next session's selectivity with the chosen estimator's w
    (naive, instrumented, the placebo), and the study's estimator's beside."""
    record = read(metrics / f"causal_{model}.json")
    if not record or "verdicts" not in record:
        return []
    v = record["verdicts"]
    truth = f"{record['effect_true']:g}" if "effect_true" in record else ""
    found = (
        f"naive {pooled_text(record['effect'])}; instrumented {pooled_text(record['effect_iv'])}; "
        f"placebo r(s+1) {pooled_text(record['placebo'])}"
    )
    verdict = (
        f"effect < 0: {v['effect_is_negative']} (instrumented: {v['effect_iv_is_negative']}); "
        f"placebo null: {v['placebo_is_null']}"
    )
    if "effect_recovers_truth" in v:
        verdict += f"; recovers the truth: {v['effect_iv_recovers_truth']} (instrumented)"
    rows = [
        [
            "a worse feed makes the next session more selective: effect of r(s-1) on c_s, w* "
            f"of the {record['estimator']} estimator, on {model}",
            "proposed, not estimated",
            found,
            verdict,
            truth,
        ]
    ]
    study = record.get("study_estimator")
    if study:
        sv = study["verdicts"]
        rows.append(
            [
                f"... with the study's estimator's w* (plain), on {model}",
                "",
                f"naive {pooled_text(study['effect'])}; instrumented "
                f"{pooled_text(study['effect_iv'])}; placebo {pooled_text(study['placebo'])}",
                f"effect < 0: {sv['effect_is_negative']}; placebo null: {sv['placebo_is_null']}",
                truth,
            ]
        )
    return rows


def claim_rows(
    metrics: Path, model: str | None, supplementary: Path | None = None
) -> list[list[str]]:
    """Every row of the claims table; the head weights, the effect and the debiasing on
    ``model`` (the headline value model); the ablation's note from ``supplementary``."""
    rows = auc_rows(metrics, supplementary)
    if model:
        rows += weights_rows(metrics, model) + causal_rows(metrics, model)

        rows += debias_claim(metrics, model)
    return rows
