"""The whole study at another scale, stage by stage: wall time and peak memory of each stage.

``make bench`` times the pipeline on the default data (scale 0.12) and only the simulator and the
feature step at scale 1.0. This script runs every stage of the default ``dvc repro`` at the scale
you give, in a fresh clone of this repository's HEAD (``git clone``, then ``make env``), with
``params.yaml`` changed by ``--set`` (as ``dvc exp run -S`` would), one DVC stage at a time like
``bench_all.py``::

    .venv/bin/python benchmarks/bench_study.py --scale 1.0 [--set value_model.seeds=[20200705]] [--keep DIR]

The study at KuaiRec's full size (scale 1.0, 12.5M rows) should take at most an hour on 2 cores
(half an hour the goal) and at most 16 GB, with the default parameters and one value-model seed.
A stage that fails stops the run and the table shows what ran until then.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_all import fresh_clone, measured, print_table, stage_order


def set_params(params_file: Path, settings: list[str]) -> list[str]:
    """Apply ``section.name=value`` settings to a params.yaml (comments kept); what was set.

    A key must already exist, so that a typo stops the run here instead of being ignored.
    """
    yaml = YAML()  # round trip: comments and order kept
    params = yaml.load(params_file.read_text())
    done = []
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {setting!r}: expected section.name=value")
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise SystemExit(f"--set {setting!r}: params.yaml has no {key!r}")
            node = node[part]
        if not isinstance(node, dict) or leaf not in node:
            raise SystemExit(f"--set {setting!r}: params.yaml has no {key!r}")
        node[leaf] = YAML(typ="safe").load(text)
        done.append(f"{key}={node[leaf]!r}")
    with params_file.open("w") as f:
        yaml.dump(params, f)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="simulate.scale (default 1.0)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another params.yaml value, e.g. gnn.epochs=1 (repeatable)",
    )
    parser.add_argument("--keep", type=Path, help="clone into this folder and keep it")
    args = parser.parse_args()

    clone, log, env = fresh_clone(args.keep, "kuairec-study-", "bench_study.log")
    settings = set_params(clone / "params.yaml", [f"simulate.scale={args.scale}", *args.set])
    print("params: " + ", ".join(settings), flush=True)
    install = measured(["make", "env"], clone, env, log)
    print(f"install {install['wall_s']:.0f} s", flush=True)

    rows: list[tuple[str, str, str]] = []
    peak = 0.0
    tic = time.perf_counter()
    for name in stage_order(clone, env):
        try:
            r = measured(["dvc", "repro", "--single-item", name], clone, env, log)
        except SystemExit as failed:
            rows.append((f"  stage {name}", "FAILED", ""))
            print(failed, flush=True)
            break
        peak = max(peak, r["peak_mib"])
        rows.append((f"  stage {name}", f"{r['wall_s']:.0f} s", f"{r['peak_mib']:,.0f} MiB"))
        print(f"stage {name}: {r['wall_s']:.0f} s, {r['peak_mib']:,.0f} MiB", flush=True)
    wall = time.perf_counter() - tic
    rows.append(("pipeline (the stages above)", f"{wall:.0f} s", f"{peak:,.0f} MiB"))

    print("\nparams: " + ", ".join(settings))
    print_table(rows, "time", 8)
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
