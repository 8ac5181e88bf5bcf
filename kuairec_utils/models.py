"""The value models of the study (DESIGN.md section 5) and their training.

- ``LogisticRegression``: one linear layer from the interaction's feature vector to four logits.
- ``EdgeMLP``: three layers (hidden 128, ReLU) from the feature vector to four logits.
- ``GCNValueModel``: learnable user and item embeddings of size H, three GCN layers
  ``h(l+1) = ReLU(A_hat h(l) W(l))`` with ``A_hat = D^-1/2 (A + I) D^-1/2`` over the user-item graph
  of *training* interactions, then the same edge MLP on ``[h_user, h_item, edge features]``.

All predict the four heads (complete, long, rewatch, negative) with the summed binary
cross-entropy, are trained with Adam on mini-batches of supervision edges (the GCN propagates the
full graph once per step: KuaiRec fits on one machine), with the learning rate decaying along a
cosine from ``lr`` to zero over the ``epochs`` (``schedule: cosine``; ``constant`` keeps it),
early-stop on the validation mean AUC and run on CPU or CUDA (``device: auto``). Scaling beyond one machine means swapping the full-graph propagation
for PyG's neighbour sampling (``NeighborLoader``) and the loop for DDP: the model's interface
(``propagate`` then ``score_edges``) stays.
"""

from __future__ import annotations

import copy
import ctypes
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from kuairec_utils.heads import HEADS
from kuairec_utils.sessions import SPLITS

# --------------------------------------------------------------------------------------------
# Data


@dataclass
class EdgeSet:
    """One split's supervision edges: features, labels and the graph's node indices."""

    x: torch.Tensor  # (n, n_features) float32
    y: torch.Tensor  # (n, 4) float32, HEADS order
    user: torch.Tensor  # (n,) long: index into the user nodes
    item: torch.Tensor  # (n,) long: index into the item nodes
    raw_row: np.ndarray  # (n,) key back to big_matrix.csv (and the ground truth)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> EdgeSet:
        return EdgeSet(
            self.x.to(device),
            self.y.to(device),
            self.user.to(device),
            self.item.to(device),
            self.raw_row,
        )


