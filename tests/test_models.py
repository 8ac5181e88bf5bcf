"""The value models: the GCN's propagation against a dense reference, the training graph holds
training edges only, training lowers the loss and beats chance, and the same seed gives the
same AUCs on CPU."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_geometric.nn import GCNConv

import kuairec_utils.models.training as models
from kuairec_utils.heads import HEADS
from kuairec_utils.models.dataset import Dataset, EdgeSet, load_processed
from kuairec_utils.models.gcn import (
    GCNValueModel,
    normalized_adjacency,
    representation_summary,
    training_degree,
)
from kuairec_utils.models.networks import EdgeMLP, LogisticRegression
from kuairec_utils.models.training import (
    TrainConfig,
    auc_by_head,
    fit,
    predict,
    roc_auc,
    scheduled_lr,
)


def test_propagation_equals_dense_reference() -> None:
    user = torch.tensor([0, 0, 1, 2, 2, 2, 0])  # (0, 1) appears twice: one edge
    item = torch.tensor([0, 1, 1, 0, 1, 2, 1])
    n_users, n_items = 4, 3  # user 3 is isolated: only its self-loop
    adj = normalized_adjacency(user, item, n_users, n_items).to_dense()
    a = np.zeros((7, 7))
    for u, i in zip(user.tolist(), item.tolist(), strict=True):
        a[u, n_users + i] = a[n_users + i, u] = 1.0
    a_hat = a + np.eye(7)
    d = np.diag(a_hat.sum(axis=1) ** -0.5)
    assert np.allclose(adj.numpy(), d @ a_hat @ d, atol=1e-6)

    torch.manual_seed(0)
    model = GCNValueModel(
        n_users,
        n_items,
        n_features=2,
        adjacency=normalized_adjacency(user, item, n_users, n_items),
        hidden=5,
    )
    h = model.embedding.weight.detach().numpy()
    for layer in model.layers:
        h = np.maximum(d @ a_hat @ d @ (h @ layer.weight.detach().numpy().T), 0)
    assert np.allclose(model.propagate().detach().numpy(), h, atol=1e-5)

    # and one layer agrees with PyG's GCNConv (self-loops, symmetric normalisation)
    pairs = torch.unique(torch.stack([user, item + n_users]), dim=1)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    conv = GCNConv(5, 5, bias=False)
    conv.lin.weight.data = model.layers[0].weight.data.clone()
    x = model.embedding.weight.detach()
    ours = torch.sparse.mm(model.adjacency, model.layers[0](x))
    assert torch.allclose(conv(x, edge_index), ours.detach(), atol=1e-5)


def synthetic_dataset(
    n_users: int = 60, n_items: int = 40, n: int = 6000, seed: int = 0
) -> Dataset:
    """Edges whose labels depend on user and item effects and on one feature."""
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    ue, ie = rng.normal(size=n_users), rng.normal(size=n_items)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    logit = ue[user][:, None] + ie[item][:, None] + np.array([1.0, 0.5, -0.5, -1.0]) * x[:, :1]
    y = (rng.random((n, 4)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    cut = [0, int(0.7 * n), int(0.85 * n), n]
    splits = {}
    for k, split in enumerate(("train", "val", "test")):
        sl = slice(cut[k], cut[k + 1])
        splits[split] = EdgeSet(
            torch.from_numpy(x[sl]), torch.from_numpy(y[sl]), torch.from_numpy(user[sl]),
            torch.from_numpy(item[sl]), np.arange(cut[k], cut[k + 1]),
        )  # fmt: skip
    return Dataset(splits, ["a", "b", "c"], np.arange(n_users), np.arange(n_items))


def gcn_for(data: Dataset, hidden: int = 8) -> GCNValueModel:
    train = data.splits["train"]
    adj = normalized_adjacency(train.user, train.item, data.n_users, data.n_items)
    return GCNValueModel(
        data.n_users, data.n_items, len(data.feature_names), adj, hidden=hidden, mlp_hidden=16
    )


def test_the_message_passing_graph_holds_training_edges_only() -> None:
    data = synthetic_dataset()
    model = gcn_for(data)
    adj = model.adjacency.to_sparse_coo().coalesce()
    rows, cols = adj.indices()
    off_diagonal = {(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if r != c}
    train = data.splits["train"]
    expected = {
        (int(u), data.n_users + int(i)) for u, i in zip(train.user, train.item, strict=True)
    }
    expected |= {(b, a) for a, b in expected}
    assert off_diagonal == expected
    for split in ("val", "test"):
        edges = data.splits[split]
        novel = {
            (int(u), data.n_users + int(i)) for u, i in zip(edges.user, edges.item, strict=True)
        } - expected
        assert novel and not novel & off_diagonal


@pytest.mark.parametrize("kind", ["logreg", "mlp", "gcn"])
def test_training_lowers_the_loss_and_beats_chance(kind: str) -> None:
    data = synthetic_dataset()
    torch.manual_seed(0)
    model = {
        "logreg": lambda: LogisticRegression(3),
        "mlp": lambda: EdgeMLP(3, hidden=16),
        "gcn": lambda: gcn_for(data),
    }[kind]()
    result = fit(
        model,
        data,
        TrainConfig(epochs=15, batch_size=512, lr=1e-2, patience=15, device="cpu"),
        progress=False,
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    test = data.splits["test"]
    auc = auc_by_head(test.y.numpy(), predict(result.model, test))
    assert auc["mean"] > 0.6, auc
    assert set(auc) == {*HEADS, "mean"}


def test_roc_auc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(5000) < 0.3
    for score in (
        rng.random(5000),  # no ties
        np.round(rng.random(5000) + 0.3 * labels, 1),  # many ties, some signal
        rng.random(5000).astype(np.float32),
    ):
        assert roc_auc(labels, score) == pytest.approx(roc_auc_score(labels, score), abs=1e-12)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # all tied: one half each
    assert np.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))  # one class only
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, np.nan])


def test_same_seed_same_aucs_on_cpu() -> None:
    def run() -> dict[str, float]:
        data = synthetic_dataset()
        torch.manual_seed(3)
        result = fit(
            gcn_for(data),
            data,
            TrainConfig(epochs=3, batch_size=256, seed=3, device="cpu"),
            progress=False,
        )
        return auc_by_head(
            data.splits["test"].y.numpy(), predict(result.model, data.splits["test"])
        )

    assert run() == run()


def test_the_cosine_schedule_decays_from_lr_to_zero() -> None:
    total = 40
    lrs = [scheduled_lr(0.02, "cosine", step, total) for step in range(total)]
    assert lrs[0] == 0.02
    assert scheduled_lr(0.02, "cosine", total // 2, total) == pytest.approx(0.01)
    assert lrs[-1] == pytest.approx(0.02 * 0.5 * (1 + math.cos(math.pi * 39 / 40)))
    assert lrs[-1] < 0.0002
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))  # strictly decreasing
    assert {scheduled_lr(0.02, "constant", step, total) for step in range(total)} == {0.02}
    with pytest.raises(ValueError, match="schedule"):
        scheduled_lr(0.02, "linear", 0, total)


def test_every_name_params_accepts_has_its_registered_code() -> None:
    from kuairec_utils import names
    from kuairec_utils.head_weights.estimators import ESTIMATORS
    from kuairec_utils.models import VALUE_MODELS

    assert set(names.GRAPH_MODELS) <= set(VALUE_MODELS)
    assert tuple(ESTIMATORS) == names.ESTIMATORS
    for schedule in names.SCHEDULES:  # each schedule the check accepts, the training runs
        assert scheduled_lr(0.02, schedule, 0, 10) > 0


def test_fit_sets_the_scheduled_rate_before_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def recording(lr: float, schedule: str, step: int, total_steps: int) -> float:
        calls.append((lr, schedule, step, total_steps))
        return scheduled_lr(lr, schedule, step, total_steps)

    monkeypatch.setattr(models, "scheduled_lr", recording)
    data = synthetic_dataset()
    n_batches = math.ceil(len(data.splits["train"]) / 512)
    cfg = TrainConfig(epochs=3, batch_size=512, lr=0.01, patience=3, device="cpu")
    fit(EdgeMLP(3, hidden=16), data, cfg, progress=False)
    assert [c[2] for c in calls] == list(range(3 * n_batches))
    assert {(c[0], c[1], c[3]) for c in calls} == {(0.01, "cosine", 3 * n_batches)}


def test_an_epoch_takes_at_most_max_steps_per_epoch_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """On data whose epoch would take more steps, the batch grows (the graph is propagated once
    per step); below the cap the batch and so the trained model are the plain ones."""
    from kuairec_utils.models.training import epoch_batch_size

    assert epoch_batch_size(835_194, TrainConfig(batch_size=8192, max_steps_per_epoch=110)) == 8192
    assert epoch_batch_size(7_000_000, TrainConfig(batch_size=8192, max_steps_per_epoch=110)) == (
        63_637
    )
    assert epoch_batch_size(7_000_000, TrainConfig(batch_size=8192)) == 8192
    calls = []

    def recording(lr: float, schedule: str, step: int, total_steps: int) -> float:
        calls.append(total_steps)
        return scheduled_lr(lr, schedule, step, total_steps)

    monkeypatch.setattr(models, "scheduled_lr", recording)
    data = synthetic_dataset()
    n = len(data.splits["train"])
    capped = TrainConfig(epochs=2, batch_size=64, lr=0.01, device="cpu", max_steps_per_epoch=5)
    fit(EdgeMLP(3, hidden=16), data, capped, progress=False)
    assert set(calls) == {2 * 5} and len(calls) == 10 and n > 5 * 64
    with pytest.raises(ValueError, match="max_steps_per_epoch"):
        TrainConfig(max_steps_per_epoch=0).validate()

    def trained(cfg: TrainConfig) -> list[torch.Tensor]:
        torch.manual_seed(1)
        return list(fit(EdgeMLP(3, hidden=16), data, cfg, progress=False).model.parameters())

    plain = TrainConfig(epochs=1, batch_size=512, lr=0.01, device="cpu")
    wide_cap = TrainConfig(epochs=1, batch_size=512, lr=0.01, device="cpu", max_steps_per_epoch=99)
    assert all(torch.equal(a, b) for a, b in zip(trained(plain), trained(wide_cap), strict=True))


def test_the_schedule_changes_the_trained_model() -> None:
    def run(schedule: str) -> list[torch.Tensor]:
        data = synthetic_dataset()
        torch.manual_seed(1)
        cfg = TrainConfig(epochs=2, batch_size=512, lr=0.01, device="cpu", schedule=schedule)
        return list(fit(EdgeMLP(3, hidden=16), data, cfg, progress=False).model.parameters())

    cosine, constant = run("cosine"), run("constant")
    assert not all(torch.equal(a, b) for a, b in zip(cosine, constant, strict=True))


def test_bad_training_parameters_are_named() -> None:
    data = synthetic_dataset()
    with pytest.raises(ValueError, match="batch_size"):
        fit(EdgeMLP(3), data, TrainConfig(batch_size=0), progress=False)
    with pytest.raises(ValueError, match="device"):
        fit(EdgeMLP(3), data, TrainConfig(device="tpu"), progress=False)
    with pytest.raises(ValueError, match="schedule"):
        fit(EdgeMLP(3), data, TrainConfig(schedule="step"), progress=False)


def test_training_is_bitwise_reproducible_with_several_threads() -> None:
    """Gathers of node states must not scatter-add their gradients in thread order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:

        def run() -> list[torch.Tensor]:
            data = synthetic_dataset(n_users=30, n_items=20, n=40000, seed=4)
            torch.manual_seed(5)
            result = fit(
                gcn_for(data, hidden=64),
                data,
                TrainConfig(epochs=2, batch_size=8192, seed=5, device="cpu", patience=5),
                progress=False,
            )
            return [t.clone() for t in result.model.state_dict().values()]

        first, second = run(), run()
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    finally:
        torch.set_num_threads(threads)


