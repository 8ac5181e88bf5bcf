"""Context features (burst, day within it, position, hour of day, weekend) and the leak-free
history features: one numba pass over the rows sorted by user and time, and the previous
session's length and gap."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

from kuairec_utils.features.config import QUERY_SPLIT, FeatureConfig
from kuairec_utils.features.encoders import _Columns
from kuairec_utils.heads import HEADS

# --- context features -----------------------------------------------------------------------------


def _context_features(
    cols: _Columns, frame: pd.DataFrame, day: np.ndarray, train_rows: np.ndarray, cfg: FeatureConfig
) -> None:
    """Burst (one-hot, fitted on train) and day within it, position, hour of day, weekend."""
    burst = frame["burst"].to_numpy()
    bursts, burst_rows = np.unique(burst, return_inverse=True)
    weights = np.bincount(burst_rows[train_rows], minlength=len(bursts))
    cols.add_categorical("ctx_burst", "context", pd.Series(bursts), weights, burst_rows, cfg)
    if cols.fitted is not None:
        first = cols.fitted.burst_first_day
        if not set(bursts.tolist()) <= set(first):
            raise ValueError(f"rows of bursts the features were not fitted on: {bursts.tolist()}")
        burst_first = np.array([first[b] for b in bursts.tolist()], dtype=np.float64)
    else:
        burst_first = pd.Series(day).groupby(burst_rows).min().to_numpy()
    cols.burst_first_day = dict(zip(bursts.tolist(), burst_first.tolist(), strict=True))
    first_day = burst_first[burst_rows]
    burst_day = np.where(burst >= 0, np.log1p(day - first_day), np.nan)
    cols.add("ctx_log_burst_day", "context", "numeric", burst_day)
    cols.add("ctx_log_position", "context", "numeric", np.log1p(frame["position"].to_numpy()))
    ms_of_day = frame["time"].to_numpy("datetime64[ms]").astype(np.int64) % 86_400_000
    angle = 2 * np.pi * ms_of_day / 86_400_000
    cols.add("ctx_hour_sin", "context", "cyclic", np.sin(angle))
    cols.add("ctx_hour_cos", "context", "cyclic", np.cos(angle))
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    cols.add("ctx_weekend", "context", "binary", weekday >= 5)


# --- history features -----------------------------------------------------------------------------


@numba.njit(cache=True)  # compiled once, then read from __pycache__
def _history_kernel(user, ts, labels, category, author, update, alphas, category_alpha, prior):  # noqa: ANN001 (numba)
    """One pass over rows sorted by user, then timestamp; features from strictly earlier events.

    Rows with ``update`` 0 are queries: they read the state like any row and never change it. A
    tie group (rows of one user sharing a timestamp) has no order: every row gets the state from
    before the group, which then updates it at once, as its mean outcome: with ``m`` tied events
    an EMA moves ``1 - (1 - alpha)**m`` of the way to their mean (``alpha`` when ``m = 1``).
    Returns, per row: each head's EMA at each of ``alphas`` (column ``a * n_heads + head``), the
    number of earlier events, the latest earlier ``complete`` (a tie group's max; -1 if none), the
    EMA of ``complete`` in the row's category (NaN without one), the share of earlier events in
    it, the entropy (nats) of the category mix, and seconds since the author was last watched
    (NaN if never). ``category`` and ``author`` are codes (0..C-1, 0..A-1), -1 when unknown.
    """
    n, n_heads, n_alpha = len(ts), labels.shape[1], len(alphas)
    n_cat = category.max() + 1 if n > 0 and category.max() >= 0 else 1
    n_author = author.max() + 1 if n > 0 and author.max() >= 0 else 1
    ema_out, n_prev, last_complete = np.empty((n, n_alpha * n_heads)), np.empty(n), np.empty(n)
    cat_ema_out, cat_share, entropy, author_gap = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    ema, mean = np.empty((n_alpha, n_heads)), np.empty(n_heads)  # the user's state ...
    cat_ema, cat_count = np.empty(n_cat), np.zeros(n_cat)
    author_seen, author_owner = np.empty(n_author), np.full(n_author, -1)
    count = sum_clogc = last = 0.0
    group_n, group_sum = np.zeros(n_cat), np.zeros(n_cat)  # ... and a tie group's, by category
    user_index, i = -1, 0
    while i < n:
        if i == 0 or user[i] != user[i - 1]:  # a new user: the prior state
            user_index += 1
            for a in range(n_alpha):
                ema[a, :] = prior
            cat_ema[:], cat_count[:] = prior[0], 0.0
            count, sum_clogc, last = 0.0, 0.0, -1.0
        j = i + 1
        while j < n and user[j] == user[i] and ts[j] == ts[i]:
            j += 1
        for r in range(i, j):  # the tie group's features: the state before it
            ema_out[r, :] = ema.ravel()
            n_prev[r], last_complete[r] = count, last
            c = category[r]
            cat_ema_out[r] = cat_ema[c] if c >= 0 else np.nan
            cat_share[r] = cat_count[c] / count if c >= 0 and count > 0 else 0.0
            entropy[r] = max(np.log(count) - sum_clogc / count, 0.0) if count > 0 else 0.0
            seen = author[r] >= 0 and author_owner[author[r]] == user_index
            author_gap[r] = ts[r] - author_seen[author[r]] if seen else np.nan
        m = 0  # then the group's events (not its queries) update the state, at once
        for r in range(i, j):
            m += update[r]
        if m == 0:
            i = j
            continue
        for h in range(n_heads):
            total = 0.0
            for r in range(i, j):
                if update[r]:
                    total += labels[r, h]
            mean[h] = total / m
        for a in range(n_alpha):
            step = 1.0 - (1.0 - alphas[a]) ** m
            ema[a, :] = (1.0 - step) * ema[a, :] + step * mean
        last = 0.0
        for r in range(i, j):
            if not update[r]:
                continue
            last = max(last, float(labels[r, 0]))
            c = category[r]
            if c >= 0:
                group_n[c] += 1.0
                group_sum[c] += labels[r, 0]
            if author[r] >= 0:
                author_seen[author[r]], author_owner[author[r]] = ts[r], user_index
        for r in range(i, j):
            c = category[r]
            if c >= 0 and group_n[c] > 0:  # each category of the group once
                step = 1.0 - (1.0 - category_alpha) ** group_n[c]
                cat_ema[c] = (1.0 - step) * cat_ema[c] + step * group_sum[c] / group_n[c]
                old, new = cat_count[c], cat_count[c] + group_n[c]
                sum_clogc += new * np.log(new) - (old * np.log(old) if old > 0 else 0.0)
                cat_count[c], group_n[c], group_sum[c] = new, 0.0, 0.0
        count += m
        i = j
    return ema_out, n_prev, last_complete, cat_ema_out, cat_share, entropy, author_gap


def history_features(
    user_id: np.ndarray,
    timestamp: np.ndarray,
    labels: np.ndarray,
    category: np.ndarray,
    author: np.ndarray,
    half_lives: Sequence[float],
    category_half_life: float,
    prior: np.ndarray,
    update: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Raw (unscaled) history features of each row, from the same user's strictly earlier events.

    ``update`` (bool, default all true) marks the rows that are events; the others are queries
    (a video the user could have been shown at that time): they get the state at their time,
    as an event there would, and never change it.

    ``labels`` is (rows, heads) 0/1 in ``HEADS`` order (``complete`` first); ``category`` and
    ``author`` are non-negative codes, -1 when unknown; ``prior`` the heads' training means, the
    EMAs' value before a user's first event. An EMA with half-life ``h`` events moves
    ``alpha = 1 - 2**(-1/h)`` of the way to each new outcome; events sharing a timestamp move it
    together, to their mean (``_history_kernel``), so their order does not matter. Rows may come
    in any order; results follow it. Missing values are NaN (``hist_author_log_gap_s``: never watched; ``hist_last_complete`` is 0
    before the first event, which ``hist_no_previous_event`` flags).
    """
    user_id, timestamp = np.asarray(user_id), np.asarray(timestamp, dtype=np.float64)
    later = (user_id[1:] > user_id[:-1]) | (
        (user_id[1:] == user_id[:-1]) & (timestamp[1:] >= timestamp[:-1])
    )
    order = slice(None) if later.all() else np.lexsort((timestamp, user_id))  # 01_data's sort
    alphas = 1.0 - 2.0 ** (-1.0 / np.asarray(half_lives, dtype=np.float64))
    out = _history_kernel(
        user_id[order],
        timestamp[order],
        np.ascontiguousarray(np.asarray(labels, dtype=np.int8)[order]),
        np.asarray(category, dtype=np.int64)[order],
        np.asarray(author, dtype=np.int64)[order],
        (np.ones(len(user_id), np.int8) if update is None else np.asarray(update, np.int8))[order],
        alphas,
        1.0 - 2.0 ** (-1.0 / float(category_half_life)),
        np.asarray(prior, dtype=np.float64),
    )
    gc.collect()  # numba's first compile leaves reference cycles that hold the (large) inputs
    if isinstance(order, np.ndarray):  # back to the rows' own order
        unsorted = [np.empty_like(values) for values in out]
        for values, sorted_values in zip(unsorted, out, strict=True):
            values[order] = sorted_values
        out = tuple(unsorted)
    ema, n_prev, last, cat_ema, cat_share, entropy, author_gap = out
    features = {}
    for a, h in enumerate(half_lives):
        for k, head in enumerate(HEADS):
            features[f"hist_{head}_ema{h:g}"] = ema[:, a * len(HEADS) + k]
    features["hist_log_n_events"] = np.log1p(n_prev)
    features["hist_no_previous_event"] = (n_prev == 0).astype(np.float64)
    features["hist_last_complete"] = np.maximum(last, 0.0)
    features["hist_category_complete_ema"] = cat_ema
    features["hist_category_share"] = cat_share
    features["hist_category_entropy"] = entropy
    features["hist_author_log_gap_s"] = np.log1p(author_gap)
    features["hist_author_never"] = np.isnan(author_gap).astype(np.float64)
    return features


def previous_session_features(
    user_id: np.ndarray,
    session_id: np.ndarray,
    timestamp: np.ndarray,
    update: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The user's previous session: log1p of its rows and of the seconds from its last event to
    this session's first; NaN in a user's first session (flagged by ``hist_first_session``).

    Constant within a session. Rows may come in any order; results follow it. Only the rows
    marked in ``update`` (default: all) count as events; the others (queries) get the values of
    their session.
    """
    user_id, session_id = np.asarray(user_id), np.asarray(session_id)
    timestamp = np.asarray(timestamp, dtype=np.float64)
    events = pd.DataFrame({"user": user_id, "session": session_id, "ts": timestamp})
    if update is not None:
        events["ts"] = events["ts"].where(np.asarray(update, dtype=bool))  # queries: not counted
    grouped = events.groupby(["user", "session"], sort=False)
    row_session = grouped.ngroup().to_numpy()  # the row's session, numbered as in `per`
    per = grouped.agg(n=("ts", "count"), start=("ts", "min"), end=("ts", "max")).reset_index()
    per = per.iloc[np.lexsort((per["start"].to_numpy(), per["user"].to_numpy()))]
    same_user = per["user"].eq(per["user"].shift()).to_numpy()
    prev_len = np.where(same_user, np.log1p(per["n"].shift().to_numpy()), np.nan)
    gap = per["start"].to_numpy() - per["end"].shift().to_numpy()
    prev_gap = np.where(same_user, np.log1p(np.maximum(gap, 0.0)), np.nan)
    by_session = np.empty((len(per), 2))  # back to the groups' numbering
    by_session[per.index.to_numpy()] = np.column_stack([prev_len, prev_gap])
    prev_len, prev_gap = by_session[row_session, 0], by_session[row_session, 1]
    return {
        "hist_prev_session_log_len": prev_len,
        "hist_prev_session_log_gap_s": prev_gap,
        "hist_first_session": np.isnan(prev_len).astype(np.float64),
    }


HISTORY_TYPES = {
    "hist_no_previous_event": "binary",
    "hist_last_complete": "binary",
    "hist_author_never": "binary",
    "hist_first_session": "binary",
}


def _history_group(
    cols: _Columns,
    frame: pd.DataFrame,
    items: pd.DataFrame,
    item_rows: np.ndarray,
    prior: np.ndarray,
    cfg: FeatureConfig,
) -> None:
    """History features of every row; the category is the video's first tag."""
    first_tag = np.array([t[0] if t else -1 for t in items["tags"]], dtype=np.int64)
    author_codes = pd.factorize(items["author_id"])[0]  # -1 where the author is unknown
    events = (frame["split"] != QUERY_SPLIT).to_numpy()
    history = history_features(
        frame["user_id"].to_numpy(),
        frame["timestamp"].to_numpy(),
        frame[list(HEADS)].to_numpy(),
        first_tag[item_rows],
        author_codes[item_rows],
        cfg.half_lives,
        cfg.category_half_life,
        prior,
        update=events,
    )
    history |= previous_session_features(
        frame["user_id"].to_numpy(),
        frame["session_id"].to_numpy(),
        frame["timestamp"].to_numpy(),
        update=events,
    )
    for name, values in history.items():
        cols.add(name, "history", HISTORY_TYPES.get(name, "numeric"), values)
