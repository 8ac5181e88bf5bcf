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

from kuairec_utils.config import load_params
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


def _auc_row(
    name: str, auc: dict[str, float], oracle: dict | None, sd: float | None = None
) -> list[object]:
    gap = auc["mean"] - oracle["test_auc"]["mean"] if oracle else None
    return [name, *(auc[h] for h in (*HEADS, "mean")), sd, gap]


def auc_section(metrics: Path) -> list[str]:
    """Test AUC per head and mean of every model, the oracle (with, after it, the oracles
    without the session's shock) and the study."""
    rows = []
    oracle = _read(metrics / "auc_oracle.json")
    if oracle is not None and oracle.get("test_auc") is None:
        oracle = None  # real data: the stage writes the file, but there is no truth
    for path in sorted(metrics.glob("auc_*.json")):
        record = _read(path)
        if record is None or "model" not in record or record["model"].startswith("oracle"):
            continue
        sd = (record.get("test_auc_sd") or {}).get("mean")
        rows.append(_auc_row(record["model"], record["test_auc"], oracle, sd))
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
        rows.append(
            [f"{name} (study, real KuaiRec)", *(auc[h] for h in (*HEADS, "mean")), None, None]
        )
    header = ["model", *HEADS, "mean", "sd over seeds", "gap to oracle"]
    seeds = (_read(metrics / "auc_edge_mlp.json") or {}).get("seeds", [])
    lines = [
        "## Value models: test AUC",
        "",
        f"Each model's mean over its {len(seeds)} value-model seeds; the sd of its mean AUC "
        "across the seeds beside it.",
        "",
        *_table(header, rows),
        "",
    ]
    return [*lines, *_comparison_lines(metrics), *_collapse_lines(metrics)]


def _comparison_lines(metrics: Path) -> list[str]:
    """Each model against the reference (04_gnn_vs_oracle): the pooled difference of mean test
    AUC, its spread across seeds and within run, the combined interval and the verdict."""
    record = _read(metrics / "auc_comparisons.json")
    if not record:
        return []
    rows = []
    for name, c in record["models"].items():
        d = c["difference"]
        poster = None
        if name in STUDY_AUC and record["reference"] in STUDY_AUC:
            poster = STUDY_AUC[name]["mean"] - STUDY_AUC[record["reference"]]["mean"]
        rows.append(
            [name, poster, d["mean"], d["sd_seeds"], d["se_within"], _interval(d["ci95"], 4)]
            + [c["verdict"]]
        )
    header = ["model", "the poster", "difference", "sd over seeds", "se within run"]
    header += ["combined 95% CI", f"beats {record['reference']}"]
    return [
        f"Each model's mean test AUC minus {record['reference']}'s, on the same test rows: each "
        "seed's difference with a standard error clustered by user, pooled over the seeds by "
        "Rubin's rules (docs/design.md section 10).",
        "",
        *_table(header, rows),
        "",
    ]


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


def ablation_section(supplementary: Path | None) -> list[str]:
    """04's ablation of the taste model (supplementary: ``make ablation``): each variant's mean
    AUCs over seeds and the paired difference from the edge MLP trained the same way."""
    record = _read(supplementary / "ablation.json") if supplementary else None
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
        *_table(["variant", *(label for _, label in scores)], rows),
        "",
    ]


