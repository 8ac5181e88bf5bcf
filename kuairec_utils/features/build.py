"""Building, querying and writing the features: ``build_features`` (fit on the training rows,
or transform with what an earlier build fitted), ``query_features`` (hypothetical showings),
``write_processed`` and ``read_manifest``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kuairec_utils.data.sessions import SPLITS
from kuairec_utils.features.config import (
    CATEGORY_SOURCE,
    ID_COLUMNS,
    LABEL_COLUMNS,
    MANIFEST_NAME,
    QUERY_SPLIT,
    ROW_GROUP_ROWS,
    FeatureConfig,
    SideTables,
    _day_number,
    check_split_days,
)
from kuairec_utils.features.context_history import _context_features, _history_group
from kuairec_utils.features.encoders import FittedFeatures, _Columns, _impute_and_scale
from kuairec_utils.features.user_item import _item_features, _item_table, _user_features
from kuairec_utils.heads import HEADS


@dataclass
class FeatureSet:
    """The features of every interaction (rows in the input's order) and their manifest."""

    ids: pd.DataFrame  # ID_COLUMNS and LABEL_COLUMNS
    features: dict[str, np.ndarray]  # float32 column per feature, manifest order
    manifest: dict[str, Any]
    fitted: FittedFeatures | None = None  # what the features were fitted with

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]

    def frame(
        self, split: str | None = None, max_rows: int | None = None, seed: int = 0
    ) -> pd.DataFrame:
        """Ids, labels and features as one DataFrame, of one split or all rows; at most
        ``max_rows`` of them (a uniform sample, in row order) when given."""
        rows = np.arange(len(self.ids))
        if split is not None:
            rows = rows[(self.ids["split"] == split).to_numpy()]
        if max_rows is not None and len(rows) > max_rows:
            rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
        ids = self.ids.iloc[rows].reset_index(drop=True)
        features = pd.DataFrame({n: self.features[n][rows] for n in self.names}, copy=False)
        return pd.concat([ids, features], axis=1)


def build_features(
    interactions: pd.DataFrame,
    side: SideTables,
    cfg: FeatureConfig | None = None,
    split_mode: str = "global",
    fitted: FittedFeatures | None = None,
) -> FeatureSet:
    """Every feature of every interaction of the 01_data table, leak-free (the package's docstring).

    ``interactions`` has the columns ``build_interactions`` writes; ``split_mode`` is 01_data's
    (``global``: train days before val days before test days; ``burst``: within each burst), and
    is checked. Encoders, imputation and scaling are fitted on the ``train`` rows only; the
    result's ``fitted`` holds them. Given ``fitted`` (of a build with the same ``cfg``), nothing
    is fitted: the rows are transformed with it, so a subset of users' rows gets the features
    the whole table gave them.
    """
    cfg = cfg or FeatureConfig()
    cfg.validate()
    frame = interactions
    events = (frame["split"] != QUERY_SPLIT).to_numpy()
    check_split_days(
        frame["date"].to_numpy()[events],
        frame["split"].to_numpy()[events],
        frame["burst"].to_numpy()[events],
        split_mode,
    )
    train_rows = (frame["split"] == "train").to_numpy()
    if fitted is not None:
        if fitted.manifest["params"] != {**fitted.manifest["params"], **asdict(cfg)}:
            raise ValueError("fitted features of another FeatureConfig")
        prior = fitted.prior
    elif not train_rows.any():
        raise ValueError("no training rows: encoders and scalers are fitted on the train split")
    else:
        prior = frame.loc[train_rows, list(HEADS)].mean().to_numpy(dtype=np.float64)
    day = _day_number(frame["date"].to_numpy()).astype(np.float64)

    user_ids, user_rows = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    video_ids, item_rows = np.unique(frame["video_id"].to_numpy(), return_inverse=True)
    users = side.user_features.set_index("user_id").reindex(user_ids)
    items = _item_table(video_ids, side)

    cols = _Columns(fitted=fitted)
    _user_features(cols, users, user_rows, train_rows, cfg)
    _item_features(cols, items, frame, item_rows, day, train_rows, side, cfg)
    _context_features(cols, frame, day, train_rows, cfg)
    _history_group(cols, frame, items, item_rows, prior, cfg)
    scaler = _impute_and_scale(cols, train_rows)
    ids = frame[list(ID_COLUMNS) + list(LABEL_COLUMNS)].reset_index(drop=True)
    if fitted is not None:
        if [c["name"] for c in cols.specs] != [c["name"] for c in fitted.manifest["features"]]:
            raise ValueError("these rows give other feature columns than the fitted ones")
        return FeatureSet(ids, cols.values, fitted.manifest, fitted)

    manifest = {
        "id_columns": list(ID_COLUMNS),
        "label_columns": list(LABEL_COLUMNS),
        "features": cols.specs,
        "scaler": scaler,
        "params": {
            **asdict(cfg),
            "split_mode": split_mode,
            "category_source": CATEGORY_SOURCE,
            "prior": dict(zip(HEADS, prior.tolist(), strict=True)),
            "n_rows": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        },
        "encoders": cols.encoders,
    }
    assert cols.tag_kept is not None  # set by _tag_features
    state = FittedFeatures(
        prior, cols.fitted_encoders, cols.tag_kept, cols.burst_first_day, scaler, manifest
    )
    return FeatureSet(ids, cols.values, manifest, state)


QUERY_COLUMNS: tuple[str, ...] = ("user_id", "video_id", "session_id", "timestamp")


