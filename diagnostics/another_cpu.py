"""Do the study's figures hold on another CPU? The pipeline again, on another kernel path.

Another CPU may round a training differently: MKL (torch's CPU BLAS) takes another code path,
numpy and OpenBLAS run other vector loops. Each value model is then another draw, as another
seed's is, and the downstream figures move. The figures the study reports are pooled over the
value-model seeds with a combined interval (docs/design.md section 10); this script checks that
a run on another kernel path lands within them.

It copies the repository (its tracked and untracked, not ignored, files) to a scratch folder,
runs ``dvc repro`` there with the environment of a CPU one step away (MKL's ``COMPATIBLE``
branch, numpy without its top vector level, OpenBLAS's Sandybridge kernels, torch's and
oneDNN's AVX2 kernels where the machine has AVX-512), then compares every pooled figure of
``metrics/`` (a record with ``mean``, ``ci95`` and ``per_seed``) with the same figure of this
repository's committed run: whether the other run's mean, and each of its seeds' estimates,
lies within the committed combined 95% interval. The simulated release is the same on every
x86-64 CPU, so both runs read the same data.

Run after ``make repro`` (as long as a fresh ``make repro``; ``make diagnostics`` runs it as the
supplementary stage ``another_cpu``)::

    .venv/bin/python diagnostics/another_cpu.py [--keep DIR] [--compare DIR] [--out FILE]

``--compare DIR`` skips the run and compares with the metrics of an earlier one in ``DIR``;
``--out FILE`` also writes the table's figures, the summary and the settings as a metrics file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kuairec_utils.metrics import write_metrics
from kuairec_utils.records import run_settings

ROOT = Path(__file__).resolve().parents[1]


def other_kernels() -> dict[str, str]:
    """The environment of an x86-64 CPU one step away from this one."""
    found = np.show_config(mode="dicts")["SIMD Extensions"]["found"]
    env = {"MKL_CBWR": "COMPATIBLE,STRICT", "OPENBLAS_CORETYPE": "Sandybridge"}
    if "X86_V4" in found:
        env["NPY_DISABLE_CPU_FEATURES"] = "X86_V4"
    elif "X86_V3" in found:
        env["NPY_DISABLE_CPU_FEATURES"] = "X86_V3"
    if torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        env |= {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    return env


def copy_repository(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def pooled_figures(record: Any, key: str = "") -> dict[str, dict[str, Any]]:
    """Every pooled figure of a metrics record (its mean, or a difference's ``estimate``, with
    ``ci95`` and ``per_seed``), by dotted key."""
    out = {}
    if isinstance(record, dict):
        if {"ci95", "per_seed"} <= set(record) and ({"mean"} | {"estimate"}) & set(record):
            out[key] = {**record, "mean": record.get("mean", record.get("estimate"))}
        for name, value in record.items():
            out |= pooled_figures(value, f"{key}.{name}" if key else name)
    return out


def figure_pairs(committed: Path, other: Path) -> dict[str, tuple[dict, dict]]:
    """Each pooled figure of the committed metrics that the other run holds too, by
    ``"file: key"``: (the committed figure, the other run's)."""
    pairs = {}
    for path in sorted([*committed.glob("*.json"), *committed.glob("details/*.json")]):
        name = path.relative_to(committed)
        if not (other / name).exists():
            continue
        mine = pooled_figures(json.loads(path.read_text()))
        theirs = pooled_figures(json.loads((other / name).read_text()))
        for key, figure in mine.items():
            if key in theirs:
                pairs[f"{name.with_suffix('')}: {key}"] = (figure, theirs[key])
    return pairs


def within(figure: dict, theirs: dict) -> dict[str, Any]:
    """One figure's comparison: the committed mean and combined interval, the other run's mean,
    and whether it and each of the other run's seeds lie within the interval."""
    lo, hi = figure["ci95"]
    seeds = theirs["per_seed"]
    return {
        "committed mean": figure["mean"],
        "combined 95% CI": [lo, hi],
        "other run's mean": theirs["mean"],
        "mean within": bool(lo <= theirs["mean"] <= hi),
        "seeds within": sum(bool(lo <= s <= hi) for s in seeds),
        "seeds": len(seeds),
        "all seeds within": all(lo <= s <= hi for s in seeds),
    }


def compare(committed: Path, other: Path) -> pd.DataFrame:
    """One row per pooled figure: the committed mean and combined interval, the other run's
    mean and seeds, and whether they lie within the interval."""
    rows = []
    for name, (figure, theirs) in figure_pairs(committed, other).items():
        row = within(figure, theirs)
        lo, hi = row["combined 95% CI"]
        rows.append(
            {
                "figure": name,
                "committed mean": row["committed mean"],
                "combined 95% CI": f"[{lo:.4g}, {hi:.4g}]",
                "other run's mean": row["other run's mean"],
                "mean within": row["mean within"],
                "seeds within": f"{row['seeds within']} of {row['seeds']}",
                "all seeds within": row["all seeds within"],
            }
        )
    return pd.DataFrame(rows)


def comparison_record(committed: Path, other: Path) -> dict[str, Any]:
    """``compare``'s table as a metrics record (``figures``: one entry per row, the interval as
    [lo, hi] and the seeds within as a count of ``seeds``) and the summary line's counts."""
    figures = {
        name: within(figure, theirs)
        for name, (figure, theirs) in figure_pairs(committed, other).items()
    }
    return {
        "figures": figures,
        "summary": {
            "pooled figures": len(figures),
            "means within the committed combined intervals": sum(
                f["mean within"] for f in figures.values()
            ),
            "every seed within": sum(f["all seeds within"] for f in figures.values()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--compare", type=Path, help="compare with this earlier run's folder")
    parser.add_argument(
        "--metrics", type=Path, default=ROOT / "metrics", help="the committed run's metrics"
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this metrics file")
    args = parser.parse_args(argv)
    folder, committed = args.compare, args.metrics.absolute()
    if folder is None:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="another_cpu_"))
        copy_repository(folder)
        env = os.environ | other_kernels()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        print(f"dvc repro in {folder} with {other_kernels()}", flush=True)
        subprocess.run(["dvc", "repro"], cwd=folder, env=env, check=True)
    table = compare(committed, folder / "metrics")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False))
    print(
        f"\n{int(table['mean within'].sum())} of {len(table)} pooled figures' means within the "
        f"committed combined intervals; every seed within for {int(table['all seeds within'].sum())}"
    )
    if args.out is not None:
        record = {
            "settings": run_settings(args),
            **comparison_record(committed, folder / "metrics"),
        }
        if args.compare is None:
            record["settings"]["other kernels"] = other_kernels()
        write_metrics(args.out, record)
    if args.compare is None and args.keep is None:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
