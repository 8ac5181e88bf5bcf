"""Benchmark the feature step (02_features): wall time and peak memory by scale.

For each scale, the simulated release and its interaction table (01_data's
``build_interactions``) are made once and cached under ``benchmarks/out/`` (git-ignored); then
a fresh Python process does what the 02_features stage does: read the interactions and the side
tables, ``build_features`` and ``write_processed`` to a temporary folder. Its peak resident
memory is the feature step's own::

    .venv/bin/python benchmarks/bench_features.py                 # scales 0.12 and 1.0
    .venv/bin/python benchmarks/bench_features.py --scales 0.05

Target: features for the full 12.5M rows (scale 1.0) within 10 minutes,
well within 16 GB. Simulating scale 1.0 the first time takes about 3 minutes and 7 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
REPO = Path(__file__).resolve().parents[1]

INTERACTIONS = r"""
import sys
from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
from kuairec_utils.heads import LabelThresholds
from kuairec_utils.data.kuairec import read_table
big = read_table(kuairec_data_dir(sys.argv[1]), "big_matrix")
frame, _ = build_interactions(big, InteractionsConfig(), LabelThresholds())
frame.to_parquet(sys.argv[2])
"""

FEATURES = r"""
import json, resource, sys, tempfile, time
import pandas as pd
from kuairec_utils.features import FeatureConfig, build_features, load_side_tables, write_processed
tic = time.perf_counter()
frame = pd.read_parquet(sys.argv[2])
side = load_side_tables(sys.argv[1])
read_s = time.perf_counter() - tic
tic = time.perf_counter()
features = build_features(frame, side, FeatureConfig())
build_s = time.perf_counter() - tic
with tempfile.TemporaryDirectory() as tmp:
    tic = time.perf_counter()
    write_processed(features, tmp)
    write_s = time.perf_counter() - tic
print(json.dumps({
    "rows": len(frame), "features": len(features.names), "read_s": read_s, "build_s": build_s,
    "write_s": write_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def cached_inputs(scale: float, seed: int) -> tuple[Path, Path]:
    """The simulated release and interaction table of a scale, made on first use."""
    # keyed by the simulator's code and parameters too, so a changed simulator is re-run
    code = sorted((REPO / "kuairec_utils" / "simulate").glob("*.py"))
    key = hashlib.md5(
        b"".join(p.read_bytes() for p in code) + (REPO / "params.yaml").read_bytes()
    ).hexdigest()[:8]
    folder = OUT / f"sim_scale{scale:g}_seed{seed}_{key}"
    raw, interactions = folder / "raw", folder / "interactions.parquet"
    if not (raw / "KuaiRec 2.0" / "data" / "big_matrix.csv").exists():
        print(f"simulating scale {scale:g} into {folder} (once) ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "kuairec_utils.simulate", "--out", str(raw)]
        cmd += ["--scale", str(scale), "--seed", str(seed), "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True)
    if not interactions.exists():
        subprocess.run(
            [sys.executable, "-c", INTERACTIONS, str(raw), str(interactions)], check=True
        )
    return raw, interactions


def run(scale: float, seed: int) -> dict:
    raw, interactions = cached_inputs(scale, seed)
    out = subprocess.run(
        [sys.executable, "-c", FEATURES, str(raw), str(interactions)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.12, 1.0])
    parser.add_argument("--seed", type=int, default=20200705)
    parser.add_argument("--json", type=Path, help="also write the figures (a list) here")
    args = parser.parse_args()
    print(
        f"{'scale':>6} {'rows':>11} {'features':>8} {'read s':>7} {'build s':>8} {'write s':>8} "
        f"{'feature s':>9} {'rows/s':>9} {'peak MiB':>9}"
    )
    results = []
    for scale in args.scales:
        r = run(scale, args.seed)
        results.append({"scale": scale, **r})
        step = r["build_s"] + r["write_s"]
        print(
            f"{scale:>6g} {r['rows']:>11,} {r['features']:>8} {r['read_s']:>7.1f} "
            f"{r['build_s']:>8.1f} {r['write_s']:>8.1f} {step:>9.1f} {r['rows'] / step:>9,.0f} "
            f"{r['peak_rss_mib']:>9,.0f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