def _pair_of(metrics: Path, name: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A metrics file and its detailed record (``metrics/details/<name>``, empty if absent)."""
    return _read(metrics / name), _read(metrics / "details" / name) or {}


def _interval(ci: list[float] | None, digits: int = 3) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


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
            row += [f"{estimate['w'][head]:.3f}{spread}", _interval(estimate["ci95"][head])]
        rows.append([*row, record.get("w_true", {}).get(head)])
    lines = _table([*header, "w_true"], rows)
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
            f"{n} {v['mean']:.3f} {_interval(v['ci95'])} (per seed "
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
    record, details = _pair_of(metrics, f"weights_{model}.json")
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


def _vector(w: dict[str, float]) -> str:
    return "(" + ", ".join(f"{w[h]:.2f}" for h in HEADS) + ")"


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
    val = {m: (_read(metrics / f"auc_{m}.json") or {}).get("val_auc", {}) for m in models}
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
        weights = _read(metrics / f"weights_{model}.json") or {}
        causal = _read(metrics / f"causal_{model}.json") or {}
        auc = _read(metrics / f"auc_{model}.json") or {}
        estimators = weights.get("estimators", {})
        selection = estimators.get("selection", {})
        details = _read(metrics / "details" / f"causal_{model}.json") or {}
        diagnosis = details.get("evaluation", {}).get("diagnosis", {})
        error = {n: estimators.get(n, {}).get("max_abs_error") for n in ("selection", "plain")}
        rows.append(
            [
                model,
                auc.get("val_auc", {}).get("mean"),
                *(f"{e['mean']:.3f} {_interval(e['ci95'])}" if e else "" for e in error.values()),
                _covered(selection, weights["w_true"]) if "w_true" in weights else "",
                diagnosis.get("corr_residual_true_within_user"),
                *(
                    f"{causal[k]['mean']:.2f} {_interval(causal[k]['ci95'], 2)}" if causal else ""
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
        *_table(header, rows),
        "",
    ]


def headline_rows(
    metrics: Path, model: str | None = None, supplementary: Path | None = None
) -> list[list[object]]:
    """The study's claims and the taste model beyond it (``claims.claim_rows``): the head
    weights, the effect and the debiasing on ``model``, by default ``headline_model``'s."""
    from kuairec_utils.claims import claim_rows

    return claim_rows(metrics, model or headline_model(metrics), supplementary)


def headline_section(
    metrics: Path, model: str | None, supplementary: Path | None = None
) -> list[str]:
    from kuairec_utils.claims import HEADER as header

    rows = headline_rows(metrics, model, supplementary)
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
    supplementary_dir: str | Path | None = None,
    downstream: list[str] | None = None,
) -> str:
    """The results page (markdown, links relative to ``page``): the claims at a glance, the
    data, the value models and (when it ran, in ``supplementary_dir``) the ablation, the
    downstream figures on every value model, the head weights and the causal step in full on
    the headline model (``headline_model``), then the executed notebooks and the figures
    (those in ``figures_dir``)."""
    metrics, reports, page = Path(metrics_dir), Path(reports_dir), Path(page)
    figures = Path(figures_dir)
    supplementary = Path(supplementary_dir) if supplementary_dir else None
    model = headline_model(metrics, headline, downstream)
    lines = ["# Results", "", "Written by the `report` stage from `metrics/`; do not edit.", ""]
    lines += headline_section(metrics, model, supplementary)
    for section in (data_section, auc_section):
        lines += section(metrics)
    lines += ablation_section(supplementary) + downstream_section(metrics, downstream)
    if model:  # (imported here: those modules read this one's helpers)
        from kuairec_utils.causal.report import causal_section
        from kuairec_utils.debias.report import debias_section

        lines += [*weights_section(metrics, model), *causal_section(metrics, model)]
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
    readme: str | Path,
    metrics_dir: str | Path,
    figures_dir: str | Path,
    headline: str = "best",
    supplementary_dir: str | Path | None = None,
    downstream: list[str] | None = None,
) -> None:
    """Replace the README's results block with the claims at a glance and the headline model's
    causal figure (from ``figures_dir``). Raises ValueError when the README lacks the two
    markers; nothing is written then."""
    readme, figures = Path(readme), Path(figures_dir)
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no results block ({README_START!r} ... {README_END!r})")
    from kuairec_utils.claims import HEADER as header

    model = headline_model(Path(metrics_dir), headline, downstream)
    supplementary = Path(supplementary_dir) if supplementary_dir else None
    lines = [*_table(header, headline_rows(Path(metrics_dir), model, supplementary)), ""]
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
        "--supplementary", help="the supplementary stages' metrics (shown when they ran)"
    )
    parser.add_argument(
        "--headline", default="best", help="the value model leading (best: by validation AUC)"
    )
    parser.add_argument(
        "--params", help="a params.yaml: only its value_model.downstream models are reported"
    )
    args = parser.parse_args(argv)
    out = Path(args.page)
    downstream = None
    if args.params:
        downstream = load_params(args.params)["value_model"]["downstream"]
    copy_figures(args.reports, args.figures)
    text = build_report(
        args.metrics,
        args.reports,
        out,
        args.figures,
        args.headline,
        args.supplementary,
        downstream,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    if args.readme:
        update_readme(
            args.readme, args.metrics, args.figures, args.headline, args.supplementary, downstream
        )
        print(f"updated the results block of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
