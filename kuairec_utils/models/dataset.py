"""The supervision edges of the three splits over one node numbering (from 02_features'
processed tables): what every value model trains and is evaluated on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kuairec_utils.data.sessions import SPLITS
from kuairec_utils.heads import HEADS


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
class NodeInputs:
    """What each node is before any interaction: a user's side features (02's user columns,
    (n_users, F)) and a video's category tags, every tag kept ((n_items, n_tags), each row the
    mean of its tags' indicators)."""

    user_x: torch.Tensor
    item_tags: torch.Tensor


@dataclass
class Dataset:
    """The three splits over one node numbering (users and items seen in any split)."""

    splits: dict[str, EdgeSet]
    feature_names: list[str]
    user_ids: np.ndarray  # node index -> user_id
    item_ids: np.ndarray  # node index -> video_id
    nodes: NodeInputs | None = None  # what a feature-based graph model starts its nodes from

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


def node_inputs(
    processed_dir: str | Path, raw_dir: str | Path, data: Dataset, pool_below: float = 0.0
) -> NodeInputs:
    """The users' side features (02's ``user`` columns, one row per user node: a user's columns
    are the same on all their rows) and the videos' category tags from the release's
    ``item_categories.csv``, every tag kept (a video with no known tag: zeros); with
    ``pool_below`` > 0, the tags on fewer than that share of the training rows pool into one
    column, as 02's tag features do."""
    from kuairec_utils.config import kuairec_data_dir
    from kuairec_utils.data.kuairec import read_table

    processed_dir = Path(processed_dir)
    manifest = json.loads((processed_dir / "features.json").read_text())
    names = [f["name"] for f in manifest["features"] if f["group"] == "user"]
    frames = [
        pd.read_parquet(processed_dir / f"{s}.parquet", columns=["user_id", *names]) for s in SPLITS
    ]
    first = pd.concat(frames).drop_duplicates("user_id").set_index("user_id")
    user_x = first.loc[data.user_ids, names].to_numpy(np.float32, copy=True)
    categories = read_table(kuairec_data_dir(raw_dir), "item_categories").set_index("video_id")
    tags = categories["feat"].reindex(data.item_ids)
    n_tags = 1 + max((max(t) for t in categories["feat"] if len(t)), default=0)
    item_tags = np.zeros((len(data.item_ids), n_tags), dtype=np.float32)
    for row, video_tags in enumerate(tags):
        if isinstance(video_tags, list | tuple) and len(video_tags):
            item_tags[row, list(video_tags)] = 1.0 / len(video_tags)
    if pool_below > 0:
        item_tags = pool_rare_tags(item_tags, data.splits["train"].item.numpy(), pool_below)
    return NodeInputs(torch.from_numpy(user_x), torch.from_numpy(item_tags))


def pool_rare_tags(item_tags: np.ndarray, train_item: np.ndarray, min_share: float) -> np.ndarray:
    """The tag columns carried by at least ``min_share`` of the training rows (``train_item``:
    each row's video), then one column that sums the rarer tags' weights."""
    share = (item_tags[train_item] > 0).mean(axis=0)
    common = share >= min_share
    other = item_tags[:, ~common].sum(axis=1, keepdims=True)
    return np.hstack([item_tags[:, common], other]).astype(np.float32)
