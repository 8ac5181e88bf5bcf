"""The head weights' sections: each estimator's w against the study's and the truth, and 05-06
on every downstream value model side by side; which value model leads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS
from kuairec_utils.report.tables import interval, pair_of, read, table
from kuairec_utils.study import STUDY_W


def weights_table(record: dict[str, Any]) -> list[str]:
    """One row per head: the study's w*, each estimator's w (mean over the seeds, ± their sd)
    and combined 95% interval, w_true; then each estimator's verdict."""
    estimators = {n: e for n, e in record["estimators"].items() if "w" in e}
    header = ["head", "study w*"]
    for name in estimators:
        header += [f"w ({name}) ± seeds' sd", f"combined 95% CI ({name})"]
    rows = []
    for head in HEADS:
        row: list[object] = [head, STUDY_W[head]]
        for estimate in estimators.values():
            sd = (estimate.get("sd_seeds") or {}).get(head)
            spread = f" ± {sd:.3f}" if sd is not None else ""
            row += [f"{estimate['w'][head]:.3f}{spread}", interval(estimate["ci95"][head])]
        rows.append([*row, record.get("w_true", {}).get(head)])
    lines = table([*header, "w_true"], rows)
    verdicts = {n: e["verdict"] for n, e in estimators.items() if "verdict" in e}
    if verdicts:
        lines += [
            "",
            f"Recovers w_true (every head's combined interval covers it and lies within "
            f"{record.get('w_tolerance')} of it): "
            + "; ".join(f"{n} {v}" for n, v in verdicts.items())
            + ".",
        ]
    return lines


def _selection_line(selection: dict[str, Any], w_true: dict[str, float] | None) -> str:
    correction = ""
    uncorrected = selection.get("uncorrected")
    if selection.get("bias_correction") == "jackknife" and uncorrected:
        correction = ", with the split-panel jackknife's correction of the per-session "
        correction += f"parameters' bias (without it: noise sd {uncorrected['noise_sd']:.3f}"
        if w_true:
            error = max(abs(uncorrected["w"][h] - w_true[h]) for h in HEADS)
            correction += f", max error {error:.3f}"
        correction += ")"
    return (
        f"The selection model (beyond the study) fits the {selection['n_sessions']:,} sessions "
        f"with a feed of at least {selection['min_feed']} videos and no repeated video"
        f"{correction}; its ranking noise has sd {selection['noise_sd']:.3f} (score units), its "
        "intervals are normal, from standard errors clustered by user."
    )


def _truth_lines(record: dict[str, Any], details: dict[str, Any]) -> list[str]:
    """The estimates against the truth: errors, what a ranking reveals, the exact probabilities."""
    lines = []
    errors = {
        n: e["max_abs_error"] for n, e in record["estimators"].items() if "max_abs_error" in e
    }
    if errors:
        text = ", ".join(
            f"{n} {v['mean']:.3f} {interval(v['ci95'])} (per seed "
            + ", ".join(f"{x:.3f}" for x in v["per_seed"])
            + ")"
            for n, v in errors.items()
        )
        lines.append(f"Max |w - w_true|, mean over the seeds [combined 95% CI]: {text}.")
    agreement = details.get("ranking_agreement_true_probabilities")
    if agreement:
        names = [n for n in agreement if n.endswith("(GNN)") or n.endswith(" only")]
        parts = [
            f"{n} (max error {agreement[n]['max_abs_error']:.2f}) {agreement[n]['top_k_overlap']:.1%}"
            for n in names
        ]
        lines.append(
            "What a feed reveals of w is its ranking: on the candidates' true probabilities, the "
            "top K under each w keeps this share of w_true's top K: " + "; ".join(parts) + ". "
            "The platform's own noisy feed keeps "
            f"{agreement['platform_keeps_deterministic_top_k']:.1%} of its deterministic top K."
        )
    diagnosis = details.get("diagnosis_true_probabilities", {})
    if diagnosis:
        text = ", ".join(
            f"{n} {d['max_abs_error']:.3f}" for n, d in diagnosis.items() if "max_abs_error" in d
        )
        line = (
            f"On the platform's exact ranking probabilities (from the truth), max errors: {text}."
        )
        if "objective_at_w_true" in diagnosis.get("plain", {}):
            exact, gnn = diagnosis["plain"], diagnosis["plain_gnn"]
            line += (
                f" The study's objective is {exact['objective']:.6g} at its estimate and "
                f"{exact['objective_at_w_true']:.6g} at w_true there; on the value model's "
                f"probabilities {gnn['objective']:.6g} and {gnn['objective_at_w_true']:.6g}."
            )
        lines.append(line)
    return lines


