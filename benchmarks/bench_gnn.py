"""Time to accuracy of the GNN's training: a naive PyG loop against the project's training.

On the default data set (``data/processed`` from ``make repro``) at H = 64, in the same run:

(a) the naive loop: three PyG ``GCNConv`` layers over the training graph, full batch, the edge
    MLP over *all* training edges, one optimizer step per pass, 30 passes;
(b) the project's training (``kuairec_utils.models``: full-graph propagation with a symmetric
    sparse product, mini-batches of supervision edges, the learning rate's schedule; batch size,
    learning rate, schedule and its length in epochs from params.yaml's ``gnn`` section).

Both are evaluated on the validation split (mean AUC over the four heads) after every pass, and
for (b) every ``--eval-every`` steps; evaluation time is not counted. The script prints the
training wall time each needs to reach the naive loop's best validation mean AUC, and the ratio
(target: at most 0.5)::

    .venv/bin/python benchmarks/bench_gnn.py [--processed data/processed] [--passes 30]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import GCNConv

from kuairec_utils.config import PROCESSED_DIR, load_params
from kuairec_utils.models.dataset import Dataset, load_processed
from kuairec_utils.models.gcn import GCNValueModel, normalized_adjacency
from kuairec_utils.models.networks import edge_mlp
from kuairec_utils.models.training import SCHEDULES, auc_by_head, scheduled_lr

HIDDEN = 64


class NaiveGCN(nn.Module):
    """Three GCNConv layers, full batch, then the edge MLP: the textbook PyG model."""

    def __init__(self, n_users: int, n_items: int, n_features: int) -> None:
        super().__init__()
        self.n_users = n_users
        self.embedding = nn.Embedding(n_users + n_items, HIDDEN)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.convs = nn.ModuleList(GCNConv(HIDDEN, HIDDEN, bias=False) for _ in range(3))
        self.mlp = edge_mlp(2 * HIDDEN + n_features)

    def forward(
        self, edge_index: torch.Tensor, x: torch.Tensor, u: torch.Tensor, i: torch.Tensor
    ) -> torch.Tensor:
        h = self.embedding.weight
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index))
        return self.mlp(torch.cat([h[u], h[self.n_users + i], x], dim=1))


def val_auc(logits_fn, data: Dataset) -> float:
    val = data.splits["val"]
    with torch.no_grad():
        p = torch.sigmoid(logits_fn(val)).numpy()
    return auc_by_head(val.y.numpy(), p)["mean"]


def naive(data: Dataset, passes: int, lr: float) -> list[tuple[float, float]]:
    """(cumulative training seconds, validation mean AUC) after each pass."""
    train = data.splits["train"]
    pairs = torch.unique(torch.stack([train.user, train.item + data.n_users]), dim=1)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    torch.manual_seed(0)
    model = NaiveGCN(data.n_users, data.n_items, len(data.feature_names))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    clock, curve = 0.0, []
    for _ in range(passes):
        tic = time.perf_counter()
        model.train()
        loss = loss_fn(model(edge_index, train.x, train.user, train.item), train.y).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock += time.perf_counter() - tic
        model.eval()
        curve.append((clock, val_auc(lambda e: model(edge_index, e.x, e.user, e.item), data)))
        print(
            f"  naive pass {len(curve):>2}: {clock:6.1f} s, val mean AUC {curve[-1][1]:.4f}",
            flush=True,
        )
    return curve


def project(
    data: Dataset,
    target: float,
    batch_size: int,
    lr: float,
    schedule: str,
    epochs: int,
    eval_every: int,
    budget_s: float,
) -> list[tuple[float, float]]:
    """The project's training until it reaches ``target`` (or the time budget runs out); the
    learning rate follows ``schedule`` over ``epochs`` as in ``models.fit``."""
    train = data.splits["train"]
    adj = normalized_adjacency(train.user, train.item, data.n_users, data.n_items)
    torch.manual_seed(0)
    model = GCNValueModel(data.n_users, data.n_items, len(data.feature_names), adj, hidden=HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    generator = torch.Generator().manual_seed(0)
    clock, curve, step = 0.0, [], 0
    total_steps = epochs * len(range(0, len(train), batch_size))
    while clock < budget_s:
        order = torch.randperm(len(train), generator=generator)
        for lo in range(0, len(train), batch_size):
            tic = time.perf_counter()
            model.train()
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(lr, schedule, step, total_steps)
            idx = order[lo : lo + batch_size]
            loss = (
                loss_fn(model(train.x[idx], train.user[idx], train.item[idx]), train.y[idx])
                .sum(1)
                .mean()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            clock += time.perf_counter() - tic
            step += 1
            if step % eval_every == 0:
                model.eval()
                with torch.no_grad():
                    h = model.propagate()
                auc = val_auc(lambda e, h=h: model.score_edges(h, e.x, e.user, e.item), data)
                curve.append((clock, auc))
                print(
                    f"  project step {step:>4}: {clock:6.1f} s, val mean AUC {auc:.4f}", flush=True
                )
                if auc >= target or clock >= budget_s:
                    return curve
    return curve


def time_to(curve: list[tuple[float, float]], target: float) -> float:
    return next((t for t, auc in curve if auc >= target), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processed", type=Path, default=PROCESSED_DIR)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--naive-lr", type=float, default=0.01)
    gnn = load_params()["gnn"]
    parser.add_argument("--batch-size", type=int, default=gnn["batch_size"])
    parser.add_argument("--lr", type=float, default=gnn["lr"])
    parser.add_argument("--schedule", choices=SCHEDULES, default=gnn["schedule"])
    parser.add_argument("--epochs", type=int, default=gnn["epochs"], help="the schedule's length")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (args.processed / "features.json").exists():
        raise SystemExit(f"{args.processed}: no features.json; run `make repro` first")
    data = load_processed(args.processed)
    print(
        f"{len(data.splits['train']):,} training edges, {data.n_users:,} users, {data.n_items:,} items, H = {HIDDEN}"
    )
    print("(a) naive PyG loop")
    naive_curve = naive(data, args.passes, args.naive_lr)
    target = max(auc for _, auc in naive_curve)
    naive_s = time_to(naive_curve, target)
    print(f"(b) project training, until validation mean AUC >= {target:.4f}")
    ours = project(
        data,
        target,
        args.batch_size,
        args.lr,
        args.schedule,
        args.epochs,
        args.eval_every,
        budget_s=max(2 * naive_s, 60),
    )
    ours_s = time_to(ours, target)
    print()
    print(f"{'':<22}{'train s to target':>18}{'best val AUC':>14}")
    print(f"{'naive PyG loop':<22}{naive_s:>18.1f}{target:>14.4f}")
    print(f"{'project training':<22}{ours_s:>18.1f}{max(a for _, a in ours):>14.4f}")
    print(f"ratio (project / naive): {ours_s / naive_s:.3f}   (target: at most 0.5)")
    if args.json:
        figures = {"target_auc": target, "naive_s": naive_s, "project_s": ours_s}
        args.json.write_text(json.dumps(figures | {"ratio": ours_s / naive_s}, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
