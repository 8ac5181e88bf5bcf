"""The results page and the README's results block, put together from the sections (the
``report`` stage: ``python -m kuairec_utils.report``)."""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kuairec_utils.config import load_params
from kuairec_utils.report.auc import ablation_section, auc_section
from kuairec_utils.report.causal import causal_section
from kuairec_utils.report.claims import HEADER, claim_rows
from kuairec_utils.report.debias import debias_section
from kuairec_utils.report.decomposition import decomposition_section
from kuairec_utils.report.fill import Metrics, fill
from kuairec_utils.report.head_weights import downstream_section, headline_model, weights_section
from kuairec_utils.report.tables import read, table

README_FIGURE = "06_causal_{model}.png"  # the headline model's, shown in the README
README_START = "<!-- results: written by the report stage (python -m kuairec_utils.report) -->"
README_END = "<!-- /results -->"


def headline_rows(
    metrics: Path, model: str | None = None, supplementary: Path | None = None
) -> list[list[object]]:
    """The study's claims and the taste model beyond it (``claims.claim_rows``): the head
    weights, the effect and the debiasing on ``model``, by default ``headline_model``'s."""
    return claim_rows(metrics, model or headline_model(metrics), supplementary)


def headline_section(
    metrics: Path, model: str | None, supplementary: Path | None = None
) -> list[str]:
    rows = headline_rows(metrics, model, supplementary)
    return ["## The study's claims at a glance", "", *table(HEADER, rows), ""] if rows else []


DATA_COUNTS = {  # metrics/data.json's counts, as the page names them
    "n_raw": "raw rows",
    "duplicates_removed": "duplicates removed",
    "n_users": "users",
    "n_items": "videos",
    "n_sessions": "sessions",
    "sessions_with_logged_pool": "sessions with a logged pool",
}


def data_section(metrics: Path) -> list[str]:
    record = read(metrics / "data.json")
    if record is None:
        return []
    splits = [f"{split} {n:,}" for split, n in record.get("n_interactions", {}).items()]
    counts = [f"{label} {record[k]:,}" for k, label in DATA_COUNTS.items() if k in record]
    return [
        "## Data",
        "",
        f"Interactions by split: {'; '.join(splits)}.",
        "; ".join(counts) + ".",
        "",
    ]


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
    if model:
        lines += [*weights_section(metrics, model), *causal_section(metrics, model)]
        lines += [*decomposition_section(metrics, model), *debias_section(metrics, model)]
    lines += ["## Notebooks and figures", ""]
    here = page.resolve().parent
    links = [
        f"[{path.stem}]({Path(os.path.relpath(path.resolve(), here)).as_posix()})"
        for path in sorted((reports / "notebooks").glob("*.ipynb"))
    ]
    lines += ["Notebooks: " + " · ".join(links), ""] if links else []
    shown = [
        f"![{path.name}]({Path(os.path.relpath(path.resolve(), here)).as_posix()})"
        for path in sorted(figures.glob("*.png"))
    ]
    lines += [" ".join(shown)] if shown else []
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


def context(
    metrics_dir: str | Path,
    model: str | None,
    params: Mapping[str, Any],
    supplementary_dir: str | Path | None = None,
) -> dict[str, Any]:
    """What the templates read (``fill``): the metrics, the headline model, whether the run
    has the simulator's truth, params.yaml and the number of value-model seeds."""
    metrics = Path(metrics_dir)
    oracle = read(metrics / "auc_oracle.json") or {}
    return {
        "m": Metrics(metrics, model),
        "s": Metrics(Path(supplementary_dir), model) if supplementary_dir else None,
        "model": model,
        "simulated": oracle.get("test_auc") is not None,
        "params": params,
        "n_seeds": len(params["value_model"]["seeds"]),
    }


def readme_block(
    readme: Path,
    metrics_dir: str | Path,
    figures_dir: str | Path,
    model: str | None,
    values: Mapping[str, Any],
    supplementary_dir: str | Path | None = None,
) -> str:
    """The README's results block: the template ``readme.md`` around the claims at a glance
    and the headline model's causal figure (from ``figures_dir``)."""
    figures = Path(figures_dir)
    supplementary = Path(supplementary_dir) if supplementary_dir else None
    rows = headline_rows(Path(metrics_dir), model, supplementary)
    relative = Path(os.path.relpath(figures.resolve(), readme.resolve().parent))
    shown = [f for f in [README_FIGURE.format(model=model)] if model and (figures / f).exists()]
    figure = "\n".join(f"![{Path(n).stem}]({(relative / n).as_posix()})" for n in shown)
    body = fill(
        "readme.md", values | {"claims_table": "\n".join(table(HEADER, rows)), "figure": figure}
    )
    return "\n".join([README_START, "", body.strip("\n"), "", ""]) + README_END


def replace_block(readme: str | Path, block: str) -> str:
    """The README's text with its results block replaced by ``block``; a README without the
    two markers is a ValueError."""
    text = Path(readme).read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no results block ({README_START!r} ... {README_END!r})")
    return text[:start] + block + text[end + len(README_END) :]


def update_readme(
    readme: str | Path,
    metrics_dir: str | Path,
    figures_dir: str | Path,
    headline: str = "best",
    supplementary_dir: str | Path | None = None,
    downstream: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Replace the README's results block (``readme_block``). Raises ValueError when the
    README lacks the two markers or a figure is missing; nothing is written then."""
    model = headline_model(Path(metrics_dir), headline, downstream)
    values = context(metrics_dir, model, params or load_params(), supplementary_dir)
    block = readme_block(Path(readme), metrics_dir, figures_dir, model, values, supplementary_dir)
    Path(readme).write_text(replace_block(readme, block))


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
    parser.add_argument("--findings", help="also write the findings page from its template")
    args = parser.parse_args(argv)
    params = load_params(args.params) if args.params else load_params()
    downstream = params["value_model"]["downstream"] if args.params else None
    model = headline_model(Path(args.metrics), args.headline, downstream)
    values = context(args.metrics, model, params, args.supplementary)
    # every template filled before anything is written: a missing figure stops here
    findings = fill("findings.md", values) if args.findings else None
    copy_figures(args.reports, args.figures)
    out = Path(args.page)
    pages = {
        out: build_report(
            *(args.metrics, args.reports, out, args.figures),
            args.headline,
            args.supplementary,
            downstream,
        )
    }
    if findings is not None:
        pages[Path(args.findings)] = findings
    if args.readme:
        readme = Path(args.readme)
        block = readme_block(readme, args.metrics, args.figures, model, values, args.supplementary)
        pages[readme] = replace_block(readme, block)
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0