def test_training_degree_counts_distinct_neighbours() -> None:
    user = torch.tensor([0, 0, 1, 0])  # (0, 1) twice: one neighbour
    item = torch.tensor([0, 1, 1, 1])
    adj = normalized_adjacency(user, item, n_users=3, n_items=3)  # user 2, item 2: isolated
    assert training_degree(adj).tolist() == [2, 1, 0, 1, 2, 0]


def test_representation_summary_tells_a_line_from_a_spread() -> None:
    rng = np.random.default_rng(0)
    degree = rng.integers(1, 500, size=300)
    direction = rng.normal(size=16)
    # collapsed, as a GCN over a dense graph: every node a multiple of one vector set by its
    # degree, through a ReLU that kills the dimensions where the vector is negative
    line = np.maximum(np.log(degree)[:, None] * direction[None, :], 0.0)
    collapsed = representation_summary(line, degree)
    assert collapsed["n"] == 300
    assert collapsed["dead_dims"] == int((direction < 0).sum())
    assert collapsed["effective_rank"] == pytest.approx(1.0, abs=1e-6)
    assert collapsed["first_share"] == pytest.approx(1.0)
    assert collapsed["corr_log_degree"] == pytest.approx(1.0)
    spread = representation_summary(rng.normal(size=(300, 16)), degree)
    assert spread["dead_dims"] == 0
    assert 14.0 < spread["effective_rank"] <= 16.0
    assert spread["first_share"] < 0.15
    assert spread["corr_log_degree"] < 0.25
    assert representation_summary(rng.normal(size=(1, 4))) == {"n": 1}
    assert "corr_log_degree" not in representation_summary(rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match="degree"):
        representation_summary(rng.normal(size=(5, 4)), np.array([1, 2, 0, 3, 4]))


