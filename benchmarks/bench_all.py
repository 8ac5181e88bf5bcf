"""`make bench`: the researcher's timings in one table.

1. A fresh clone of this repository's HEAD (``git clone``, nothing shared with this checkout but
   the git objects): ``make env`` (the pinned install) and the pipeline, one DVC stage at a time
   in the order ``dvc repro`` runs them, each stage's wall time and peak memory (the largest
   resident set of any process of the stage: the notebook's kernel, papermill, dvc); then a
   second ``dvc repro`` (it must run nothing) and ``dvc status``.
2. The simulator and the feature step at scale 1.0 (12.5M rows), rows per second and peak
   memory (``bench_simulate.py``, ``bench_features.py``), and one training epoch of the taste
   model, the study's GCN and the edge MLP at scale 1.0 (``bench_taste.py``).
3. The GNN's time-to-accuracy ratio against a naive PyG loop, on the clone's default data
   (``bench_gnn.py``).

::

    .venv/bin/python benchmarks/bench_all.py [--keep DIR] [--skip-scale-1] [--skip-gnn]

Everything runs on this machine, one step after the other (about 50 minutes on 2 cores).
Targets (docs/performance.md): a fresh clone's install and pipeline within 20 minutes (goal 10);
the whole study at scale 1.0 (``bench_study.py``) within 60 minutes (goal 30) and 16 GB (goal
12).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

# Runs a command and prints its wall time and the peak RSS of its largest process (KiB): the
# rusage of waited-for children covers their own children (papermill's kernel included).
MEASURE = r"""
import json, resource, subprocess, sys, time
tic = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
print(json.dumps({"rc": rc, "wall_s": time.perf_counter() - tic,
                  "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measured(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict:
    """Run ``cmd`` in ``cwd`` (output appended to ``log``); its wall time and peak memory."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
    lines = done.stdout.strip().splitlines()
    with log.open("a") as out:
        out.write("\n".join(lines[:-1]) + "\n")
    result = json.loads(lines[-1])
    if result["rc"] != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed (exit {result['rc']}); see {log}")
    return result


def tree_digest(root: Path) -> dict[str, str]:
    """md5 of every file of the working tree but .git/, .dvc/ and .venv/."""
    digest = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in (".git", ".dvc", ".venv")]
        for name in files:
            path = Path(folder) / name
            digest[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return digest


def stage_order(clone: Path, env: dict[str, str]) -> list[str]:
    """The pipeline's stages in dvc.yaml's order, which is upstream first (``dvc repro
    --single-item`` would stop on a stage whose inputs are not built yet)."""
    out = subprocess.run(
        ["dvc", "stage", "list", "--name-only"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def script_json(script: str, args: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict:
    """Run a benchmark script with ``--json FILE`` and return what it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        target = Path(f.name)
    try:
        measured(
            [
                str(cwd / ".venv" / "bin" / "python"),
                f"benchmarks/{script}",
                *args,
                "--json",
                str(target),
            ],
            cwd,
            env,
            log,
        )
        return json.loads(target.read_text())
    finally:
        target.unlink(missing_ok=True)


def fresh_clone(keep: Path | None, prefix: str, log_name: str) -> tuple[Path, Path, dict]:
    """Where to clone (``keep``, or a new temporary folder), the emptied log under
    ``benchmarks/out/`` and the environment whose PATH starts with the clone's ``.venv``."""
    clone = keep or Path(tempfile.mkdtemp(prefix=prefix)) / "clone"
    if clone.exists():
        raise SystemExit(f"{clone} exists: give a new folder to --keep")
    log = HERE / "out" / log_name  # git-ignored
    log.parent.mkdir(exist_ok=True)
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    print(f"fresh clone of {REPO} at {clone} (log: {log})", flush=True)
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(REPO), str(clone)], check=True)
    return clone, log, env


def print_table(rows: list[tuple[str, str, str]], figure: str, width_figure: int) -> None:
    """Print ``(what, figure, peak memory)`` rows as a Markdown table."""
    width = max(len(r[0]) for r in rows)
    print()
    print(f"| {'what':<{width}} | {figure:>{width_figure}} | {'peak memory':>11} |")
    print(f"|{'-' * (width + 2)}|{'-' * (width_figure + 2)}|{'-' * 13}|")
    for what, value, memory in rows:
        print(f"| {what:<{width}} | {value:>{width_figure}} | {memory:>11} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="clone into this folder and keep it")
    parser.add_argument("--skip-scale-1", action="store_true", help="no scale-1.0 throughput")
    parser.add_argument("--skip-gnn", action="store_true", help="no GNN time-to-accuracy ratio")
    args = parser.parse_args()

    clone, log, env = fresh_clone(args.keep, "kuairec-bench-", "bench_all.log")
    rows: list[tuple[str, str, str]] = []
    install = measured(["make", "env"], clone, env, log)
    rows.append(("fresh clone: make env (install)", f"{install['wall_s']:.0f} s", ""))
    print(f"install {install['wall_s']:.0f} s", flush=True)

    pipeline_s, pipeline_peak = 0.0, 0.0
    stages = stage_order(clone, env)
    tic = time.perf_counter()
    for name in stages:
        r = measured(["dvc", "repro", "--single-item", name], clone, env, log)
        pipeline_s += r["wall_s"]
        pipeline_peak = max(pipeline_peak, r["peak_mib"])
        rows.append((f"  stage {name}", f"{r['wall_s']:.0f} s", f"{r['peak_mib']:,.0f} MiB"))
        print(f"stage {name}: {r['wall_s']:.0f} s, {r['peak_mib']:,.0f} MiB", flush=True)
    wall = time.perf_counter() - tic
    rows.append(("fresh clone: pipeline (dvc repro)", f"{wall:.0f} s", f"{pipeline_peak:,.0f} MiB"))
    before = tree_digest(clone)
    again = measured(["dvc", "repro"], clone, env, log)
    status = subprocess.run(
        ["dvc", "status"], cwd=clone, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    after = tree_digest(clone)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    rows.append(("second dvc repro (must run nothing)", f"{again['wall_s']:.0f} s", ""))
    rows.append(("  dvc status after it", status.splitlines()[0] if status else "?", ""))
    rows.append(("  files it changed", ", ".join(changed) or "none", ""))

    if not args.skip_scale_1:
        sim = script_json("bench_simulate.py", ["--scales", "1.0"], clone, env, log)[0]
        rows.append(
            (
                f"simulator, scale 1.0 ({sim['big_matrix_rows'] / 1e6:.1f}M rows)",
                f"{sim['big_matrix_rows'] / sim['wall_s']:,.0f} rows/s ({sim['wall_s']:.0f} s)",
                f"{sim['peak_rss_mib']:,.0f} MiB",
            )
        )
        feat = script_json("bench_features.py", ["--scales", "1.0"], clone, env, log)[0]
        total = feat["read_s"] + feat["build_s"] + feat["write_s"]
        rows.append(
            (
                f"features, scale 1.0 ({feat['rows'] / 1e6:.1f}M rows)",
                f"{feat['rows'] / total:,.0f} rows/s ({total:.0f} s)",
                f"{feat['peak_rss_mib']:,.0f} MiB",
            )
        )
        for epoch in script_json("bench_taste.py", ["--scale", "1.0"], clone, env, log):
            rows.append(
                (
                    f"{epoch['model']}, one epoch at scale 1.0",
                    f"{epoch['epoch_s']:.0f} s ({epoch['train_rows'] / 1e6:.1f}M training rows)",
                    f"{epoch['peak_rss_mib']:,.0f} MiB",
                )
            )
    if not args.skip_gnn:
        gnn = script_json("bench_gnn.py", [], clone, env, log)
        rows.append(
            (
                "GNN time to accuracy (project / naive PyG)",
                f"{gnn['ratio']:.3f} ({gnn['project_s']:.0f} s / {gnn['naive_s']:.0f} s)",
                "",
            )
        )

    print_table(rows, "time / figure", 34)
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
