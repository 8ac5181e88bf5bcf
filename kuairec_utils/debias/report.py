"""07's part of the results page: each signal's correlation with the latent preference, the
corrections' shares of the true selectivity's gain, the rates by user group, and the claim row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS
from kuairec_utils.report import _fmt, _interval, _pair_of, _read, _table


def _share(share: dict[str, Any] | None) -> str:
    if not share:
        return ""
    return f"{share['estimate']:.2f} {_interval(share['ci95'])}"


MIN_GAIN = 0.01  # a share of the true selectivity's gain is shown where the gain is at least this
CORRECTIONS = ("structural", "fitted")


def debias_section(metrics: Path, model: str) -> list[str]:
    """07 on ``model``: each signal's correlation with the latent preference at both levels
    (simulated data), each correction's share of the true selectivity's gain, the rates by
    user group."""
    record, details = _pair_of(metrics, f"debias_{model}.json")
    if record is None:
        return []
    lines = [f"## Engagement signals at a common selectivity (value model {model})", ""]
    correlation, shares = details.get("correlation"), details.get("share_of_gain", {})
    if correlation:
        signals = ["raw", "structural", "fitted", "true"]
        rows = []
        for level in ("across_users", "within_user"):
            for head in HEADS:
                corr = correlation[level][head]
                gain = abs(corr["true"] - corr["raw"]) >= MIN_GAIN
                kept = [_share(shares[level][c][head]) if gain else "-" for c in CORRECTIONS]
                rows.append([level.replace("_", " "), head, *(corr[s] for s in signals), *kept])
        header = ["level", "head", *signals, "structural keeps", "fitted keeps"]
        lines += [
            "Correlation with the mean latent preference of what was shown (each head oriented "
            "so that tracking it is positive); *true*: the structural correction with the "
            "simulator's selectivity; *keeps*: the share of its gain over *raw*, with a "
            f"bootstrap interval over users (-: the true selectivity moves the correlation by "
            f"less than {MIN_GAIN}, no gain to keep).",
            "",
            *_table(header, rows),
            "",
        ]
    fitted = details.get("fitted_coefficients", {})
    if fitted:
        lines.append(
            f"The fitted correction's slope on the estimated c_s: {_fmt(fitted['c_s'], 3)} (the "
            f"structural one takes 1). Headline correction: {record['correction']}."
        )
    by_group = details.get("by_group") or []
    skips = [g for g in by_group if g["head"] == "negative"]
    if skips:
        rows = [
            [
                g["group"],
                g["signal"],
                g["users"],
                g["rate"],
                _interval([g["ci95_low"], g["ci95_high"]]),
            ]
            for g in skips
        ]
        lines += ["", *_table(["user group", "signal", "users", "quick-skip rate", "95% CI"], rows)]
    return [*lines, ""]


def debias_claim(metrics: Path, model: str) -> list[list[object]]:
    """The claims table's row for 07 on ``model`` (none without its evaluation)."""
    debias = _read(metrics / f"debias_{model}.json")
    if not debias or "share_of_gain_kept" not in debias:
        return []
    corr = debias["corr_skip"]["across_users"]
    return [
        [
            "debiased engagement reflects preference (users' quick-skip rates, share of "
            "the true selectivity's gain kept)",
            "proposed, not done",
            f"{_share(debias['share_of_gain_kept'])}; corr {corr['raw']:.3f} -> "
            f"{corr[debias['correction']]:.3f}",
            f"corr {corr['true']:.3f} with the true c_s",
        ]
    ]
