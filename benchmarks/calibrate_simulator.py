"""Re-make the simulator's calibration (docs/design.md section 8) and print the chosen constants.

``kuairec_utils.simulate.calibrate`` fits the spreads of the utility and the outcome constants
to the big and the small matrix's watch-ratio marginals and to the oracle AUC that puts the
pipeline's logistic regression and edge MLP at the study's AUCs, in rounds: each round trains
the two baselines on a simulation at the default scale to measure where the pipeline's AUC lies
against the oracle's. Everything runs on the development seed (``--seed``), never on the data's
default seed, on which ``make repro`` then reports the result::

    .venv/bin/python benchmarks/calibrate_simulator.py            # about 35 min on 2 cores
    .venv/bin/python benchmarks/calibrate_simulator.py --rounds 0 # the current constants only

The last round's constants are printed as the lines of params.yaml's ``simulate`` section.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kuairec_utils.config import load_params
from kuairec_utils.simulate import calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="development seed (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="fits after the start (default 3)")
    parser.add_argument("--evaluations", type=int, default=80, help="simulations per fit")
    parser.add_argument("--json", type=Path, help="also write the rounds here")
    args = parser.parse_args()
    params = load_params()

    def log(record: dict) -> None:
        gaps = ", ".join(f"{m} {g:+.4f}" for m, g in record["auc_gap"].items())
        print(
            f"round {record['round']}: big {record['within'][0]}/23, small "
            f"{record['within'][1]}/9, oracle AUC {record['oracle_auc']:.4f}, AUC gaps {gaps}",
            flush=True,
        )

    records = calibrate.calibrate(
        params, args.seed, rounds=args.rounds, max_evaluations=args.evaluations, log=log
    )
    final = calibrate.with_settings(params, records[-1]["settings"])["simulate"]
    print("\nparams.yaml, section simulate:")
    for name in [c for n in calibrate.FITTED for c in calibrate.SPREADS.get(n, (n,))]:
        print(f"  {name}: {final[name]}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1, default=float))


if __name__ == "__main__":
    main()
