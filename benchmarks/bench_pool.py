"""What the platform's pool log and the decomposition add to the default pipeline, part by part.

Run after ``dvc repro`` (it reads the default run's data, value models and 05-06 outputs)::

    .venv/bin/python benchmarks/bench_pool.py

- ``acquire``: simulating the default data with the pool log, then without it (same seed, in
  fresh processes; the log's size);
- ``data`` (01): reading and checking the log and tying it to 01's sessions;
- ``head_weights`` (05): the logged pools' candidate table and the value models' probabilities
  of the candidates the sampled set does not hold, for every value-model seed;
- ``decomposition``: the whole stage (``dvc repro -f -s``).

Target (the decomposition's): at most 60 s added to the default pipeline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SIMULATE = r"""
import json, sys, time
from kuairec_utils.config import load_params
from kuairec_utils.simulate import SimConfig, simulate
params = load_params()
params["simulate"]["candidate_pool"] = sys.argv[2] == "1"
tic = time.perf_counter()
simulate(sys.argv[1], SimConfig.from_params(params), params["seed"], progress=False)
print(json.dumps({"seconds": time.perf_counter() - tic}))
"""

MATCH = r"""
import json, sys, time
import pandas as pd
from kuairec_utils.data.pool import match_pool, pool_path, read_pool
tic = time.perf_counter()
path = pool_path(sys.argv[1])
logged = match_pool(read_pool(path), pd.read_parquet("data/interim/interactions.parquet"), path)
print(json.dumps({"seconds": time.perf_counter() - tic, "rows": len(logged)}))
"""

SCORE = r"""
import json, time
import numpy as np, pandas as pd
from kuairec_utils.config import load_params, resolve
from kuairec_utils.features import FeatureConfig, build_features, load_side_tables, read_manifest
from kuairec_utils.head_weights import feeds
from kuairec_utils.models import load_value_model
from kuairec_utils.models.dataset import load_processed
from kuairec_utils.models.runs import trained_seeds
params = load_params()
model, seeds = params["value_model"]["downstream"][0], params["value_model"]["seeds"]
interactions = pd.read_parquet("data/interim/interactions.parquet")
side, data = load_side_tables(resolve("data/raw")), load_processed(resolve("data/processed"), features=False)
sessions = feeds.session_feeds(feeds.downstream_interactions(
    interactions, params["value_model"]["downstream_users"], params["seed"]))
manifest = read_manifest(resolve("data/processed"))
cfg = FeatureConfig(**{k: manifest["params"][k] for k in FeatureConfig.__dataclass_fields__})
fitted = build_features(interactions, side, cfg, split_mode=manifest["params"]["split_mode"]).fitted
fixed = feeds.position_features("mean", resolve("data/processed"), data.feature_names)
models = [load_value_model(f, data) for f in trained_seeds(resolve("models"), model, seeds)]
caches = [resolve("models/head_weights") / model / f"seed_{s}" / "candidates.npz" for s in seeds]
sampled = np.load(caches[0])
tic = time.perf_counter()
items, valid, _ = feeds.logged_pool_table(
    sessions, data.item_ids, pd.read_parquet("data/interim/candidate_pool.parquet"))
feeds.pool_probabilities(
    {"items": sampled["items"], "valid": sampled["valid"]},
    [np.load(c)["probs"] for c in caches], items, valid,
    lambda some, mask: feeds.score_candidates(
        models, data, interactions, side, sessions, some, mask, cfg,
        manifest["params"]["split_mode"], max_rows=1_500_000, progress=False,
        fixed_features=fixed, fitted=fitted))
print(json.dumps({"seconds": time.perf_counter() - tic, "candidates": int(valid.sum())}))
"""


def child(code: str, *args: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        on = child(SIMULATE, f"{tmp}/on", "1")["seconds"]
        off = child(SIMULATE, f"{tmp}/off", "0")["seconds"]
        size = (Path(tmp) / "on/KuaiRec 2.0/data/candidate_pool.parquet").stat().st_size
        rows["acquire: the pool log"] = on - off
        matched = child(MATCH, f"{tmp}/on")
    rows["data (01): read, check, tie to the sessions"] = matched["seconds"]
    scored = child(SCORE)
    rows["head_weights (05): the logged pools' probabilities"] = scored["seconds"]
    tic = time.perf_counter()
    stage = subprocess.run(
        ["dvc", "repro", "-f", "-s", "decomposition@taste_h64"], cwd=ROOT, capture_output=True
    )
    if stage.returncode != 0:
        raise SystemExit(stage.stderr.decode()[-3000:])
    rows["decomposition (the stage)"] = time.perf_counter() - tic
    print(
        f"pool log: {size / 1e6:.1f} MB; 01's pools: {matched['rows']:,} rows; "
        f"05 scores {scored['candidates']:,} logged candidates (some copied from the sample)"
    )
    print("| part | seconds |\n|---|---:|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"| added to the pipeline | {sum(rows.values()):.1f} |")


if __name__ == "__main__":
    main()
