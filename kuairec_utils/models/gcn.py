"""The study's GCN value model: learnable node embeddings, three GCN layers over the
training graph, the edge MLP on [user, video, edge features]; and what its
representations can tell apart."""

from __future__ import annotations

import warnings
from typing import Any

import numba
import numpy as np
import torch
from torch import nn

from kuairec_utils.models.networks import ValueModel, edge_mlp


def normalized_adjacency(
    user: torch.Tensor, item: torch.Tensor, n_users: int, n_items: int, self_loops: bool = True
) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of the bipartite user-item graph, as a sparse CSR matrix.

    Nodes are the users (0..n_users-1) then the items; an edge joins a user and an item that
    interacted at least once (repeats count once); the self-loops are the ``+ I``
    (``self_loops=False``: ``D^-1/2 A D^-1/2``, LightGCN's, with no row for an isolated node).
    """
    n = n_users + n_items
    pairs = torch.unique(torch.stack([user, item + n_users]), dim=1)
    loops = torch.arange(n if self_loops else 0, device=user.device)
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


@numba.njit(parallel=True, cache=True)
def _csr_rows_times(crow, col, val, x):  # noqa: ANN001 (numba)
    """``A @ x`` for a CSR ``A`` (``crow``, ``col``, ``val``) and a dense float32 ``x``: each
    output row is its non-zeros' sum in column order, by one thread, so the bits are those of
    torch's CSR product whatever the number of threads."""
    n, h = crow.shape[0] - 1, x.shape[1]
    out = np.empty((n, h), dtype=np.float32)
    for i in numba.prange(n):
        acc = np.zeros(h, dtype=np.float32)
        for p in range(crow[i], crow[i + 1]):
            v, j = val[p], col[p]
            for d in range(h):
                acc[d] += v * x[j, d]
        out[i] = acc
    return out


def sparse_product(adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``adjacency @ x`` for a CSR ``adjacency``: on the CPU, in float32, by
    ``_csr_rows_times`` (the same bits as ``torch.sparse.mm``, a third faster at H = 128 on the
    default data); elsewhere ``torch.sparse.mm``."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or adjacency.layout != torch.sparse_csr:
        return torch.sparse.mm(adjacency, x)
    out = _csr_rows_times(
        adjacency.crow_indices().numpy(),
        adjacency.col_indices().numpy(),
        adjacency.values().numpy(),
        x.detach().contiguous().numpy(),
    )
    return torch.from_numpy(out)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse ``A``, whose backward is ``A @ grad`` (no transpose:
    torch's generic sparse backward transposes ``A`` on every step, ten times slower here)."""

    @staticmethod
    def forward(ctx: Any, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return sparse_product(adjacency, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, sparse_product(ctx.adjacency, grad)


class GCNValueModel(ValueModel):
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
