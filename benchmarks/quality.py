"""Quality kept: the default run's headline figures before and after a change, side by side.

Reads ``metrics/`` of two runs (a git revision's committed metrics, or a folder) and prints one
Markdown table: every value model's mean test AUC (kept when the after is at most 0.002 below the
before, or better), and every pooled figure of 05, 06 and 07 with its combined 95% interval (kept
when each run's mean lies inside the other run's interval)::

    .venv/bin/python benchmarks/quality.py --before daf44be --after metrics

docs/performance.md's quality table is this script's output.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUC_TOLERANCE = 0.002
AUC_MODELS = ("logreg", "edge_mlp", "gnn_h64", "gnn_h128", "taste_h64")


def read_metrics(source: str, name: str) -> dict | None:
    """``metrics/<name>.json`` from a folder or, when ``source`` is not one, a git revision."""
    folder = Path(source)
    if folder.is_dir():
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None
    done = subprocess.run(
        ["git", "show", f"{source}:metrics/{name}.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def pooled_figures(weights: dict, causal: dict, debias: dict) -> dict[str, tuple[float, list]]:
    """Every pooled figure of 05-07 as ``name -> (mean, combined ci95)``."""
    out: dict[str, tuple[float, list]] = {}
    for est, rec in (weights or {}).get("estimators", {}).items():
        for head, value in rec["w"].items():
            out[f"05 {est} w_{head}"] = (value, rec["ci95"][head])
        err = rec["max_abs_error"]
        out[f"05 {est} max error"] = (err["mean"], err["ci95"])
    if causal:
        for prefix, rec in (("selection w", causal), ("plain w", causal.get("study_estimator"))):
            for key in ("effect", "effect_iv", "placebo"):
                if rec and key in rec:
                    out[f"06 {prefix}: {key}"] = (rec[key]["mean"], rec[key]["ci95"])
    for where, rec in (debias or {}).get("evaluation", {}).items():
        for measure, figure in rec.items():
            diff = figure["difference"]
            out[f"07 {where} {measure}: corrected - raw"] = (diff["estimate"], diff["ci95"])
    return out


def inside(value: float, interval: list) -> bool:
    return interval[0] <= value <= interval[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="a git revision or a metrics folder")
    parser.add_argument("--after", default="metrics", help="a git revision or a metrics folder")
    parser.add_argument("--model", default="taste_h64", help="the downstream value model")
    args = parser.parse_args()

    print("| figure | before | after | kept |")
    print("|---|---:|---:|---|")
    for model in AUC_MODELS:
        before = read_metrics(args.before, f"auc_{model}")
        after = read_metrics(args.after, f"auc_{model}")
        if before is None or after is None:
            continue
        b, a = before["test_auc"]["mean"], after["test_auc"]["mean"]
        kept = "yes" if a >= b - AUC_TOLERANCE else f"no ({a - b:+.4f})"
        print(f"| {model} mean test AUC | {b:.4f} | {a:.4f} | {kept} |")
    figures = []
    for source in (args.before, args.after):
        figures.append(
            pooled_figures(
                read_metrics(source, f"weights_{args.model}"),
                read_metrics(source, f"causal_{args.model}"),
                read_metrics(source, f"debias_{args.model}"),
            )
        )
    before, after = figures
    for name in before:
        if name not in after:
            continue
        (b, b_ci), (a, a_ci) = before[name], after[name]
        kept = "yes" if inside(a, b_ci) and inside(b, a_ci) else "no"
        print(
            f"| {name} | {b:+.3f} [{b_ci[0]:+.3f}, {b_ci[1]:+.3f}] "
            f"| {a:+.3f} [{a_ci[0]:+.3f}, {a_ci[1]:+.3f}] | {kept} |"
        )


if __name__ == "__main__":
    main()