def test_mkl_runs_in_strict_reproducible_mode_after_importing_the_package() -> None:
    """In a fresh process, as a notebook does (torch first, then the package, then computing),
    MKL must run in STRICT reproducibility mode: without it, the same seed trained a different
    GNN in one process of several (MKL chose another code path)."""
    code = (
        "import torch\n"
        "import kuairec_utils.models.training as m\n"
        "a = torch.randn(256, 256); (a @ a).sum()\n"
        "print(m.mkl_reproducibility())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    if out[-1] == "None":
        pytest.skip("torch is not built with MKL here: nothing to pin")
    assert out[-1] == "AUTO,STRICT"
    # a value the user exports wins (COMPATIBLE: MKL takes it on every x86 CPU, while it
    # refuses its AVX2 branch on AMD's and stays in AUTO)
    env["MKL_CBWR"] = "COMPATIBLE,STRICT"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == "COMPATIBLE,STRICT"


def test_load_processed_without_features_keeps_the_graph_and_the_labels(tiny_processed) -> None:
    full = load_processed(tiny_processed)
    light = load_processed(tiny_processed, features=False)
    assert light.feature_names == full.feature_names
    assert np.array_equal(light.user_ids, full.user_ids)
    assert np.array_equal(light.item_ids, full.item_ids)
    for name, split in full.splits.items():
        other = light.splits[name]
        assert other.x.shape == (len(split), 0) and split.x.shape[1] == len(full.feature_names)
        assert torch.equal(other.y, split.y)
        assert torch.equal(other.user, split.user) and torch.equal(other.item, split.item)
        assert np.array_equal(other.raw_row, split.raw_row)
