"""Time per training epoch of the value models at a given scale (default 1.0).

The simulated release and its interaction table come from ``bench_features.py``'s cache
(``benchmarks/out/``, made on first use); the features (02's ``build_features``) are built once
into the same folder. Then one fresh process per model trains one epoch with the settings of
``params.yaml`` (the taste model: ``taste``; the study's GCN: ``gnn`` at H = 64; the edge MLP:
``baselines``) and prints the epoch's wall time (training steps and the validation AUC) and its
peak memory::

    .venv/bin/python benchmarks/bench_taste.py [--scale 1.0] [--models taste gcn edge_mlp]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import cached_inputs

PROCESS = r"""
import sys
import pandas as pd
from kuairec_utils.features import FeatureConfig, build_features, load_side_tables, write_processed
frame = pd.read_parquet(sys.argv[2])
write_processed(build_features(frame, load_side_tables(sys.argv[1]), FeatureConfig()), sys.argv[3])
"""

EPOCH = r"""
import json, resource, sys, time
import torch
from kuairec_utils.config import load_params
from kuairec_utils.models import build_value_model
from kuairec_utils.models.dataset import load_processed
from kuairec_utils.models.taste import node_settings
from kuairec_utils.models.training import TrainConfig, fit
raw, processed, arch = sys.argv[1], sys.argv[2], sys.argv[3]
params = load_params()
data = load_processed(processed)
section = {"taste": "taste", "gcn": "gnn", "edge_mlp": "baselines"}[arch]
p = params[section]
if arch == "taste":
    settings = node_settings(data, processed, raw) | {
        k: p[k] for k in ("hidden", "n_layers", "mlp_hidden", "dropout", "user_features",
                          "free_user_embedding", "item_features", "free_item_embedding",
                          "interaction")
    }
elif arch == "gcn":
    settings = {"hidden": 64, "n_layers": p["n_layers"], "mlp_hidden": p["mlp_hidden"],
                "dropout": p["dropout"]}
else:
    settings = {"hidden": p["mlp_hidden"], "dropout": p["dropout"]}
cfg = TrainConfig(epochs=1, batch_size=p["batch_size"], lr=p["lr"], patience=1, seed=0,
                  device="cpu", schedule=p["schedule"])
torch.manual_seed(0)
model = build_value_model(arch, data, **settings)
tic = time.perf_counter()
result = fit(model, data, cfg, progress=False)
print(json.dumps({
    "model": arch, "train_rows": len(data.splits["train"]), "epoch_s": time.perf_counter() - tic,
    "val_auc_mean": result.val_auc["mean"],
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=20200705)
    parser.add_argument("--models", nargs="+", default=["taste", "gcn", "edge_mlp"])
    parser.add_argument("--json", type=Path, help="also write the figures (a list) here")
    args = parser.parse_args()
    raw, interactions = cached_inputs(args.scale, args.seed)
    processed = interactions.parent / "processed"
    if not (processed / "features.json").exists():
        print(f"building the features into {processed} (once) ...", file=sys.stderr)
        cmd = [sys.executable, "-c", PROCESS, str(raw), str(interactions), str(processed)]
        subprocess.run(cmd, check=True)
    results = []
    for arch in args.models:
        out = subprocess.run(
            [sys.executable, "-c", EPOCH, str(raw), str(processed), arch],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'model':>9} {'train rows':>11} {'s / epoch':>10} {'val AUC':>8} {'peak MiB':>9}")
    for r in results:
        print(
            f"{r['model']:>9} {r['train_rows']:>11,} {r['epoch_s']:>10.1f} "
            f"{r['val_auc_mean']:>8.4f} {r['peak_rss_mib']:>9,.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
