"""06's part of the results page: the effects pooled over the value-model seeds with their
verdicts, the first seed's run with its robustness variants, and the evaluation against the
truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kuairec_utils.report.tables import fmt, interval, pair_of, table


def causal_rows(record: dict[str, Any], details: dict[str, Any]) -> list[list[object]]:
    """The effect of r(s-1): naive and instrumented (bootstrap), the placebo, then the
    robustness variants (clustered standard errors)."""
    iv = record["effect_iv"]
    rows: list[list[object]] = [
        [
            "r(s-1), naive",
            record["effect"],
            record["se"],
            str([round(v, 3) for v in record["ci95"]]),
        ],
        ["r(s-1), instrumented", iv["effect"], iv["se"], str([round(v, 3) for v in iv["ci95"]])],
        ["r(s+1), placebo", record["placebo"]["effect"], record["placebo"]["se"], ""],
    ]
    kinds = [("effect", "se", "r(s-1), naive"), ("effect_iv", "se_iv", "r(s-1), instrumented")]
    kinds.append(("placebo", "placebo_se", "r(s+1), placebo"))
    for key, what in (
        ("feed_index_held", "the feed's mean index held"),
        ("candidates_held", "the candidates' scores held"),
    ):
        held = details.get(key) or {}
        rows += [[f"{label}, {what}", held[e], held[s], ""] for e, s, label in kinds if e in held]
    variant = details.get("selectivity_variant")
    if variant:  # the other c_s (skips alone, or with the watch-depth offset)
        rows += [
            [f"{label}, {variant['c_s']}", variant[e], variant[s], ""] for e, s, label in kinds[:2]
        ]
    return rows


def _truth_effect_lines(details: dict[str, Any]) -> list[str]:
    """06's evaluation in a few lines: the regression with the true residual, the diagnosis."""
    evaluation = details.get("evaluation", {})
    truth, lines = evaluation.get("with_the_truth", {}), []
    for name, fit in truth.items():
        placebo = f", placebo {fmt(fit['placebo'])}" if "placebo" in fit else ""
        lines.append(f"- {name}: {fmt(fit['effect'])} (se {fmt(fit['se'])}){placebo}")
    if lines:
        lines.insert(0, "With the simulator's true residual in place of the measured one:")
        lines.append("")
    diagnosis = evaluation.get("diagnosis")
    if diagnosis:
        lines.append(
            "Within a user, the measured residual correlates "
            f"{fmt(diagnosis['corr_residual_true_within_user'], 3)} with the true one; the true "
            f"c_s on the measured r(s-1) gives {fmt(diagnosis['true c_s on measured r(s-1)']['effect'])}"
            ", and the estimated c_s's error moves with the measured r(s-1) by "
            f"{fmt(diagnosis['error of estimated c_s on measured r(s-1)']['effect'])}."
        )
    observable = evaluation.get("observable_part")
    if observable:
        lines.append(
            f"The feed's statistics explain {observable['within_r2']:.1%} of the true residual's "
            "within-user variance; with their projection (fitted on the truth) for r(s-1), the "
            f"true c_s gives {fmt(observable['true c_s on projected r(s-1)']['effect'])}, the "
            f"estimated c_s {fmt(observable['estimated c_s on projected r(s-1)']['effect'])}."
        )
    return lines


def pooled_effect_rows(record: dict[str, Any]) -> list[list[object]]:
    """The headline effects pooled over the seeds: the chosen estimator's naive, instrumented
    and placebo, then the study's estimator's, each with its verdict."""
    v = record["verdicts"]
    named = [
        ("effect", f"r(s-1), naive ({record['estimator']})", v["effect_is_negative"]),
        ("effect_iv", f"r(s-1), instrumented ({record['estimator']})", v["effect_iv_is_negative"]),
        ("placebo", f"r(s+1), placebo ({record['estimator']})", v["placebo_is_null"]),
    ]
    rows = [[label, *_pooled_cells(record[key]), verdict] for key, label, verdict in named]
    study = record.get("study_estimator")
    if study:
        for key, label in (("effect", "naive"), ("effect_iv", "instrumented"), ("placebo", "")):
            what = "r(s+1), placebo" if key == "placebo" else f"r(s-1), {label}"
            verdict = study["verdicts"].get(
                {"effect": "effect_is_negative", "placebo": "placebo_is_null"}.get(key, ""), ""
            )
            rows.append([f"{what} (the study's plain)", *_pooled_cells(study[key]), verdict])
    return rows


def _pooled_cells(p: dict[str, Any]) -> list[object]:
    return [p["mean"], p["sd_seeds"], p["se_within"], interval(p["ci95"])]


def causal_section(metrics: Path, model: str) -> list[str]:
    record, details = pair_of(metrics, f"causal_{model}.json")
    if record is None or "verdicts" not in record:
        return []
    lines = [
        f"## Does a worse feed raise the next session's selectivity? (value model {model})",
        "",
        f"Over {len(record['seeds'])} value-model seeds: the mean, the sd across seeds, the "
        "within-run se (bootstrap over users for the chosen estimator's effects, clustered for "
        "the placebo and the study's estimator's), the combined interval and the verdict: the "
        "effect below zero, the placebo null within "
        f"{record.get('effect_tolerance')} (docs/design.md section 10).",
        "",
    ]
    header = ["treatment", "mean", "sd over seeds", "se within run", "combined 95% CI", "verdict"]
    lines += table(header, pooled_effect_rows(record))
    v = record["verdicts"]
    if "effect_recovers_truth" in v:
        lines += [
            "",
            f"Recovers the simulator's true effect ({record['effect_true']:g}): naive "
            f"{v['effect_recovers_truth']}, instrumented {v['effect_iv_recovers_truth']}.",
        ]
    first = details.get("runs", {}).get(str(record["seeds"][0]), {})
    lines += [
        "",
        "The first seed's run, with the robustness variants (clustered standard errors):",
        "",
    ]
    lines += table(["treatment", "effect", "se", "95% CI (bootstrap)"], causal_rows(first, first))
    lines += ["", f"{record['n_sessions']:,} sessions with a previous session."]
    depth = first.get("watch_depth")
    if depth and record.get("quality_offset") == "watch":
        lines.append(
            "Each c_s adds the feed's quality offset that the watch depth of its unskipped videos "
            f"shows (log watch_ratio rises by {fmt(depth['slopes']['x'], 3)} per unit of the "
            f"index within a session; offsets' sd {fmt(depth['offset_sd'], 2)} on the "
            "threshold's scale)."
        )
    lines.append("")
    return [*lines, *_truth_effect_lines(details), ""]
