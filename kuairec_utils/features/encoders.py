"""Encoders fitted on the training rows: categorical encodings (one-hot with rare levels pooled,
or frequency), ordinal ranks of range bins, the feature table under construction, imputation
and scaling, and everything a build fits (``FittedFeatures``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kuairec_utils.features.config import SCALED_TYPES, FeatureConfig, _column_name

# --- categorical encodings (fitted on training rows) ----------------------------------------------


@dataclass(frozen=True)
class CategoricalEncoder:
    """One-hot (reference level dropped, rare levels pooled) or frequency encoding of one column.

    Fitted on entity-level values (one per user, video or row) weighted by each entity's count of
    training rows, so a level's share is its share of the training rows. Missing values are a
    level of their own (``"NA"``).
    """

    kind: str  # "onehot" | "frequency"
    counts: pd.Series  # training rows per level, most frequent first
    kept: tuple[str, ...] = ()  # one-hot: levels with a column (the reference is counts.index[0])
    has_other: bool = False  # one-hot: rare (and unseen) levels have an "other" column

    @classmethod
    def fit(
        cls, values: pd.Series, weights: np.ndarray, max_levels: int, min_share: float
    ) -> CategoricalEncoder:
        labels = _labels(values)
        counts = pd.Series(np.asarray(weights, dtype="float64")).groupby(labels.to_numpy()).sum()
        counts = counts[counts > 0]
        order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
        counts = counts.iloc[order]
        if len(counts) > max_levels:
            return cls("frequency", counts)
        share = counts / counts.sum()
        rest = share.iloc[1:]  # the most frequent level is the reference
        kept = tuple(rest.index[(rest >= min_share).to_numpy()])
        pooled = rest[(rest < min_share).to_numpy()].sum()  # rarer together: join the reference
        return cls("onehot", counts, kept, bool(pooled >= min_share))

    def transform(self, values: pd.Series) -> dict[str, np.ndarray]:
        """Encoded columns by name suffix (level, ``other`` or ``freq``), float32."""
        labels = _labels(values)
        if self.kind == "frequency":
            count = labels.map(self.counts).to_numpy(dtype="float64", na_value=0.0)
            return {"freq": np.log1p(count).astype(np.float32)}
        out = {level: (labels == level).to_numpy(np.float32) for level in self.kept}
        if self.has_other:  # the rare levels, and levels never seen in training
            out["other"] = (~labels.isin({self.counts.index[0], *self.kept})).to_numpy(np.float32)
        return out


def _labels(values: pd.Series) -> pd.Series:
    """Category values as strings, missing values as the level ``"NA"``."""
    return pd.Series(values).astype("string").fillna("NA").astype(object)


def _range_rank(labels: pd.Series) -> np.ndarray:
    """Ordinal rank of range bins like ``0``, ``(0,10]``, ``[1,10)``, ``[1w,10w)``, ``500+``.

    Bins are ordered by their lower bound (``k`` = 1e3, ``w`` = 1e4), a closed bound first; the
    rank is over the categories the file defines, so it does not depend on the rows.
    """
    categories = list(labels.cat.categories)

    def key(text: str) -> tuple[float, int]:
        match = re.match(r"\s*([(\[]?)\s*([0-9.]+)\s*([kw]?)", text)
        if match is None:
            return (np.inf, 0)
        scale = {"": 1.0, "k": 1e3, "w": 1e4}[match.group(3)]
        return (float(match.group(2)) * scale, int(match.group(1) == "("))

    rank = {c: r for r, c in enumerate(sorted(categories, key=key))}
    return labels.astype(object).map(rank).to_numpy(dtype="float64", na_value=np.nan)


# --- the feature table under construction ---------------------------------------------------------


@dataclass
class _Columns:
    """Feature columns being built: float32 values (NaN = missing) and their manifest entries."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    specs: list[dict[str, str]] = field(default_factory=list)
    encoders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fitted: FittedFeatures | None = None  # given: transform with its encoders, fit nothing
    fitted_encoders: dict[str, CategoricalEncoder] = field(default_factory=dict)
    tag_kept: np.ndarray | None = None  # what was fitted (or given), for FittedFeatures
    burst_first_day: dict[int, float] = field(default_factory=dict)

    def add(self, name: str, group: str, kind: str, values: np.ndarray) -> None:
        if name in self.values:
            raise ValueError(f"duplicate feature name {name!r}")
        self.values[name] = np.asarray(values, dtype=np.float32)
        self.specs.append({"name": name, "group": group, "type": kind})

    def add_categorical(
        self,
        name: str,
        group: str,
        values: pd.Series,
        weights: np.ndarray,
        rows: np.ndarray | None,
        cfg: FeatureConfig,
    ) -> None:
        """Encode an entity-level categorical (fitted on ``weights``, or the encoder of
        ``self.fitted``) and gather it to ``rows``."""
        if self.fitted is not None:
            enc = self.fitted.encoders[name]
        else:
            enc = CategoricalEncoder.fit(
                values, weights, cfg.max_onehot_levels, cfg.onehot_min_share
            )
        self.fitted_encoders[name] = enc
        for suffix, column in enc.transform(values).items():
            self.add(
                _column_name(name, suffix),
                group,
                enc.kind,
                column if rows is None else column[rows],
            )
        entry: dict[str, Any] = {"kind": enc.kind, "train_levels": len(enc.counts)}
        if enc.kind == "onehot":
            entry |= {"reference": enc.counts.index[0], "kept": list(enc.kept)}
            entry["other"] = enc.has_other
        self.encoders[name] = entry


# --- imputation, scaling, what a build fits -------------------------------------------------------


def _impute_and_scale(cols: _Columns, train_rows: np.ndarray) -> dict[str, list[float]]:
    """Impute missing values with the training mean and standardise the scaled types, in place
    (with ``cols.fitted``: its means and sds, whatever the rows).

    Returns ``{name: [mean, sd]}`` of the standardised columns (sd 1 for a constant column).
    """
    scaler = {}
    for spec in cols.specs:
        name, values = spec["name"], cols.values[spec["name"]]
        if spec["type"] not in SCALED_TYPES:
            if np.isnan(values).any():
                raise ValueError(f"feature {name} ({spec['type']}) has missing values")
            continue
        if cols.fitted is not None:
            mean, sd = cols.fitted.scaler[name]
            values[np.isnan(values)] = mean
        else:
            train = values[train_rows]
            present = ~np.isnan(train)
            mean = float(train[present].mean(dtype=np.float64)) if present.any() else 0.0
            values[np.isnan(values)] = mean
            sd = float(values[train_rows].std(dtype=np.float64))
            sd = sd if sd > 0 else 1.0
        values -= np.float32(mean)
        values /= np.float32(sd)
        scaler[name] = [mean, sd]
    return scaler


@dataclass(frozen=True)
class FittedFeatures:
    """Everything ``build_features`` fits on its rows: with it, ``build_features`` transforms
    other rows (e.g. one user's events and queries) exactly as it transformed those rows, without
    the training rows at hand. A feature depends otherwise only on its own row, its user's rows,
    its video and the side tables."""

    prior: np.ndarray  # the heads' training means (the history EMAs' start)
    encoders: dict[str, CategoricalEncoder]  # by categorical feature
    tag_kept: np.ndarray  # the tags with a column of their own
    burst_first_day: dict[int, float]  # day number of each burst's first row
    scaler: dict[str, list[float]]  # [mean, sd] by standardised feature
    manifest: dict[str, Any]  # of the fit
