"""A graph value model built to learn the user-video taste match (docs/design.md section 5).

The study's GCN starts every node from a free embedding, passes it through three ReLU layers and
feeds the result, concatenated, to the edge MLP: its representations collapse onto one direction,
and a video first shown after the training days keeps its random start. This model differs in
four ways, each one a setting, so an ablation can take it out:

- **nodes start from what they are**: a user from the user's side features (through a linear
  map), plus a free embedding; a video from its category tags, every tag kept, through a learnt
  vector per tag (a cold video has its tags from the start); free video embeddings are optional;
- **propagation keeps layer 0**: LightGCN layers (PyG's ``LGConv``) over the training graph,
  without self-loops, and the node's representation is the mean over layers 0..K, so a node the
  graph does not reach keeps its own start;
- **the taste match enters each head directly**: every head's logit adds a learnt linear term of
  the elementwise product ``z_user * z_video`` (a bilinear form) to the edge MLP's logit;
- **weight decay spares the embeddings** (``parameter_groups``): decay on the dense weights
  only, so the rows of users and videos a batch never touches are not pulled to zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import LGConv

from kuairec_utils.heads import HEADS
from kuairec_utils.models.dataset import Dataset, node_inputs
from kuairec_utils.models.gcn import _SymmetricSpMM
from kuairec_utils.models.networks import ValueModel, edge_mlp


class SymmetricLGConv(LGConv):
    """PyG's LightGCN layer on a pre-normalised symmetric sparse adjacency, through the project's
    sparse product: its backward multiplies by the same matrix (no transpose on every step)."""

    def __init__(self) -> None:
        super().__init__(normalize=False)

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _SymmetricSpMM.apply(adj_t, x)


class TasteValueModel(ValueModel):
    """Feature-started nodes, LightGCN propagation with layer 0 kept, and a per-head bilinear
    taste term beside the edge MLP (the module docstring)."""

    def __init__(
        self,
        user_x: torch.Tensor,
        item_tags: torch.Tensor,
        n_features: int,
        adjacency: torch.Tensor,
        hidden: int = 64,
        mlp_hidden: int = 128,
        n_layers: int = 2,
        dropout: float = 0.0,
        user_features: bool = True,
        free_user_embedding: bool = True,
        item_features: bool = True,
        free_item_embedding: bool = False,
        interaction: bool = True,
    ) -> None:
        super().__init__()
        if not (user_features or free_user_embedding) or not (item_features or free_item_embedding):
            raise ValueError("users and videos each need their features or a free embedding")
        self.n_users, self.n_items = len(user_x), len(item_tags)
        self.register_buffer("user_x", user_x)
        self.register_buffer("item_tags", item_tags)
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.user_tower = nn.Linear(user_x.shape[1], hidden) if user_features else None
        self.user_embedding = nn.Embedding(self.n_users, hidden) if free_user_embedding else None
        self.hidden = hidden
        self.tag_vectors = nn.Linear(item_tags.shape[1], hidden) if item_features else None
        self.item_embedding = nn.Embedding(self.n_items, hidden) if free_item_embedding else None
        for table in (self.user_embedding, self.item_embedding):
            if table is not None:
                nn.init.normal_(table.weight, std=0.1)
        self.convs = nn.ModuleList(SymmetricLGConv() for _ in range(n_layers))
        self.interaction = nn.Linear(hidden, len(HEADS)) if interaction else None
        self.mlp = edge_mlp(n_features + (0 if interaction else 2 * hidden), mlp_hidden, dropout)

    def initial_nodes(self) -> torch.Tensor:
        """Layer 0: the users' and then the videos' starting representations."""
        users = self._start(self.user_tower, self.user_x, self.user_embedding)
        items = self._start(self.tag_vectors, self.item_tags, self.item_embedding)
        return torch.cat([users, items])

    def _start(
        self, tower: nn.Linear | None, x: torch.Tensor, table: nn.Embedding | None
    ) -> torch.Tensor:
        h = torch.zeros(len(x), self.hidden, device=x.device)
        if tower is not None:
            h = h + tower(x)
        return h if table is None else h + table.weight

    def propagate(self) -> torch.Tensor:
        """The mean of the node representations over layers 0..K."""
        h = self.initial_nodes()
        total = h
        for conv in self.convs:
            h = conv(h, self.adjacency)
            total = total + h
        return total / (len(self.convs) + 1)

    def score_edges(
        self, h: torch.Tensor, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        hu = torch.index_select(h, 0, user)
        hi = torch.index_select(h, 0, self.n_users + item)
        if self.interaction is None:
            return self.mlp(torch.cat([hu, hi, x], dim=1))
        return self.mlp(x) + self.interaction(hu * hi)

    def node_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            h = self.propagate().cpu().numpy()
        return h[: self.n_users], h[self.n_users :]

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Weight decay on the dense weights only; the free embeddings are exempt."""
        tables = {id(t.weight) for t in (self.user_embedding, self.item_embedding) if t is not None}
        free = [p for p in self.parameters() if id(p) in tables]
        dense = [p for p in self.parameters() if id(p) not in tables]
        groups = [{"params": dense, "weight_decay": weight_decay}]
        return groups + ([{"params": free, "weight_decay": 0.0}] if free else [])


def node_settings(
    data: Dataset, processed_dir: str | Path, raw_dir: str | Path, pool_below: float = 0.0
) -> dict[str, int]:
    """Attach the nodes' inputs to ``data`` (``dataset.node_inputs``) and return the settings that
    size the model to them (``n_user_features``, ``n_tags``)."""
    data.nodes = node_inputs(processed_dir, raw_dir, data, pool_below)
    return {"n_user_features": data.nodes.user_x.shape[1], "n_tags": data.nodes.item_tags.shape[1]}
