"""Benchmark the simulated KuaiRec platform: rows per second and peak memory by scale.

Each scale runs in a fresh Python process (so its peak resident memory is its own) and writes a
complete release with ground truth to a temporary folder, removed afterwards::

    .venv/bin/python benchmarks/bench_simulate.py                 # scales 0.1 and 1.0
    .venv/bin/python benchmarks/bench_simulate.py --scales 0.05

Target (issue 3): the full 12.5M rows (scale 1.0) in at most 5 minutes on a 2-core machine,
within 16 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from kuairec_utils.config import load_params
from kuairec_utils.simulate import SimConfig, simulate
params = load_params()
tic = time.perf_counter()
summary = simulate(sys.argv[1], SimConfig.from_params(params, scale=float(sys.argv[2])),
                   params["seed"], progress=False)
summary["wall_s"] = time.perf_counter() - tic
summary["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(summary))
"""


def run(scale: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, f"{tmp}/raw", str(scale)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--json", type=Path, help="also write the figures (a list) here")
    args = parser.parse_args()
    print(
        f"{'scale':>6} {'users':>6} {'videos':>7} {'big rows':>11} {'small rows':>10} "
        f"{'wall s':>7} {'rows/s':>9} {'peak MiB':>9}"
    )
    results = []
    for scale in args.scales:
        r = run(scale)
        results.append({"scale": scale, **r})
        print(
            f"{scale:>6} {r['users']:>6} {r['videos']:>7} {r['big_matrix_rows']:>11,} "
            f"{r['small_matrix_rows']:>10,} {r['wall_s']:>7.1f} "
            f"{r['big_matrix_rows'] / r['wall_s']:>9,.0f} {r['peak_rss_mib']:>9,.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
