"""07's part of the results page: the quick-skip rate of every signal against its exact target
(the correlation, the partial correlation with the preference given the value model's index,
the correlation with the true c_s, each with its difference from raw), every head's correlation
with the latent preference, the rates by user group, and the claim row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS
from kuairec_utils.report.tables import fmt, interval, pair_of, read, table

SIGNALS = (
    "raw",
    "structural",
    "fitted",
    "structural_cross_fitted",
    "fitted_cross_fitted",
    "true",
    "target",
)
MEASURE_NAMES = {
    "corr_target": "corr with the target",
    "partial_corr_preference": "partial corr with the preference",
    "corr_true_c": "corr with the true c_s",
}


def _difference(diff: dict[str, Any] | None) -> str:
    """A difference from raw with its interval, ``+0.100 [0.080, 0.120]``."""
    if not diff:
        return ""
    return f"{diff['estimate']:+.3f} {interval(diff['ci95'])}"


def _skip_table(evaluation: dict[str, Any]) -> list[str]:
    """One row per level and signal: each measure, and its difference from raw."""
    rows = []
    for level, by_measure in evaluation["measures"].items():
        for signal in (s for s in SIGNALS if s in by_measure["corr_target"]):
            row: list[object] = [level.replace("_", " "), signal.replace("_", " ")]
            for measure in MEASURE_NAMES:
                diff = evaluation["differences"][level][measure].get(signal)
                row += [by_measure[measure][signal], _difference(diff)]
            rows.append(row)
    header = ["level", "quick-skip rate"]
    for name in MEASURE_NAMES.values():
        header += [name, "minus raw [95% CI]"]
    return table(header, rows)


def debias_section(metrics: Path, model: str) -> list[str]:
    """07 on ``model``: the quick-skip measures of every signal at both levels and every head's
    correlation with the latent preference (simulated data), the rates by user group."""
    record, details = pair_of(metrics, f"debias_{model}.json")
    if record is None:
        return []
    lines = [f"## Engagement signals at a common selectivity (value model {model})", ""]
    if "signal" in record:
        lines.append(
            f"Headline: the {record['correction']} correction with the "
            f"{record['selectivity'].replace('_', '-')} c_s (signal `{record['signal']}`)."
        )
    evaluation = details.get("evaluation")
    if evaluation and "measures" in evaluation:
        lines += [
            "",
            "Each unit's quick-skip rate (a user's; a session's, as a deviation from the user's "
            "mean) against its exact target: the rate the same unit would have had at the common "
            "true selectivity. *partial corr*: with the latent preference given the value "
            "model's index (the rate flipped): what the rate tells beyond the value model. "
            "*corr with the true c_s*: selectivity left (positive) or over-corrected (negative); "
            "the target's own is its benchmark. *true*: the structural correction with the "
            "simulator's c_s. Differences from raw with a paired bootstrap interval over users.",
            "",
            *_skip_table(evaluation),
            "",
        ]
        signals = [s for s in SIGNALS if s in evaluation["corr_preference"]["across_users"]["long"]]
        rows = [
            [level.replace("_", " "), head, *(corr[head][s] for s in signals)]
            for level, corr in evaluation["corr_preference"].items()
            for head in HEADS
        ]
        lines += [
            "Each head's correlation with the mean latent preference of what was shown (oriented "
            "so that tracking it is positive):",
            "",
            *table(["level", "head", *(s.replace("_", " ") for s in signals)], rows),
            "",
        ]
    fitted = details.get("fitted_coefficients", {})
    slopes = ", ".join(
        f"{k.replace('_', '-')} {fmt(v['c_s'], 3)}"
        for k, v in fitted.items()
        if isinstance(v, dict)
    )
    if slopes:
        lines.append(
            f"The fitted correction's slope on the estimated c_s: {slopes} (structural: 1)."
        )
    skips = [g for g in details.get("by_group") or [] if g["head"] == "negative"]
    if skips:
        rows = [
            [
                g["group"],
                g["signal"],
                g["users"],
                g["rate"],
                interval([g["ci95_low"], g["ci95_high"]]),
            ]
            for g in skips
        ]
        lines += ["", *table(["user group", "signal", "users", "quick-skip rate", "95% CI"], rows)]
    return [*lines, ""]


def debias_claim(metrics: Path, model: str) -> list[list[object]]:
    """The claims table's row for 07 on ``model`` (none without its evaluation): the headline
    correction's gain over raw, across users, in the correlation with the exact target and in
    the partial correlation with the preference given the value model's index, each with its
    verdict on "above 0"."""
    debias = read(metrics / f"debias_{model}.json")
    if not debias or "evaluation" not in debias or "signal" not in debias:
        return []
    across = debias["evaluation"]["across_users"]
    target, partial = across["corr_target"], across["partial_corr_preference"]
    verdicts = [m["difference"].get("verdict", "") for m in (target, partial)]
    return [
        [
            "debiased engagement reflects preference (users' quick-skip rates at a common "
            "selectivity: corr with their exact target; partial corr with the preference given "
            "the value model's index)",
            "proposed, not done",
            f"{debias['signal'].replace('_', ' ')}: target {target['raw']:.3f} -> "
            f"{target['corrected']:.3f} ({_difference(target['difference'])}); partial "
            f"{partial['raw']:.3f} -> {partial['corrected']:.3f} "
            f"({_difference(partial['difference'])})",
            f"target: {verdicts[0]}; partial: {verdicts[1]}",
            f"true c_s: target {target['true']:.3f}; partial {partial['true']:.3f}",
        ]
    ]
