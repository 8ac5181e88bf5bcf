"""What 04's notebooks do with a trained value model (docs/design.md section 5): save it the way
05 and 06 read it, describe its representations, and score it on warm and cold test rows.

A test row is *warm* when its video has at least one training interaction (an edge in the
training graph) and *cold* otherwise: about half the test rows, since the test days come after
the training days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kuairec_utils.models import build_value_model, save_value_model, training_adjacency
from kuairec_utils.models.edges import Dataset
from kuairec_utils.models.gcn import representation_summary, training_degree
from kuairec_utils.models.networks import ValueModel
from kuairec_utils.models.training import (
    TrainConfig,
    auc_by_head,
    fit,
    predict,
    save_predictions,
)


def training_degrees(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each user's and each video's number of neighbours in the training graph."""
    degree = training_degree(training_adjacency(data))
    return degree[: data.n_users], degree[data.n_users :]


def save_run(
    folder: str | Path,
    model: ValueModel,
    arch: str,
    data: Dataset,
    settings: Mapping[str, Any],
    history: pd.DataFrame,
) -> np.ndarray:
    """Weights and config, the training history (without wall seconds, so a rerun writes the
    same bytes), the final node representations (``embeddings.npz``, for 05 and 06) and the
    val and test predictions in ``folder``; returns the test predictions."""
    folder = Path(folder)
    save_value_model(folder, model, arch, data, **settings)
    history.drop(columns="seconds").to_csv(folder / "history.csv", index=False)
    user_emb, item_emb = model.node_embeddings()
    np.savez(
        folder / "embeddings.npz",
        user_id=data.user_ids,
        user=user_emb,
        video_id=data.item_ids,
        item=item_emb,
    )
    for split in ("val", "test"):
        p = predict(model, data.splits[split])
        save_predictions(folder / f"predictions_{split}.parquet", data.splits[split], p, split)
    return p


def representation_record(model: ValueModel, data: Dataset) -> dict[str, dict[str, float]]:
    """``representation_summary`` of the final representations of the users in the training
    graph, the warm videos (with their log degree) and the cold videos."""
    user_emb, item_emb = model.node_embeddings()
    user_degree, item_degree = training_degrees(data)
    warm, in_graph = item_degree > 0, user_degree > 0
    return {
        "users": representation_summary(user_emb[in_graph], user_degree[in_graph]),
        "warm_items": representation_summary(item_emb[warm], item_degree[warm]),
        "cold_items": representation_summary(item_emb[~warm]),
    }


def warm_cold_auc(data: Dataset, p: np.ndarray) -> dict[str, dict[str, float]]:
    """The test AUC per head and mean on the rows of warm and of cold videos."""
    test = data.splits["test"]
    warm = (training_degrees(data)[1] > 0)[test.item.numpy()]
    y = test.y.numpy()
    return {"warm": auc_by_head(y[warm], p[warm]), "cold": auc_by_head(y[~warm], p[~warm])}


def short_run(model: ValueModel, data: Dataset, cfg: TrainConfig) -> dict[str, float]:
    """Train ``model`` (seed torch first) and return its mean AUCs: validation (the best
    epoch's), test, test on warm and on cold rows; the best epoch and the epochs run."""
    result = fit(model, data, cfg, progress=False)
    with torch.no_grad():
        p = predict(result.model, data.splits["test"])
    test = auc_by_head(data.splits["test"].y.numpy(), p)
    split = warm_cold_auc(data, p)
    return {
        "val": result.val_auc["mean"],
        "test": test["mean"],
        "test_warm": split["warm"]["mean"],
        "test_cold": split["cold"]["mean"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
    }


# 04's ablation: each variant changes the taste model's settings (params.yaml taste) so; None is
# the edge MLP trained the same way (the reference every part is measured against)
ABLATION: dict[str, dict[str, Any] | None] = {
    "taste model": {},
    "no node features (free embeddings)": {
        "user_features": False,
        "item_features": False,
        "free_item_embedding": True,
    },
    "no free user embedding": {"free_user_embedding": False},
    "free video embedding added": {"free_item_embedding": True},
    "no propagation (K = 0)": {"n_layers": 0},
    "no taste term (concat into the MLP)": {"interaction": False},
    "tags pooled as in 02": {"tag_encoding": "pooled"},
    "edge MLP, same training": None,
}
ABLATION_SCORES = ("val", "test", "test_warm", "test_cold")


def ablation_runs(
    data: Dataset,
    nodes: Mapping[str, Any],
    settings: Mapping[str, Any],
    cfg: TrainConfig,
    seeds: list[int],
    variants: Mapping[str, Mapping[str, Any] | None] = ABLATION,
) -> pd.DataFrame:
    """One ``short_run`` per variant and seed (torch and the batch order seeded by it): the
    taste model with ``settings`` changed by the variant, or the edge MLP. ``nodes`` maps each
    tag encoding to its ``(NodeInputs, node settings)``; ``settings`` holds the taste section's
    model values and ``tag_encoding``."""
    rows = []
    for name, change in variants.items():
        for seed in seeds:
            torch.manual_seed(seed)
            if change is None:
                mlp = {"hidden": settings["mlp_hidden"], "dropout": settings["dropout"]}
                model = build_value_model("edge_mlp", data, **mlp)
            else:
                chosen = dict(settings) | dict(change)
                data.nodes, sizes = nodes[chosen.pop("tag_encoding")]
                model = build_value_model("taste", data, **sizes, **chosen)
            rows.append(
                {"variant": name, "seed": seed} | short_run(model, data, replace(cfg, seed=seed))
            )
    return pd.DataFrame(rows)


def ablation_summary(runs: pd.DataFrame, reference: str = "edge MLP, same training") -> dict:
    """Per variant: the mean and sd over seeds of each score, and the mean and sd of its
    difference from the reference variant on the same seed."""
    ref = runs[runs["variant"] == reference].set_index("seed")
    out = {}
    for name, rows in runs.groupby("variant", sort=False):
        rows = rows.set_index("seed")
        record = {"n_seeds": len(rows)}
        for score in ABLATION_SCORES:
            diff = rows[score] - ref[score].reindex(rows.index)
            record[score] = {"mean": rows[score].mean(), "sd": _sd(rows[score])}
            record[f"{score}_vs_edge_mlp"] = {"mean": diff.mean(), "sd": _sd(diff)}
        out[name] = record
    return out


def _sd(values: pd.Series) -> float | None:
    return float(values.std(ddof=1)) if len(values) > 1 else None