def weights_section(metrics: Path, model: str) -> list[str]:
    record, details = pair_of(metrics, f"weights_{model}.json")
    if record is None:
        return []
    lines = [f"## Head weights (value model {model})", "", *weights_table(record), ""]
    first = details.get("runs", {}).get(str(record.get("seeds", [None])[0]), {})
    plain = first.get("details", {}).get("plain", {})
    text = f"{record['n_sessions']:,} sessions"
    if "objective" in plain:
        text += f"; the study's objective {plain['objective']:.6g} at w* (first seed)"
    if "feed_overlap" in details:
        text += f"; the simulated feed at w* shares {details['feed_overlap']:.1%} of the observed"
    lines.append(text + ".")
    selection = first.get("details", {}).get("selection", {})
    if "w" in record["estimators"].get("selection", {}):
        lines.append(_selection_line(selection, record.get("w_true")))
    return [*lines, *_truth_lines(record, details), ""]


def downstream_models(metrics: Path, downstream: list[str] | None = None) -> list[str]:
    """The value models 05 ran on (``weights_<model>.json``), by name; with ``downstream``
    (params.yaml's ``value_model.downstream``) only those, so that the records an earlier run
    left for another list are not read."""
    found = sorted(p.stem.removeprefix("weights_") for p in metrics.glob("weights_*.json"))
    return found if downstream is None else [m for m in found if m in downstream]


def headline_model(
    metrics: Path, choice: str = "best", downstream: list[str] | None = None
) -> str | None:
    """The value model whose head weights and causal estimates lead: ``choice``, or with
    ``best`` the one of ``downstream_models`` with the highest validation mean AUC."""
    models = downstream_models(metrics, downstream)
    if choice != "best":
        if choice not in models:
            raise ValueError(f"headline model {choice!r}: 05 ran on {models}")
        return choice
    val = {m: (read(metrics / f"auc_{m}.json") or {}).get("val_auc", {}) for m in models}
    return max(models, key=lambda m: val[m].get("mean", float("-inf")), default=None)


def _covered(estimate: dict[str, Any], w_true: dict[str, float]) -> str:
    ci = estimate.get("ci95") or {}
    if not ci:
        return ""
    return f"{sum(ci[h][0] <= w_true[h] <= ci[h][1] for h in HEADS)} of 4"


def downstream_section(metrics: Path, downstream: list[str] | None = None) -> list[str]:
    """05 and 06 on each value model side by side, each figure its mean over the seeds with
    the combined interval: the two estimators' largest errors, the selection model's coverage
    of w_true, the measured residual's within-user correlation with the true one (first seed),
    and the effects."""
    rows = []
    for model in downstream_models(metrics, downstream):
        weights = read(metrics / f"weights_{model}.json") or {}
        causal = read(metrics / f"causal_{model}.json") or {}
        auc = read(metrics / f"auc_{model}.json") or {}
        estimators = weights.get("estimators", {})
        selection = estimators.get("selection", {})
        details = read(metrics / "details" / f"causal_{model}.json") or {}
        diagnosis = details.get("evaluation", {}).get("diagnosis", {})
        error = {n: estimators.get(n, {}).get("max_abs_error") for n in ("selection", "plain")}
        rows.append(
            [
                model,
                auc.get("val_auc", {}).get("mean"),
                *(f"{e['mean']:.3f} {interval(e['ci95'])}" if e else "" for e in error.values()),
                _covered(selection, weights["w_true"]) if "w_true" in weights else "",
                diagnosis.get("corr_residual_true_within_user"),
                *(
                    f"{causal[k]['mean']:.2f} {interval(causal[k]['ci95'], 2)}" if causal else ""
                    for k in ("effect", "effect_iv", "placebo")
                ),
            ]
        )
    if not rows:
        return []
    header = [
        "value model",
        "val AUC",
        "selection max error",
        "plain max error",
        "selection CIs covering w_true",
        "corr(r, true r) within user",
        "effect, naive",
        "effect, IV",
        "placebo",
    ]
    return [
        "## Downstream: the head weights and the causal step on each value model",
        "",
        "Means over the value-model seeds with combined 95% intervals.",
        "",
        *table(header, rows),
        "",
    ]