@dataclass
class Dataset:
    """The three splits over one node numbering (users and items seen in any split)."""

    splits: dict[str, EdgeSet]
    feature_names: list[str]
    user_ids: np.ndarray  # node index -> user_id
    item_ids: np.ndarray  # node index -> video_id

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def load_processed(processed_dir: str | Path, features: bool = True) -> Dataset:
    """Read ``data/processed/{train,val,test}.parquet`` and the feature manifest.

    ``features=False`` reads no feature column (every split's ``x`` is ``(n, 0)``): the graph,
    the labels and the node numbering, for a stage that scores new rows rather than these (05;
    at scale 1.0 the features are 6.6 GB, twice that while they are read).
    """
    processed_dir = Path(processed_dir)
    manifest = json.loads((processed_dir / "features.json").read_text())
    names = [f["name"] for f in manifest["features"]]
    columns = None if features else ["raw_row", "user_id", "video_id", *HEADS]
    frames = {s: pd.read_parquet(processed_dir / f"{s}.parquet", columns=columns) for s in SPLITS}
    user_ids = np.unique(np.concatenate([f["user_id"].to_numpy() for f in frames.values()]))
    item_ids = np.unique(np.concatenate([f["video_id"].to_numpy() for f in frames.values()]))
    splits = {}
    for split, frame in frames.items():
        splits[split] = EdgeSet(
            x=torch.from_numpy(frame[names].to_numpy(np.float32, copy=True))
            if features
            else torch.empty((len(frame), 0)),
            y=torch.from_numpy(frame[list(HEADS)].to_numpy(np.float32, copy=True)),
            user=torch.from_numpy(np.searchsorted(user_ids, frame["user_id"].to_numpy())),
            item=torch.from_numpy(np.searchsorted(item_ids, frame["video_id"].to_numpy())),
            raw_row=frame["raw_row"].to_numpy(),
        )
    return Dataset(splits, names, user_ids, item_ids)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu`` / ``cuda`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


# --------------------------------------------------------------------------------------------
# Models


MKL_CBWR_STRICT = 0x10000  # MKL's flag for bitwise reproducibility regardless of alignment
MKL_CBWR_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 10: "AVX2", 12: "AVX512"}


def mkl_reproducibility() -> str | None:
    """The reproducibility mode MKL (torch's CPU BLAS) runs in, e.g. ``"AUTO,STRICT"`` (see
    ``kuairec_utils/__init__.py``), read from the library itself; None when torch is not built
    with MKL. ``"OFF"``: MKL may take a different code path from one process to the next."""
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    mode = get(-1)  # MKL_CBWR_ALL
    branch = MKL_CBWR_BRANCHES.get(mode & 0xFFFF, f"branch {mode & 0xFFFF}")
    return branch + (",STRICT" if mode & MKL_CBWR_STRICT else "")


class LogisticRegression(nn.Module):
    """Four logits, linear in the interaction's features."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, len(HEADS))

    def forward(self, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def edge_mlp(n_inputs: int, hidden: int = 128, dropout: float = 0.0) -> nn.Sequential:
    """The study's 3-layer edge MLP: inputs -> hidden -> hidden -> four logits."""
    return nn.Sequential(
        nn.Linear(n_inputs, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, len(HEADS)),
    )


class EdgeMLP(nn.Module):
    """Four logits from the interaction's features through the 3-layer edge MLP."""

    def __init__(self, n_features: int, hidden: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = edge_mlp(n_features, hidden, dropout)

    def forward(self, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def normalized_adjacency(
    user: torch.Tensor, item: torch.Tensor, n_users: int, n_items: int
) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of the bipartite user-item graph, as a sparse CSR matrix.

    Nodes are the users (0..n_users-1) then the items; an edge joins a user and an item that
    interacted at least once (repeats count once); the self-loops are the ``+ I``.
    """
    n = n_users + n_items
    pairs = torch.unique(torch.stack([user, item + n_users]), dim=1)
    loops = torch.arange(n, device=user.device)
    rows = torch.cat([pairs[0], pairs[1], loops])
    cols = torch.cat([pairs[1], pairs[0], loops])
    degree = torch.bincount(rows, minlength=n).to(torch.float32)
    inv_sqrt = degree.pow(-0.5)
    values = inv_sqrt[rows] * inv_sqrt[cols]
    adj = torch.sparse_coo_tensor(
        torch.stack([rows, cols]), values, (n, n), check_invariants=False
    ).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is enough here
        warnings.simplefilter("ignore", UserWarning)
        csr = adj.to_sparse_csr()
        if csr.values().numel() >= 2**31:
            return csr
        # int32 indices: the product is the same, but the CPU kernel no longer converts the
        # int64 indices on every call (six products a training step; 15% faster each)
        return torch.sparse_csr_tensor(
            csr.crow_indices().to(torch.int32),
            csr.col_indices().to(torch.int32),
            csr.values(),
            csr.shape,
            check_invariants=False,
        )


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse ``A``, whose backward is ``A @ grad`` (no transpose:
    torch's generic sparse backward transposes ``A`` on every step, ten times slower here)."""

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.adjacency, grad)


class GCNValueModel(nn.Module):
    """Embeddings, three GCN layers over the training graph, then the edge MLP."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_features: int,
        adjacency: torch.Tensor,
        hidden: int = 64,
        mlp_hidden: int = 128,
        n_layers: int = 3,
        dropout: float = 0.0,
        layer_mix: str = "last",
        product: bool = False,
    ) -> None:
        super().__init__()
        if layer_mix not in ("last", "mean"):
            raise ValueError(f"layer_mix must be 'last' or 'mean', got {layer_mix!r}")
        self.n_users, self.n_items = n_users, n_items
        self.layer_mix, self.product = layer_mix, product
        self.embedding = nn.Embedding(n_users + n_items, hidden)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(n_layers))
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.mlp = edge_mlp((3 if product else 2) * hidden + n_features, mlp_hidden, dropout)

    def propagate(self) -> torch.Tensor:
        """Node representations after the GCN layers, (n_users + n_items, hidden)."""
        h = self.embedding.weight
        states = [h]
        for layer in self.layers:
            h = torch.relu(_SymmetricSpMM.apply(self.adjacency, layer(h)))
            states.append(h)
        return h if self.layer_mix == "last" else torch.stack(states).mean(dim=0)

    def score_edges(
        self, h: torch.Tensor, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        """Four logits per edge from the propagated nodes and the edge features.

        ``index_select`` rather than ``h[user]``: the backward of advanced indexing scatter-adds
        the gradients of repeated nodes in thread order on the CPU, so two runs differed in the
        last bits; ``index_select``'s backward (``index_add``) does not."""
        hu = torch.index_select(h, 0, user)
        hi = torch.index_select(h, 0, self.n_users + item)
        parts = [hu, hi, hu * hi, x] if self.product else [hu, hi, x]
        return self.mlp(torch.cat(parts, dim=1))

    def forward(self, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.score_edges(self.propagate(), x, user, item)

    def node_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """The final user and item representations (after propagation)."""
        with torch.no_grad():
            h = self.propagate().cpu().numpy()
        return h[: self.n_users], h[self.n_users :]


def training_degree(adjacency: torch.Tensor) -> np.ndarray:
    """Each node's number of neighbours in the training graph (its self-loop not counted): 0 for
    a node, such as a video first shown after the training days, that only the self-loop
    reaches."""
    return torch.diff(adjacency.crow_indices()).cpu().numpy().astype(np.int64) - 1


def representation_summary(h: np.ndarray, degree: np.ndarray | None = None) -> dict[str, float]:
    """How much a set of node representations (n, H) can tell the nodes apart.

    - ``dead_dims``: dimensions that are zero on every node (ReLU units that never fire);
    - ``effective_rank``: exp of the entropy of the normalised singular values of the centred
      representations (Roy and Vetterli, 2007): 1 when the nodes lie on one line, H when they
      spread evenly over all H dimensions;
    - ``first_share``: the share of the centred variance along the first principal direction;
    - ``corr_log_degree`` (with ``degree``, every entry at least 1, not all equal): the absolute
      correlation of the nodes' coordinate along that direction with their log degree in the
      training graph.

    Fewer than two nodes: only ``n``; all nodes equal: no direction, effective rank 0.
    """
    h = np.asarray(h, dtype=np.float64)
    out: dict[str, float] = {"n": int(len(h))}
    if len(h) < 2:
        return out
    centred = h - h.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    out["dead_dims"] = int((np.abs(h).max(axis=0) == 0).sum())
    if sv[0] == 0:  # every node the same: one point, no direction
        return out | {"effective_rank": 0.0}
    p = sv[sv > 0] / sv.sum()
    out["effective_rank"] = float(np.exp(-(p * np.log(p)).sum()))
    out["first_share"] = float(sv[0] ** 2 / (sv**2).sum())
    if degree is not None:
        degree = np.asarray(degree)
        if degree.shape != (len(h),) or degree.min() < 1:
            raise ValueError("degree must hold one count of at least 1 per node")
        if degree.min() < degree.max():
            first = centred @ vt[0]
            out["corr_log_degree"] = float(abs(np.corrcoef(first, np.log(degree))[0, 1]))
    return out


# --------------------------------------------------------------------------------------------
# Training and evaluation


SCHEDULES: tuple[str, ...] = ("cosine", "constant")


def scheduled_lr(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of a run of ``total_steps``.

    ``constant``: ``lr`` throughout. ``cosine``: ``lr * (1 + cos(pi * step / total_steps)) / 2``,
    from ``lr`` at the first step down to (almost) zero at the last (Loshchilov and Hutter's
    SGDR, without restarts). A run early-stopped before its last epoch ends where the curve is.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    if schedule == "constant":
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


@dataclass
class TrainConfig:
    """How a model is trained; each field is a notebook parameter of 03_baselines / 04_gnn."""

    epochs: int = 20  # length of the schedule; early stopping may end sooner
    batch_size: int = 4096  # supervision edges per optimizer step
    lr: float = 1e-3  # Adam's (peak) learning rate
    weight_decay: float = 0.0  # Adam weight decay
    patience: int = 3  # epochs without a better validation mean AUC before stopping
    seed: int = 0  # model initialisation and batch order
    device: str = "auto"  # auto | cpu | cuda
    schedule: str = "cosine"  # cosine: lr decays to zero over the epochs | constant

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        pick_device(self.device)


def roc_auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the positive ``labels`` (nonzero), ties counted as one half: the
    Mann-Whitney statistic from average ranks (what sklearn's ``roc_auc_score`` computes, in one
    sort; NaN when one class is absent)."""
    positive = np.asarray(labels) != 0
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    score = np.asarray(score)
    if np.isnan(score).any():
        raise ValueError("roc_auc: the scores contain NaN")
    order = np.argsort(score, kind="stable")
    s = score[order]
    bounds = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1, len(s)]  # runs of tied scores
    ranks = np.repeat((bounds[:-1] + bounds[1:] + 1) / 2, np.diff(bounds))  # 1-based average
    rank_sum = float(ranks[positive[order]].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_by_head(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC of each head and their mean (a head with one class only is NaN)."""
    out = {}
    for j, head in enumerate(HEADS):
        out[head] = roc_auc(y[:, j], p[:, j])
    out["mean"] = float(np.mean([out[h] for h in HEADS]))
    return out


def _forward_all(
    model: nn.Module, edges: EdgeSet, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Logits of every edge of a split, in chunks (one propagation for a GCN)."""
    model.eval()
    chunks = []
    with torch.no_grad():
        h = model.propagate() if isinstance(model, GCNValueModel) else None
        for lo in range(0, len(edges), batch_size):
            sl = slice(lo, lo + batch_size)
            x, u, i = (t[sl].to(device) for t in (edges.x, edges.user, edges.item))
            logits = model.score_edges(h, x, u, i) if h is not None else model(x, u, i)
            chunks.append(logits.cpu())
    return torch.cat(chunks)


def predict(model: nn.Module, edges: EdgeSet, batch_size: int = 65536) -> np.ndarray:
    """Predicted probabilities of the four heads, (n, 4)."""
    device = next(model.parameters()).device
    return torch.sigmoid(_forward_all(model, edges, batch_size, device)).numpy()


@dataclass
class TrainResult:
    """What ``fit`` returns: the best model (by validation mean AUC) and the history."""

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    val_auc: dict[str, float]
    seconds: float


def fit(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train with Adam on shuffled mini-batches of training edges, the learning rate following
    ``cfg.schedule`` over ``cfg.epochs``; evaluate the validation mean AUC after every epoch;
    keep the best state; stop after ``patience`` epochs without gain."""
    cfg.validate()
    device = pick_device(cfg.device)
    mode = mkl_reproducibility() if device.type == "cpu" else None
    if mode is not None and not mode.endswith("STRICT"):
        warnings.warn(
            f"MKL runs in reproducibility mode {mode!r}, not STRICT (a torch computation ran "
            "before kuairec_utils was imported, or MKL_CBWR was exported without STRICT): the "
            "same seed may train a model that differs in the last bits between processes",
            stacklevel=2,
        )
    model.to(device)
    train = data.splits["train"].to(device)
    val = data.splits["val"]
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    is_gcn = isinstance(model, GCNValueModel)
    history: list[dict[str, float]] = []
    best = (-np.inf, 0, copy.deepcopy(model.state_dict()), {})
    stale = 0
    batches = range(0, len(train), cfg.batch_size)
    total_steps, step = cfg.epochs * len(batches), 0
    tic = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        total, steps = 0.0, 0
        for lo in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress):
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(cfg.lr, cfg.schedule, step, total_steps)
            step += 1
            idx = order[lo : lo + cfg.batch_size]
            logits = model(train.x[idx], train.user[idx], train.item[idx])
            # summed binary cross-entropy over the four heads, mean over the batch
            loss = loss_fn(logits, train.y[idx]).sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        val_p = torch.sigmoid(_forward_all(model, val, 65536, device)).numpy()
        val_auc = auc_by_head(val.y.numpy(), val_p)
        record = {"epoch": epoch, "train_loss": total / steps, "seconds": time.perf_counter() - tic}
        record |= {f"val_auc_{k}": v for k, v in val_auc.items()}
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if progress:
            tqdm.write(
                f"epoch {epoch}: train loss {record['train_loss']:.4f}, "
                f"val mean AUC {val_auc['mean']:.4f}" + (" (GCN)" if is_gcn else "")
            )
        if val_auc["mean"] > best[0]:
            best = (val_auc["mean"], epoch, copy.deepcopy(model.state_dict()), val_auc)
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best[2])
    return TrainResult(model, history, best[1], best[3], time.perf_counter() - tic)


def auc_record(
    model_name: str, test_auc: Mapping[str, float], val_auc: Mapping[str, float], **extra: Any
) -> dict[str, Any]:
    """The metrics contract of DESIGN.md section 3 (``metrics/auc_<model>.json``)."""
    keys = [*HEADS, "mean"]
    return {
        "model": model_name,
        "test_auc": {k: float(test_auc[k]) for k in keys},
        "val_auc": {k: float(val_auc[k]) for k in keys},
        **extra,
    }


def save_predictions(path: str | Path, edges: EdgeSet, p: np.ndarray, split: str) -> None:
    """Predicted head probabilities keyed by raw_row, for later stages and the report."""
    frame = pd.DataFrame({"raw_row": edges.raw_row, "split": split})
    for j, head in enumerate(HEADS):
        frame[f"p_{head}"] = p[:, j].astype(np.float32)
    frame.to_parquet(path, index=False)
