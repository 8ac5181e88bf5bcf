"""The results page: ``reports/results.md`` from the metrics (the ``report`` stage).

Everything on the page comes from ``metrics/*.json`` (and the AUC table 04 writes), so the page
is regenerated whenever a number changes and never holds a number typed by hand. With
``--readme``, the same tables replace the block between the README's results markers, and the
main figures are copied where the README shows them (``--readme-figures``, kept in git)::

    python -m kuairec_utils.report --metrics metrics --reports reports \
        --readme README.md --readme-figures docs/figures
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from kuairec_utils.evaluation.truth import STUDY_AUC
from kuairec_utils.heads import HEADS

STUDY_W = dict(zip(HEADS, (0.22, 0.10, -0.02, -0.66), strict=True))  # the study, real KuaiRec
NOTEBOOKS = (
    "00_simulator",
    "01_data",
    "02_features",
    "03_baselines",
    "04_gnn_h64",
    "04_gnn_h128",
    "04_gnn_vs_oracle",
    "05_head_weights",
    "06_causal",
)
FIGURES = (
    "00_calibration.png",
    "01_daily_volume.png",
    "02_features.png",
    "04_roc.png",
    "04_calibration.png",
    "06_causal.png",
)


README_FIGURES = ("04_roc.png", "04_calibration.png", "06_causal.png")  # shown in the README
README_START = "<!-- results: written by the report stage (python -m kuairec_utils.report) -->"
README_END = "<!-- /results -->"


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _auc_row(name: str, auc: dict[str, float], oracle: dict | None) -> list[object]:
    gap = auc["mean"] - oracle["test_auc"]["mean"] if oracle else None
    return [name, *(auc[h] for h in (*HEADS, "mean")), gap]


def auc_section(metrics: Path) -> list[str]:
    """Test AUC per head and mean of every model, the oracle (with, after it, the oracles
    without the session's shock) and the study."""
    rows = []
    oracle = _read(metrics / "auc_oracle.json")
    if oracle is not None and oracle.get("test_auc") is None:
        oracle = None  # real data: the stage writes the file, but there is no truth
    for path in sorted(metrics.glob("auc_*.json")):
        record = _read(path)
        if record is None or record["model"].startswith("oracle"):
            continue
        rows.append(_auc_row(record["model"], record["test_auc"], oracle))
    no_shock = _read(metrics / "auc_oracle_no_shock.json")
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
        rows.append([f"{name} (study, real KuaiRec)", *(auc[h] for h in (*HEADS, "mean")), None])
    header = ["model", *HEADS, "mean", "gap to oracle"]
    return ["## Value models: test AUC", "", *_table(header, rows), "", *_collapse_lines(metrics)]


def _collapse_lines(metrics: Path) -> list[str]:
    """One line per GNN on what its final representations carry (04_gnn's last section)."""
    lines = []
    for path in sorted(metrics.glob("auc_gnn_*.json")):
        record = _read(path) or {}
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
        if parts:
            name = record["model"]
            lines.append(f"{name}'s final representations, effective rank: {'; '.join(parts)}.")
    return [*lines, ""] if lines else []


def weights_section(metrics: Path) -> list[str]:
    record = _read(metrics / "weights.json")
    if record is None:
        return []
    rows = []
    logit, selection = record.get("rank_logit", {}), record.get("selection", {})
    for head in HEADS:
        lo, hi = record["ci95"][head]
        row = [head, STUDY_W[head], record["w"][head], f"[{lo:.3f}, {hi:.3f}]"]
        row += [logit.get("w", {}).get(head)]
        if "w" in selection:
            lo, hi = selection["ci95"][head]
            row += [selection["w"][head], f"[{lo:.3f}, {hi:.3f}]"]
        row += [record.get("w_true", {}).get(head)]
        rows.append(row)
    header = ["head", "study w*", "w* (plain)", "95% CI (plain)", "w (rank logit)"]
    if "w" in selection:
        header += ["w (selection)", "95% CI (selection)"]
    lines = ["## Head weights", "", *_table([*header, "w_true"], rows), ""]
    lines.append(
        f"{record['n_sessions']:,} sessions; objective {record['objective']:.6g}; the simulated "
        f"feed at w* shares {record.get('feed_overlap', float('nan')):.1%} of the observed feed."
    )
    if "w" in selection:
        correction = ""
        uncorrected = selection.get("uncorrected")
        if selection.get("bias_correction") == "jackknife" and uncorrected:
            correction = ", with the split-panel jackknife's correction of the per-session "
            correction += "parameters' bias (without it: noise sd "
            correction += f"{uncorrected['noise_sd']:.3f}"
            if "w_true" in record:
                error = max(abs(uncorrected["w"][h] - record["w_true"][h]) for h in HEADS)
                correction += f", max error {error:.3f}"
            correction += ")"
        lines.append(
            f"The selection model (beyond the study) fits the {selection['n_sessions']:,} "
            f"sessions with a feed of at least {selection['min_feed']} videos and no repeated "
            f"video{correction}; its ranking noise has sd {selection['noise_sd']:.3f} (score "
            "units), its intervals are normal, from standard errors clustered by user."
        )
    if "max_abs_error" in record:
        errors = f"plain {record['max_abs_error']:.3f}, rank logit "
        errors += f"{record['rank_logit']['max_abs_error']:.3f}"
        if "max_abs_error" in selection:
            errors += f", selection {selection['max_abs_error']:.3f}"
        lines.append(f"Max |w - w_true|: {errors} (target 0.02).")
    agreement = record.get("ranking_agreement_true_probabilities")
    if agreement:
        parts = [
            f"{name} (max error {agreement[name]['max_abs_error']:.2f}) "
            f"{agreement[name]['top_k_overlap']:.1%}"
            for name in (
                "plain w* (GNN)",
                "rank logit w (GNN)",
                "selection w (GNN)",
                "complete only",
                "-negative only",
            )
            if name in agreement
        ]
        lines.append(
            "What a feed reveals of w is its ranking: on the candidates' true probabilities, "
            "the top K under each w keeps this share of w_true's top K: "
            + "; ".join(parts)
            + f". The platform's own noisy feed keeps "
            f"{agreement['platform_keeps_deterministic_top_k']:.1%} of its deterministic top K."
        )
    diagnosis = record.get("diagnosis_true_probabilities", {})
    if "objective_at_w_true" in diagnosis.get("plain", {}):
        exact, gnn = diagnosis["plain"], diagnosis.get("plain_gnn", {})
        lines.append(
            "On the platform's exact ranking probabilities (from the truth), max errors: "
            f"plain {exact['max_abs_error']:.3f} (objective "
            f"{exact['objective']:.6g} at its estimate, {exact['objective_at_w_true']:.6g} at "
            f"w_true), rank logit {diagnosis['rank_logit']['max_abs_error']:.3f}"
            + (
                f", selection {diagnosis['selection']['max_abs_error']:.3f}"
                if "selection" in diagnosis
                else ""
            )
            + (
                f"; on the GNN's: objective {gnn['objective']:.6g} at w*, "
                f"{gnn['objective_at_w_true']:.6g} at w_true."
                if gnn
                else "."
            )
        )
    return [*lines, ""]


def causal_section(metrics: Path) -> list[str]:
    record = _read(metrics / "causal.json")
    if record is None:
        return []
    rows = [
        [
            "r(s-1), naive",
            record["effect"],
            record["se"],
            str([round(v, 3) for v in record["ci95"]]),
        ],
    ]
    if "effect_iv" in record:
        iv = record["effect_iv"]
        rows.append(
            ["r(s-1), instrumented", iv["effect"], iv["se"], str([round(v, 3) for v in iv["ci95"]])]
        )
    rows.append(["r(s+1), placebo", record["placebo"]["effect"], record["placebo"]["se"], ""])
    # robustness variants: clustered standard errors, no bootstrap
    variant_rows = [
        ("r(s-1), naive", "effect", "se"),
        ("r(s-1), instrumented", "effect_iv", "se_iv"),
        ("r(s+1), placebo", "placebo", "placebo_se"),
    ]
    for key, held_what in (
        ("feed_index_held", "the feed's mean index held"),
        ("candidates_held", "the candidates' scores held"),
    ):
        held = record.get(key) or {}
        for label, effect, se in variant_rows:
            if effect in held:
                rows.append([f"{label}, {held_what}", held[effect], held[se], ""])
    variant = record.get("selectivity_variant")
    if variant:  # the other c_s (skips alone, or with the watch-depth offset); clustered se
        rows.append([f"r(s-1), naive, {variant['c_s']}", variant["effect"], variant["se"], ""])
        rows.append(
            [f"r(s-1), instrumented, {variant['c_s']}", variant["effect_iv"], variant["se_iv"], ""]
        )
    lines = ["## Does a worse feed raise the next session's selectivity?", ""]
    lines += _table(["treatment", "effect", "se", "95% CI (bootstrap)"], rows)
    lines += ["", f"{record['n_sessions']:,} sessions with a previous session."]
    depth = record.get("watch_depth")
    if depth and record.get("quality_offset") == "watch":
        lines.append(
            "Each c_s adds the feed's quality offset that the watch depth of its unskipped videos "
            f"shows (log watch_ratio rises by {_fmt(depth['slopes']['x'], 3)} per unit of the "
            f"index within a session; offsets' sd {_fmt(depth['offset_sd'], 2)} on the "
            "threshold's scale)."
        )
    if "effect_true" in record:
        lines.append(f"The simulator's true effect: {record['effect_true']}.")
    truth = record.get("evaluation", {}).get("with_the_truth", {})
    if "true residual, estimated c_s" in truth:
        fit = truth["true residual, estimated c_s"]
        lines.append(
            f"With the simulator's true residual in place of the measured one (and the estimated "
            f"c_s): {_fmt(fit['effect'])} (se {_fmt(fit['se'])})"
            + (
                f"; with the feed's mean index held too: {_fmt(held_fit['effect'])} (se "
                f"{_fmt(held_fit['se'])})."
                if (held_fit := truth.get("true residual, estimated c_s, feed's index held"))
                else "."
            )
        )
    if variant and (other := truth.get(f"true residual, {variant['c_s']}")):
        lines.append(
            f"With the true residual and {variant['c_s']}: {_fmt(other['effect'])} (se "
            f"{_fmt(other['se'])})."
        )
    if perfect := truth.get("true residual, c_s from the skips with the true quality offset"):
        corr = record.get("evaluation", {}).get("corr_quality_offset_true")
        lines.append(
            "With the true residual and the skips' c_s plus the simulator's true quality offset "
            f"(a perfect watch-depth measurement): {_fmt(perfect['effect'])} (se "
            f"{_fmt(perfect['se'])})"
            + (
                f"; the watch-depth offset correlates {_fmt(corr, 3)} with it."
                if corr is not None
                else "."
            )
        )
    diagnosis = record.get("evaluation", {}).get("diagnosis")
    if diagnosis:
        lines.append(
            "Within a user, the measured residual correlates "
            f"{_fmt(diagnosis['corr_residual_true_within_user'], 3)} with the true one; the true "
            "c_s on the measured r(s-1) gives "
            f"{_fmt(diagnosis['true c_s on measured r(s-1)']['effect'])}, and the estimated c_s's "
            "error moves with the measured r(s-1) by "
            f"{_fmt(diagnosis['error of estimated c_s on measured r(s-1)']['effect'])} "
            "(06_causal, evaluation)."
        )
    if diagnosis and "true c_s on measured r(s+1)" in diagnosis:
        placebo_path = diagnosis["true c_s on measured r(s+1)"]
        placebo_held = diagnosis["true c_s on measured r(s+1), the candidates' scores held"]
        truth_held = truth.get("true residual, estimated c_s, the candidates' scores held")
        lines.append(
            "The placebo's path: the true c_s on the measured r(s+1) gives "
            f"{_fmt(placebo_path['effect'])} (se {_fmt(placebo_path['se'])}), and "
            f"{_fmt(placebo_held['effect'])} (se {_fmt(placebo_held['se'])}) with the next "
            "session's candidates' score mean and sd held: the measured residual's size follows "
            "the spread of the candidates' scores, which the previous session moves"
            + (
                f"; with the true residual the same control gives {_fmt(truth_held['effect'])} "
                f"(se {_fmt(truth_held['se'])})."
                if truth_held
                else "."
            )
        )
    observable = record.get("evaluation", {}).get("observable_part")
    if observable:
        lines.append(
            "Yet the log carries part of the shock: the feed's statistics (its length, the spread "
            "of its and the other candidates' scores) explain "
            f"{observable['within_r2']:.1%} of the true residual's within-user variance (the "
            f"length alone {observable['within_r2_length_only']:.1%}); with their projection "
            "(fitted on the truth) for r(s-1), the true c_s gives "
            f"{_fmt(observable['true c_s on projected r(s-1)']['effect'])}, the estimated c_s "
            f"{_fmt(observable['estimated c_s on projected r(s-1)']['effect'])}."
        )
    return [*lines, ""]


def data_section(metrics: Path) -> list[str]:
    record = _read(metrics / "data.json")
    if record is None:
        return []
    rows = [[split, n] for split, n in record.get("n_interactions", {}).items()]
    lines = ["## Data", "", *_table(["split", "interactions"], rows), ""]
    for key in ("n_raw", "duplicates_removed", "n_users", "n_items", "n_sessions"):
        if key in record:
            lines.append(f"- {key.replace('_', ' ')}: {record[key]:,}")
    return [*lines, ""]


def build_report(metrics_dir: str | Path, reports_dir: str | Path) -> str:
    """The results page as markdown (links relative to ``reports_dir``)."""
    metrics, reports = Path(metrics_dir), Path(reports_dir)
    lines = [
        "# Results",
        "",
        "Generated by the `report` stage from `metrics/*.json`; do not edit by hand.",
        "",
    ]
    lines += data_section(metrics)
    lines += auc_section(metrics)
    lines += weights_section(metrics)
    lines += causal_section(metrics)
    lines += ["## Notebooks and figures", ""]
    lines += [
        f"- [{n}](notebooks/{n}.ipynb)"
        for n in NOTEBOOKS
        if (reports / "notebooks" / f"{n}.ipynb").exists()
    ]
    lines += [f"- ![{f}](figures/{f})" for f in FIGURES if (reports / "figures" / f).exists()]
    return "\n".join(lines) + "\n"


def update_readme(
    readme: str | Path, metrics_dir: str | Path, reports_dir: str | Path, figures_dir: str | Path
) -> None:
    """Replace the README's results block with the latest tables and show the main figures,
    copied into ``figures_dir`` (a folder kept in git, so the README shows them on a fresh
    clone). Raises ValueError when the README lacks the two markers; nothing is written then."""
    readme, figures = Path(readme), Path(figures_dir)
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no results block ({README_START!r} ... {README_END!r})")
    metrics, reports = Path(metrics_dir), Path(reports_dir)
    lines = []
    for section in (auc_section, weights_section, causal_section):
        lines += [f"#{line}" if line.startswith("## ") else line for line in section(metrics)]
    shown = [f for f in README_FIGURES if (reports / "figures" / f).exists()]
    figures.mkdir(parents=True, exist_ok=True)
    for name in shown:
        shutil.copyfile(reports / "figures" / name, figures / name)
    relative = figures.resolve().relative_to(readme.resolve().parent)
    lines += [f"![{Path(name).stem}]({(relative / name).as_posix()})" for name in shown]
    block = "\n".join([README_START, "", *lines, "", ""]) + README_END
    readme.write_text(text[:start] + block + text[end + len(README_END) :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--readme", help="also update this README's results block")
    parser.add_argument("--readme-figures", default="docs/figures", help="figures it shows")
    args = parser.parse_args(argv)
    text = build_report(args.metrics, args.reports)
    out = Path(args.reports) / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    if args.readme:
        update_readme(args.readme, args.metrics, args.reports, args.readme_figures)
        print(f"updated the results block of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
