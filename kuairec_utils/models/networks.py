"""The interface every value model offers, and the models on the interaction's feature vector:
logistic regression and the study's 3-layer edge MLP."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kuairec_utils.heads import HEADS


class ValueModel(nn.Module):
    """What training and the later stages ask of a value model.

    - ``propagate()``: the node representations, computed once per step (or per evaluation) by a
      graph model; None for a model of the edge features alone;
    - ``score_edges(h, x, user, item)``: four logits per interaction from those representations
      and the edge features ``x``;
    - ``node_embeddings()``: the final user and video representations (graph models only).

    ``forward(x, user, item)`` is ``score_edges(propagate(), x, user, item)``.
    """

    def propagate(self) -> torch.Tensor | None:
        return None

    def score_edges(
        self, h: torch.Tensor | None, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.score_edges(self.propagate(), x, user, item)

    def node_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError(f"{type(self).__name__} has no node representations")

    def parameter_groups(self, weight_decay: float) -> list[dict]:
        """The optimizer's parameter groups: by default every parameter with the same weight
        decay; a model with free embeddings may exempt them."""
        return [{"params": list(self.parameters()), "weight_decay": weight_decay}]


class LogisticRegression(ValueModel):
    """Four logits, linear in the interaction's features."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, len(HEADS))

    def score_edges(
        self, h: torch.Tensor | None, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
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


class EdgeMLP(ValueModel):
    """Four logits from the interaction's features through the 3-layer edge MLP."""

    def __init__(self, n_features: int, hidden: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.mlp = edge_mlp(n_features, hidden, dropout)

    def score_edges(
        self, h: torch.Tensor | None, x: torch.Tensor, user: torch.Tensor, item: torch.Tensor
    ) -> torch.Tensor:
        return self.mlp(x)
