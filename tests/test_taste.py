"""The taste-learning graph value model: cold videos start from their tags, propagation keeps
layer 0 and agrees with PyG's LightGCN, the bilinear taste term, the registry round trip, weight
decay that spares the embeddings, and the probe of the true taste."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_models import synthetic_dataset
from torch_geometric.nn import LGConv

from kuairec_utils.evaluation.representations import probe_r2
from kuairec_utils.models import (
    VALUE_MODELS,
    build_value_model,
    load_value_model,
    save_value_model,
    training_adjacency,
)
from kuairec_utils.models.dataset import NodeInputs, pool_rare_tags
from kuairec_utils.models.runs import short_run, warm_cold_auc
from kuairec_utils.models.training import TrainConfig, auc_by_head, fit, predict


def with_nodes(data, n_tags: int = 5, seed: int = 0):
    """The synthetic dataset with node inputs: 4 user features; video 0 and the last two videos
    share tags {1, 2}; the last two have no training edge (cold)."""
    rng = np.random.default_rng(seed)
    train = data.splits["train"]
    keep = train.item < data.n_items - 2  # the last two videos: never on the training days
    for name in ("x", "y", "user", "item"):
        setattr(train, name, getattr(train, name)[keep])
    train.raw_row = train.raw_row[keep.numpy()]
    tags = np.zeros((data.n_items, n_tags), dtype=np.float32)
    tags[np.arange(data.n_items), rng.integers(0, n_tags, data.n_items)] = 1.0
    for video in (0, data.n_items - 2, data.n_items - 1):
        tags[video] = [0, 0.5, 0.5, 0, 0]
    user_x = torch.from_numpy(rng.normal(size=(data.n_users, 4)).astype(np.float32))
    data.nodes = NodeInputs(user_x, torch.from_numpy(tags))
    return data


def taste(data, **settings):
    torch.manual_seed(0)
    return build_value_model("taste", data, n_user_features=4, n_tags=5, hidden=8, **settings)


def test_a_cold_video_starts_from_its_tags_and_keeps_them() -> None:
    data = with_nodes(synthetic_dataset())
    model = taste(data)
    h = model.propagate().detach()
    cold_a, cold_b, warm = (data.n_users + v for v in (data.n_items - 2, data.n_items - 1, 0))
    assert torch.equal(h[cold_a], h[cold_b])  # same tags, no edge: the same representation
    assert h[cold_a].abs().sum() > 0  # not a blank (nor a random start)
    start = model.initial_nodes().detach()
    assert torch.allclose(h[cold_a], start[cold_a] / 3)  # layers 1 and 2 add nothing to it
    assert not torch.allclose(h[warm], start[warm] / 3)  # a warm video's neighbours do


def test_propagation_is_pygs_lightgcn_with_the_layers_averaged() -> None:
    data = with_nodes(synthetic_dataset())
    model = taste(data)
    train = data.splits["train"]
    pairs = torch.unique(torch.stack([train.user, train.item + data.n_users]), dim=1)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    h0 = model.initial_nodes().detach()
    reference = LGConv(normalize=True)
    h1 = reference(h0, edge_index)
    h2 = reference(h1, edge_index)
    assert torch.allclose(model.propagate().detach(), (h0 + h1 + h2) / 3, atol=1e-5)


def test_the_taste_term_is_a_per_head_bilinear_form() -> None:
    data = with_nodes(synthetic_dataset())
    model = taste(data).eval()
    h = model.propagate().detach()
    x = torch.zeros(3, len(data.feature_names))
    user, item = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 3])
    hu, hi = h[user], h[data.n_users + item]
    with torch.no_grad():
        expected = model.mlp(x) + (hu * hi) @ model.interaction.weight.T + model.interaction.bias
        assert torch.allclose(model.score_edges(h, x, user, item), expected, atol=1e-6)
        model.interaction.weight.zero_()
        model.interaction.bias.zero_()
        assert torch.allclose(model.score_edges(h, x, user, item), model.mlp(x))  # the edge MLP
    concat = taste(data, interaction=False)
    assert concat.interaction is None and concat.mlp[0].in_features == len(data.feature_names) + 16


def test_registered_saved_and_loaded_with_its_inputs(tmp_path: Path) -> None:
    assert "taste" in VALUE_MODELS
    data = with_nodes(synthetic_dataset())
    settings = {"n_user_features": 4, "n_tags": 5, "hidden": 8, "mlp_hidden": 16}
    torch.manual_seed(1)
    model = fit(
        build_value_model("taste", data, **settings),
        data,
        TrainConfig(epochs=2, batch_size=512, device="cpu"),
        progress=False,
    ).model
    save_value_model(tmp_path / "m", model, "taste", data, **settings)
    data.nodes = None  # as 05 loads it: the node inputs come back from model.pt
    loaded = load_value_model(tmp_path / "m", data)
    test = data.splits["test"]
    assert np.array_equal(predict(model.eval(), test), predict(loaded, test))
    with pytest.raises(ValueError, match="shapes"):
        data.nodes = NodeInputs(torch.zeros(data.n_users, 3), torch.zeros(data.n_items, 5))
        build_value_model("taste", data, **settings)


def test_weight_decay_spares_the_free_embeddings() -> None:
    data = with_nodes(synthetic_dataset())
    model = taste(data, free_item_embedding=True)
    decayed, spared = model.parameter_groups(0.01)
    tables = {id(model.user_embedding.weight), id(model.item_embedding.weight)}
    assert {id(p) for p in spared["params"]} == tables and spared["weight_decay"] == 0.0
    assert not tables & {id(p) for p in decayed["params"]} and decayed["weight_decay"] == 0.01
    assert len(taste(data, free_user_embedding=False).parameter_groups(0.01)) == 1


def test_the_adjacency_without_self_loops_leaves_isolated_nodes_empty() -> None:
    data = with_nodes(synthetic_dataset())
    adjacency = training_adjacency(data, self_loops=False).to_dense()
    assert torch.allclose(adjacency, adjacency.T)
    assert adjacency.diagonal().abs().sum() == 0
    assert adjacency[data.n_users + data.n_items - 1].abs().sum() == 0  # a cold video


def test_the_probe_finds_a_linear_taste_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(400, 6))
    h = np.hstack([target @ rng.normal(size=(6, 6)), rng.normal(size=(400, 4))])
    assert probe_r2(h + 0.05 * rng.normal(size=h.shape), target) > 0.95
    assert probe_r2(rng.normal(size=(400, 10)), target) < 0.05
    assert np.isnan(probe_r2(h[:3], target[:3]))


def test_rare_tags_pool_into_one_column_that_keeps_their_weight() -> None:
    tags = np.array([[1, 0, 0], [0, 0.5, 0.5], [0, 0, 1], [0, 0, 0]], dtype=np.float32)
    train_item = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2])  # tag 0 on 80% of rows, 1 on 10%
    pooled = pool_rare_tags(tags, train_item, min_share=0.15)
    assert pooled.shape == (4, 3)  # tags 0 and 2 (20%) kept, tag 1 pooled
    assert np.array_equal(pooled[:, -1], tags[:, 1])
    assert np.array_equal(pooled.sum(axis=1), tags.sum(axis=1))
    assert pool_rare_tags(tags, train_item, min_share=0.5).shape == (4, 2)


def test_a_model_without_node_features_starts_from_free_embeddings_only() -> None:
    data = with_nodes(synthetic_dataset())
    model = taste(data, user_features=False, item_features=False, free_item_embedding=True)
    assert model.user_tower is None and model.tag_vectors is None
    start = model.initial_nodes().detach()
    assert torch.equal(start[data.n_users :], model.item_embedding.weight.detach())
    with pytest.raises(ValueError, match="free embedding"):
        taste(data, item_features=False)  # videos with nothing to start from


def test_a_short_run_scores_warm_and_cold_rows_apart() -> None:
    data = with_nodes(synthetic_dataset())
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=2, batch_size=512, device="cpu")
    record = short_run(taste(data), data, cfg)
    assert record["epochs_run"] == 2 and record["best_epoch"] in (1, 2)
    p = predict(taste(data).eval(), data.splits["test"])
    split = warm_cold_auc(data, p)
    warm = np.isin(data.splits["test"].item.numpy(), data.splits["train"].item.numpy())
    assert 0 < warm.sum() < len(warm)  # both kinds of rows in the synthetic test split
    y = data.splits["test"].y.numpy()
    assert split["cold"]["mean"] == pytest.approx(auc_by_head(y[~warm], p[~warm])["mean"])
