"""Training and evaluation of every value model: the device, MKL's reproducible mode, the
learning rate's schedule, mini-batch training with early stopping, AUCs, predictions."""

from __future__ import annotations

import copy
import ctypes
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
from kuairec_utils.models.dataset import Dataset, EdgeSet
from kuairec_utils.models.networks import ValueModel
from kuairec_utils.names import SCHEDULES


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu`` / ``cuda`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


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
    # None: every step takes batch_size edges; else the batch grows where an epoch would take
    # more steps than this (a graph model propagates its whole graph once per step)
    max_steps_per_epoch: int | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        steps = self.max_steps_per_epoch
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(f"max_steps_per_epoch must be a positive integer, got {steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        pick_device(self.device)


def epoch_batch_size(n_edges: int, cfg: TrainConfig) -> int:
    """The supervision edges of one step: ``cfg.batch_size``, or more where an epoch of that
    batch would take more than ``cfg.max_steps_per_epoch`` steps. A graph model propagates its
    whole graph once per step, so on a larger data set the steps, and that cost, stay the same;
    on the default data the cap is not reached and the batch is ``batch_size``."""
    if cfg.max_steps_per_epoch is None:
        return cfg.batch_size
    return max(cfg.batch_size, -(-n_edges // cfg.max_steps_per_epoch))


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
    model: ValueModel, edges: EdgeSet, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Logits of every edge of a split, in chunks (one propagation for a GCN)."""
    model.eval()
    chunks = []
    with torch.no_grad():
        h = model.propagate()
        for lo in range(0, len(edges), batch_size):
            sl = slice(lo, lo + batch_size)
            x, u, i = (t[sl].to(device) for t in (edges.x, edges.user, edges.item))
            logits = model.score_edges(h, x, u, i)
            chunks.append(logits.cpu())
    return torch.cat(chunks)


def predict(model: ValueModel, edges: EdgeSet, batch_size: int = 65536) -> np.ndarray:
    """Predicted probabilities of the four heads, (n, 4)."""
    device = next(model.parameters()).device
    return torch.sigmoid(_forward_all(model, edges, batch_size, device)).numpy()


@dataclass
class TrainResult:
    """What ``fit`` returns: the best model (by validation mean AUC) and the history."""

    model: ValueModel
    history: list[dict[str, float]]
    best_epoch: int
    val_auc: dict[str, float]
    seconds: float


def fit(
    model: ValueModel,
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
    optimizer = torch.optim.Adam(model.parameter_groups(cfg.weight_decay), lr=cfg.lr)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    history: list[dict[str, float]] = []
    best = (-np.inf, 0, copy.deepcopy(model.state_dict()), {})
    stale = 0
    batch_size = epoch_batch_size(len(train), cfg)
    batches = range(0, len(train), batch_size)
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
            idx = order[lo : lo + batch_size]
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
                f"val mean AUC {val_auc['mean']:.4f}"
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
    """The metrics contract of docs/design.md section 2 (``metrics/auc_<model>.json``)."""
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
