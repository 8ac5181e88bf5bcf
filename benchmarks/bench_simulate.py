"""Benchmark the simulated KuaiRec platform: rows per second and peak memory by scale.

Each scale runs in a fresh Python process (so its peak resident memory is its own) and writes a
complete release with ground truth to a temporary folder, removed afterwards::

    .venv/bin/python benchmarks/bench_simulate.py                 # scales 0.1 and 1.0
    .venv/bin/python benchmarks/bench_simulate.py --scales 0.05 0.12 1.0 --calibration

Target: the full 12.5M rows (scale 1.0) in at most 5 minutes on a 2-core machine, within 16 GB.
With ``--calibration`` each scale's release is also held against the published statistics (the
big matrix's 23, the small matrix's 9), after the timing: the statistics outside their
tolerance are printed by name.
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
if sys.argv[3] == "1":
    from kuairec_utils.config import kuairec_data_dir
    from kuairec_utils.data.kuairec import read_table
    from kuairec_utils.simulate.calibration import calibration_table, small_calibration_table
    data = kuairec_data_dir(sys.argv[1])
    for name, table in (
        ("big", calibration_table(read_table(data, "big_matrix"))),
        ("small", small_calibration_table(read_table(data, "small_matrix"))),
    ):
        summary[f"{name}_within"] = f"{int(table['within'].sum())}/{len(table)}"
        summary[f"{name}_outside"] = {
            k: round(float(v), 4) for k, v in table.loc[~table["within"], "data"].items()
        }
print(json.dumps(summary))
"""


def run(scale: float, calibration: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, f"{tmp}/raw", str(scale), str(int(calibration))],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--json", type=Path, help="also write the figures (a list) here")
    parser.add_argument("--calibration", action="store_true", help="check the statistics too")
    args = parser.parse_args()
    print(
        f"{'scale':>6} {'users':>6} {'videos':>7} {'big rows':>11} {'small rows':>10} "
        f"{'wall s':>7} {'rows/s':>9} {'peak MiB':>9}"
    )
    results = []
    for scale in args.scales:
        r = run(scale, args.calibration)
        results.append({"scale": scale, **r})
        print(
            f"{scale:>6} {r['users']:>6} {r['videos']:>7} {r['big_matrix_rows']:>11,} "
            f"{r['small_matrix_rows']:>10,} {r['wall_s']:>7.1f} "
            f"{r['big_matrix_rows'] / r['wall_s']:>9,.0f} {r['peak_rss_mib']:>9,.0f}"
        )
        for name in ("big", "small") if args.calibration else ():
            print(
                f"{'':>6} {name} matrix: {r[name + '_within']} within tolerance; outside: "
                f"{r[name + '_outside'] or 'none'}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