def query_features(
    interactions: pd.DataFrame,
    queries: pd.DataFrame,
    side: SideTables,
    cfg: FeatureConfig | None = None,
    split_mode: str = "global",
    fitted: FittedFeatures | None = None,
) -> FeatureSet:
    """Features of hypothetical showings: user ``user_id`` shown video ``video_id`` at
    ``timestamp``, in session ``session_id`` (one of the user's sessions in ``interactions``).

    The candidates of head-weight estimation (05) are scored at the start of their session:
    a query there reads every state an event at that time would read (history, lagged daily
    statistics, context at position 0 unless ``queries`` has a ``position`` column) and changes
    nothing, so every real row keeps exactly the features ``build_features(interactions)`` gives
    it (encoders and scalers are fitted on the same training rows; tests check this). Returns
    the queries' features, in the queries' order.

    ``fitted`` (``build_features(interactions, ...).fitted``, computed once) makes it fast: only
    the queried users' events are built beside the queries, with the fitted encoders and scalers
    instead of a new fit on all of ``interactions``, and the features come out the same. That is
    what lets many queries be scored in chunks without rebuilding every event's features per
    chunk.
    """
    missing = [c for c in QUERY_COLUMNS if c not in queries.columns]
    if missing:
        raise ValueError(f"queries lack the column(s) {missing}; need {list(QUERY_COLUMNS)}")
    if (interactions["split"] == QUERY_SPLIT).any():
        raise ValueError(f"interactions must not contain rows of split {QUERY_SPLIT!r}")
    sessions = interactions.groupby("session_id", sort=False).agg(
        user_id=("user_id", "first"), date=("date", "first"), burst=("burst", "first")
    )
    known = queries["session_id"].isin(sessions.index).to_numpy()
    if not known.all():
        bad = queries["session_id"].to_numpy()[~known][:5].tolist()
        raise ValueError(f"queries name sessions that are not in the interactions: {bad}")
    own = sessions.loc[queries["session_id"].to_numpy()]
    if (own["user_id"].to_numpy() != queries["user_id"].to_numpy()).any():
        raise ValueError("queries must name sessions of their own user")
    durations = interactions.groupby("video_id")["video_duration_ms"].first()
    unknown = ~queries["video_id"].isin(durations.index).to_numpy()
    if unknown.any():
        raise ValueError(
            f"queries name videos with no interaction (no duration): "
            f"{queries['video_id'].to_numpy()[unknown][:5].tolist()}"
        )
    ts = queries["timestamp"].to_numpy(dtype=np.float64)
    rows = pd.DataFrame(
        {
            "raw_row": -1,
            "user_id": queries["user_id"].to_numpy(),
            "video_id": queries["video_id"].to_numpy(),
            "video_duration_ms": durations.loc[queries["video_id"].to_numpy()].to_numpy(),
            "time": pd.to_datetime(np.round(ts * 1000).astype(np.int64), unit="ms")
            + pd.Timedelta(hours=8),  # Beijing time, as 01_data writes it
            "date": own["date"].to_numpy(),
            "timestamp": ts,
            "session_id": queries["session_id"].to_numpy(),
            "position": queries["position"].to_numpy() if "position" in queries else 0,
            "burst": own["burst"].to_numpy(),
            "split": QUERY_SPLIT,
        }
    )
    for head in HEADS:
        rows[head] = np.int8(0)
    events = interactions
    if fitted is not None:  # the queried users' events only (a user's features need no others)
        events = interactions[interactions["user_id"].isin(np.unique(rows["user_id"])).to_numpy()]
    frame = pd.concat([events[rows.columns].astype({"split": str}), rows], ignore_index=True)
    built = build_features(frame, side, cfg, split_mode=split_mode, fitted=fitted)
    keep = slice(len(events), len(frame))  # the queries, after the events (views, no copies)
    ids = built.ids.iloc[keep].reset_index(drop=True)
    return FeatureSet(
        ids, {n: v[keep] for n, v in built.features.items()}, built.manifest, built.fitted
    )


def write_processed(features: FeatureSet, out_dir: str | Path) -> dict[str, int]:
    """Write ``<out_dir>/{train,val,test}.parquet`` and ``features.json``; rows per split.

    Each file holds the id columns, the labels, then the features, in row groups of
    ``ROW_GROUP_ROWS`` so that no split is ever copied whole.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = features.names
    written = {}
    for name in SPLITS:
        rows = np.flatnonzero((features.ids["split"] == name).to_numpy())
        writer = None
        for start in range(0, max(len(rows), 1), ROW_GROUP_ROWS):
            chunk = rows[start : start + ROW_GROUP_ROWS]
            table = pa.Table.from_pandas(features.ids.iloc[chunk], preserve_index=False)
            for feature in names:
                table = table.append_column(feature, pa.array(features.features[feature][chunk]))
            if writer is None:
                writer = pq.ParquetWriter(  # dictionaries only pay off for the split's name
                    out / f"{name}.parquet", table.schema, use_dictionary=["split"]
                )
            writer.write_table(table)
        writer.close()
        written[name] = len(rows)
    (out / MANIFEST_NAME).write_text(json.dumps(features.manifest, indent=1) + "\n")
    return written


def read_manifest(processed_dir: str | Path) -> dict[str, Any]:
    """The feature manifest ``features.json`` written by ``write_processed``."""
    return json.loads((Path(processed_dir) / MANIFEST_NAME).read_text())
