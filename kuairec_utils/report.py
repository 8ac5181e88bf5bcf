"""The results page ``docs/results.md`` and the README's results block, from the metrics (the
``report`` stage).

Everything on the page comes from ``metrics/`` (the headline files and their ``details/``), so
the page is regenerated whenever a number changes and never holds a number typed by hand. The
figures are copied beside it (``--figures``, kept in git, so the page and the README show them on
a fresh clone). With ``--readme``, the claims-at-a-glance table and the causal figure replace the
block between the README's results markers::

    python -m kuairec_utils.report --metrics metrics --reports reports --page docs/results.md \
        --figures docs/figures --readme README.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from kuairec_utils.heads import HEADS
from kuairec_utils.study import STUDY_AUC, STUDY_W

README_FIGURE = "06_causal_{model}.png"  # the headline model's, shown in the README
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
    """One line per graph model on what its final representations carry (04's last sections):
    effective rank, the first direction's share, and (simulated data) the taste probe's R^2."""
    lines = []
    for path in sorted(
        [*metrics.glob("details/gnn_*.json"), *metrics.glob("details/taste_*.json")]
    ):
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


def ablation_section(metrics: Path) -> list[str]:
    """04's ablation of the taste model: each variant's mean AUCs over seeds and the paired
    difference from the edge MLP trained the same way."""
    record = _read(metrics / "ablation.json")
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
        "## What each part of the taste model buys",
        "",
        f"Mean AUC over the four heads, mean over {len(seeds)} seed(s); in brackets the paired "
        "difference from the edge MLP trained the same way on the same seed (± its sd over seeds).",
        "",
        *_table(["variant", *(label for _, label in scores)], rows),
        "",
    ]


def _pair_of(metrics: Path, name: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A metrics file and its detailed record (``metrics/details/<name>``, empty if absent)."""
    return _read(metrics / name), _read(metrics / "details" / name) or {}


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def weights_table(record: dict[str, Any]) -> list[str]:
    """One row per head: the study's w*, each estimator's w and 95% interval, w_true."""
    estimators = {n: e for n, e in record["estimators"].items() if "w" in e}
    header = ["head", "study w*"]
    for name in estimators:
        header += [f"w ({name})", f"95% CI ({name})"]
    rows = []
    for head in HEADS:
        row: list[object] = [head, STUDY_W[head]]
        for estimate in estimators.values():
            row += [estimate["w"][head], _interval(estimate.get("ci95", {}).get(head))]
        rows.append([*row, record.get("w_true", {}).get(head)])
    return _table([*header, "w_true"], rows)


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
        text = ", ".join(f"{n} {v:.3f}" for n, v in errors.items())
        lines.append(f"Max |w - w_true|: {text}.")
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
    record, details = _pair_of(metrics, f"weights_{model}.json")
    if record is None:
        return []
    lines = [f"## Head weights (value model {model})", "", *weights_table(record), ""]
    plain = details.get("estimators", {}).get("plain", {})
    text = f"{record['n_sessions']:,} sessions"
    if "objective" in plain:
        text += f"; the study's objective {plain['objective']:.6g} at w*"
    if "feed_overlap" in details:
        text += f"; the simulated feed at w* shares {details['feed_overlap']:.1%} of the observed"
    lines.append(text + ".")
    selection = details.get("estimators", {}).get("selection", {})
    if "w" in record["estimators"].get("selection", {}):
        lines.append(_selection_line(selection, record.get("w_true")))
    return [*lines, *_truth_lines(record, details), ""]


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
        placebo = f", placebo {_fmt(fit['placebo'])}" if "placebo" in fit else ""
        lines.append(f"- {name}: {_fmt(fit['effect'])} (se {_fmt(fit['se'])}){placebo}")
    if lines:
        lines.insert(0, "With the simulator's true residual in place of the measured one:")
        lines.append("")
    diagnosis = evaluation.get("diagnosis")
    if diagnosis:
        lines.append(
            "Within a user, the measured residual correlates "
            f"{_fmt(diagnosis['corr_residual_true_within_user'], 3)} with the true one; the true "
            f"c_s on the measured r(s-1) gives {_fmt(diagnosis['true c_s on measured r(s-1)']['effect'])}"
            ", and the estimated c_s's error moves with the measured r(s-1) by "
            f"{_fmt(diagnosis['error of estimated c_s on measured r(s-1)']['effect'])}."
        )
    observable = evaluation.get("observable_part")
    if observable:
        lines.append(
            f"The feed's statistics explain {observable['within_r2']:.1%} of the true residual's "
            "within-user variance; with their projection (fitted on the truth) for r(s-1), the "
            f"true c_s gives {_fmt(observable['true c_s on projected r(s-1)']['effect'])}, the "
            f"estimated c_s {_fmt(observable['estimated c_s on projected r(s-1)']['effect'])}."
        )
    return lines


def causal_section(metrics: Path, model: str) -> list[str]:
    record, details = _pair_of(metrics, f"causal_{model}.json")
    if record is None:
        return []
    lines = [
        f"## Does a worse feed raise the next session's selectivity? (value model {model})",
        "",
    ]
    lines += _table(
        ["treatment", "effect", "se", "95% CI (bootstrap)"], causal_rows(record, details)
    )
    lines += ["", f"{record['n_sessions']:,} sessions with a previous session."]
    depth = details.get("watch_depth")
    if depth and record.get("quality_offset") == "watch":
        lines.append(
            "Each c_s adds the feed's quality offset that the watch depth of its unskipped videos "
            f"shows (log watch_ratio rises by {_fmt(depth['slopes']['x'], 3)} per unit of the "
            f"index within a session; offsets' sd {_fmt(depth['offset_sd'], 2)} on the "
            "threshold's scale)."
        )
    if "effect_true" in record:
        lines += [f"The simulator's true effect: {record['effect_true']}.", ""]
    return [*lines, *_truth_effect_lines(details), ""]


def _vector(w: dict[str, float]) -> str:
    return "(" + ", ".join(f"{w[h]:.2f}" for h in HEADS) + ")"


def downstream_models(metrics: Path) -> list[str]:
    """The value models 05 ran on (``weights_<model>.json``), by name."""
    return sorted(p.stem.removeprefix("weights_") for p in metrics.glob("weights_*.json"))


def headline_model(metrics: Path, choice: str = "best") -> str | None:
    """The value model whose head weights and causal estimates lead: ``choice``, or with
    ``best`` the one of ``downstream_models`` with the highest validation mean AUC."""
    models = downstream_models(metrics)
    if choice != "best":
        if choice not in models:
            raise ValueError(f"headline model {choice!r}: 05 ran on {models}")
        return choice
    val = {m: (_read(metrics / f"auc_{m}.json") or {}).get("val_auc", {}) for m in models}
    return max(models, key=lambda m: val[m].get("mean", float("-inf")), default=None)


def _covered(estimate: dict[str, Any], w_true: dict[str, float]) -> str:
    ci = estimate.get("ci95") or {}
    if not ci:
        return ""
    return f"{sum(ci[h][0] <= w_true[h] <= ci[h][1] for h in HEADS)} of 4"


def downstream_section(metrics: Path) -> list[str]:
    """05 and 06 on each value model side by side: the selection estimator's w, its error and
    interval coverage, the measured residual's within-user correlation with the true one, and
    the causal estimates."""
    rows = []
    for model in downstream_models(metrics):
        weights, causal = (
            _read(metrics / f"weights_{model}.json"),
            _read(metrics / f"causal_{model}.json"),
        )
        auc = _read(metrics / f"auc_{model}.json") or {}
        selection = weights["estimators"].get("selection", {})
        w_true = weights.get("w_true")
        details = _read(metrics / "details" / f"causal_{model}.json") or {}
        diagnosis = details.get("evaluation", {}).get("diagnosis", {})
        rows.append(
            [
                model,
                auc.get("val_auc", {}).get("mean"),
                _vector(selection["w"]) if "w" in selection else "",
                selection.get("max_abs_error"),
                _covered(selection, w_true) if w_true and "w" in selection else "",
                weights["estimators"].get("plain", {}).get("max_abs_error"),
                diagnosis.get("corr_residual_true_within_user"),
                f"{causal['effect']:.2f} ({causal['se']:.2f})" if causal else "",
                f"{causal['effect_iv']['effect']:.2f} ({causal['effect_iv']['se']:.2f})"
                if causal
                else "",
            ]
        )
    if not rows:
        return []
    header = [
        "value model",
        "val AUC",
        "selection w",
        "max error",
        "CIs covering w_true",
        "plain max error",
        "corr(r, true r) within user",
        "effect, naive (se)",
        "effect, IV (se)",
    ]
    return [
        "## Downstream: the head weights and the causal step on each value model",
        "",
        *_table(header, rows),
        "",
    ]


def headline_rows(metrics: Path, model: str | None = None) -> list[list[object]]:
    """The study's three claims, and the taste model beyond it: what the poster found on real
    KuaiRec, what this repository finds on its data (head weights and the effect: on ``model``,
    by default the one of ``headline_model``), and (simulated data) the truth."""
    model = model or headline_model(metrics)
    aucs = {r["model"]: r["test_auc"] for p in metrics.glob("auc_*.json") if (r := _read(p))}
    gnns = sorted((m for m in aucs if m.startswith("gnn_h")), key=lambda m: -aucs[m]["mean"])
    rows: list[list[object]] = []
    if gnns and "edge_mlp" in aucs:
        best = gnns[0]
        studied = [m for m in STUDY_AUC if m.startswith("gnn_h")]
        study = max(studied, key=lambda m: STUDY_AUC[m]["mean"])  # the poster's best GNN
        truth = aucs.get("oracle") or {}
        rows.append(
            [
                "the GNN beats the edge MLP (mean test AUC)",
                f"{study} {STUDY_AUC[study]['mean']:.4f} vs {STUDY_AUC['edge_mlp']['mean']:.4f}",
                f"{best} {aucs[best]['mean']:.4f} vs {aucs['edge_mlp']['mean']:.4f}",
                f"oracle {truth['mean']:.4f}" if truth else "",
            ]
        )
        tastes = sorted(
            (m for m in aucs if m.startswith("taste_h")), key=lambda m: -aucs[m]["mean"]
        )
        if tastes:
            rows.append(
                [
                    "beyond the study: a graph model that learns taste beats the edge MLP",
                    "",
                    f"{tastes[0]} {aucs[tastes[0]]['mean']:.4f} vs {aucs['edge_mlp']['mean']:.4f}",
                    f"oracle {truth['mean']:.4f}" if truth else "",
                ]
            )
    weights = _read(metrics / f"weights_{model}.json") if model else None
    if weights:
        found = "; ".join(
            f"{n} {_vector(e['w'])}" for n, e in weights["estimators"].items() if "w" in e
        )
        truth = f"w_true {_vector(weights['w_true'])}" if "w_true" in weights else ""
        claim = f"the feeds reveal the head weights w (on {model})"
        rows.append([claim, f"w* {_vector(STUDY_W)}", found, truth])
    causal = _read(metrics / f"causal_{model}.json") if model else None
    if causal:
        iv = causal["effect_iv"]
        rows.append(
            [
                "a worse feed makes the next session more selective (effect of r(s-1) on c_s)",
                "proposed, not estimated",
                f"naive {causal['effect']:.2f} (se {causal['se']:.2f}); "
                f"instrumented {iv['effect']:.2f} (se {iv['se']:.2f})",
                f"{causal['effect_true']:g}" if "effect_true" in causal else "",
            ]
        )
    if model:  # 07's claim (imported here: kuairec_utils.debias.report reads this module)
        from kuairec_utils.debias.report import debias_claim

        rows += debias_claim(metrics, model)
    return rows


def headline_section(metrics: Path, model: str | None) -> list[str]:
    header = ["claim", "the poster, real KuaiRec", "this repository", "the truth"]
    rows = headline_rows(metrics, model)
    return ["## The study's claims at a glance", "", *_table(header, rows), ""] if rows else []


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


def build_report(
    metrics_dir: str | Path,
    reports_dir: str | Path,
    page: str | Path,
    figures_dir: str | Path,
    headline: str = "best",
) -> str:
    """The results page (markdown, links relative to ``page``): the claims at a glance, the
    data, the value models and the ablation, the downstream figures on every value model, the
    head weights and the causal step in full on the headline model (``headline_model``), then
    the executed notebooks and the figures (those in ``figures_dir``)."""
    metrics, reports, page = Path(metrics_dir), Path(reports_dir), Path(page)
    figures = Path(figures_dir)
    model = headline_model(metrics, headline)
    lines = ["# Results", "", "Written by the `report` stage from `metrics/`; do not edit.", ""]
    lines += headline_section(metrics, model)
    for section in (data_section, auc_section, ablation_section, downstream_section):
        lines += section(metrics)
    if model:
        lines += [*weights_section(metrics, model), *causal_section(metrics, model)]
        from kuairec_utils.debias.report import debias_section  # (as in headline_rows)

        lines += debias_section(metrics, model)
    lines += ["## Notebooks and figures", ""]
    here = page.resolve().parent
    for path in sorted((reports / "notebooks").glob("*.ipynb")):
        link = os.path.relpath(path.resolve(), here)
        lines.append(f"- [{path.stem}]({Path(link).as_posix()}) (after `dvc repro`)")
    for path in sorted(figures.glob("*.png")):
        link = os.path.relpath(path.resolve(), here)
        lines.append(f"- ![{path.name}]({Path(link).as_posix()})")
    return "\n".join(lines) + "\n"


def copy_figures(reports_dir: str | Path, figures_dir: str | Path) -> list[str]:
    """Copy the stages' figures into ``figures_dir`` (kept in git), removing the figures there
    that no stage writes any more; the names copied."""
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    copied = sorted(p.name for p in (Path(reports_dir) / "figures").glob("*.png"))
    for stale in figures.glob("*.png"):
        if stale.name not in copied:
            stale.unlink()
    for name in copied:
        shutil.copyfile(Path(reports_dir) / "figures" / name, figures / name)
    return copied


def update_readme(
    readme: str | Path, metrics_dir: str | Path, figures_dir: str | Path, headline: str = "best"
) -> None:
    """Replace the README's results block with the claims at a glance and the headline model's
    causal figure (from ``figures_dir``). Raises ValueError when the README lacks the two
    markers; nothing is written then."""
    readme, figures = Path(readme), Path(figures_dir)
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no results block ({README_START!r} ... {README_END!r})")
    header = ["claim", "the poster, real KuaiRec", "this repository", "the truth"]
    model = headline_model(Path(metrics_dir), headline)
    lines = [*_table(header, headline_rows(Path(metrics_dir), model)), ""]
    relative = Path(os.path.relpath(figures.resolve(), readme.resolve().parent))
    shown = [f for f in [README_FIGURE.format(model=model)] if model and (figures / f).exists()]
    lines += [f"![{Path(name).stem}]({(relative / name).as_posix()})" for name in shown]
    block = "\n".join([README_START, "", *lines, "", ""]) + README_END
    readme.write_text(text[:start] + block + text[end + len(README_END) :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--reports", default="reports")
    parser.add_argument("--page", default="docs/results.md", help="the results page")
    parser.add_argument("--figures", default="docs/figures", help="where the figures are copied")
    parser.add_argument("--readme", help="also update this README's results block")
    parser.add_argument(
        "--headline", default="best", help="the value model leading (best: by validation AUC)"
    )
    args = parser.parse_args(argv)
    out = Path(args.page)
    copy_figures(args.reports, args.figures)
    text = build_report(args.metrics, args.reports, out, args.figures, args.headline)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    if args.readme:
        update_readme(args.readme, args.metrics, args.figures, args.headline)
        print(f"updated the results block of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
