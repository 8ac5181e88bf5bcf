"""The value models of the study (docs/design.md section 5): one interface, a registry by name.

Every value model is a ``ValueModel`` (``networks``): ``propagate()`` gives its node
representations (None without a graph), ``score_edges(h, x, user, item)`` four logits per
interaction, ``node_embeddings()`` the final user and video representations. Training
(``training.fit``), 04's and 05's scoring and 06's residuals use only these.

``VALUE_MODELS`` maps an architecture's name to a builder ``(data, **settings) -> ValueModel``:

- ``logreg``: one linear layer from the interaction's feature vector to four logits;
- ``edge_mlp``: the study's 3-layer edge MLP (hidden 128, ReLU) on the feature vector;
- ``gcn``: the study's GCN: learnable user and video embeddings of size H, three layers
  ``h(l+1) = ReLU(A_hat h(l) W(l))`` with ``A_hat = D^-1/2 (A + I) D^-1/2`` over the user-video
  graph of *training* interactions, then the edge MLP on ``[h_user, h_video, edge features]``;
- ``taste``: nodes started from the users' features and the videos' tags, LightGCN propagation
  that keeps layer 0, and a per-head bilinear taste term beside the edge MLP (``taste``). It needs
  the dataset's ``nodes`` (``dataset.node_inputs``) to be built afresh; loaded, its buffers hold them.

Adding a value model is a ``ValueModel`` subclass and one entry here; ``save_value_model`` and
``load_value_model`` carry its name and settings beside its weights, so 05 and 06 rebuild it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from kuairec_utils.models.dataset import Dataset
from kuairec_utils.models.gcn import GCNValueModel, normalized_adjacency
from kuairec_utils.models.networks import EdgeMLP, LogisticRegression, ValueModel
from kuairec_utils.models.taste import TasteValueModel

MODEL_CONFIG = "config.json"  # the architecture's name and settings, beside model.pt


def training_adjacency(data: Dataset, self_loops: bool = True) -> torch.Tensor:
    """The normalised adjacency of the training interactions' user-video graph."""
    train = data.splits["train"]
    return normalized_adjacency(train.user, train.item, data.n_users, data.n_items, self_loops)


def _logreg(data: Dataset) -> ValueModel:
    return LogisticRegression(len(data.feature_names))


def _edge_mlp(data: Dataset, hidden: int = 128, dropout: float = 0.0) -> ValueModel:
    return EdgeMLP(len(data.feature_names), hidden=hidden, dropout=dropout)


def _gcn(
    data: Dataset,
    hidden: int = 64,
    mlp_hidden: int = 128,
    n_layers: int = 3,
    dropout: float = 0.0,
    layer_mix: str = "last",
    edge_input: str = "concat",
) -> ValueModel:
    if edge_input not in ("concat", "product"):
        raise ValueError(f"edge_input must be 'concat' or 'product', got {edge_input!r}")
    return GCNValueModel(
        data.n_users,
        data.n_items,
        len(data.feature_names),
        training_adjacency(data),
        hidden=hidden,
        mlp_hidden=mlp_hidden,
        n_layers=n_layers,
        dropout=dropout,
        layer_mix=layer_mix,
        product=edge_input == "product",
    )


def _taste(
    data: Dataset,
    n_user_features: int,
    n_tags: int,
    hidden: int = 64,
    mlp_hidden: int = 128,
    n_layers: int = 2,
    dropout: float = 0.0,
    user_features: bool = True,
    free_user_embedding: bool = True,
    item_features: bool = True,
    free_item_embedding: bool = False,
    interaction: bool = True,
) -> ValueModel:
    if data.nodes is not None:  # built afresh: the nodes' inputs themselves
        user_x, item_tags = data.nodes.user_x, data.nodes.item_tags
        if user_x.shape != (data.n_users, n_user_features) or item_tags.shape[1] != n_tags:
            raise ValueError("the dataset's node inputs do not have the settings' shapes")
    else:  # to be loaded: placeholders the saved buffers fill
        user_x = torch.zeros(data.n_users, n_user_features)
        item_tags = torch.zeros(data.n_items, n_tags)
    return TasteValueModel(
        user_x,
        item_tags,
        len(data.feature_names),
        training_adjacency(data, self_loops=False),
        hidden=hidden,
        mlp_hidden=mlp_hidden,
        n_layers=n_layers,
        dropout=dropout,
        user_features=user_features,
        free_user_embedding=free_user_embedding,
        item_features=item_features,
        free_item_embedding=free_item_embedding,
        interaction=interaction,
    )


VALUE_MODELS: dict[str, Callable[..., ValueModel]] = {
    "logreg": _logreg,
    "edge_mlp": _edge_mlp,
    "gcn": _gcn,
    "taste": _taste,
}


def build_value_model(arch: str, data: Dataset, **settings: Any) -> ValueModel:
    """A fresh (randomly initialised: seed torch first) value model of architecture ``arch``."""
    if arch not in VALUE_MODELS:
        raise ValueError(f"unknown value model {arch!r}: one of {sorted(VALUE_MODELS)}")
    return VALUE_MODELS[arch](data, **settings)


def save_value_model(
    folder: str | Path, model: ValueModel, arch: str, data: Dataset, **settings: Any
) -> None:
    """``model.pt`` (the weights) and ``config.json`` (the architecture, its settings and the
    features it was trained on) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    config = {"arch": arch, "settings": settings, "feature_names": data.feature_names}
    (folder / MODEL_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def load_value_model(folder: str | Path, data: Dataset) -> ValueModel:
    """The value model saved in ``folder`` by ``save_value_model``, over the training graph of
    ``data``, on the CPU in eval mode."""
    folder = Path(folder)
    for name in ("model.pt", MODEL_CONFIG):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} is missing: train the model first")
    config = json.loads((folder / MODEL_CONFIG).read_text())
    if config.get("feature_names") != data.feature_names:
        raise ValueError(f"{folder}: the model was trained on other features than these")
    model = build_value_model(config["arch"], data, **config["settings"])
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()
