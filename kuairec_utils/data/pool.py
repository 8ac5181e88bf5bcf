"""The platform's log of its candidate pools (docs/design.md section 3): a file a platform keeps
beside its interaction log, which the KuaiRec release does not have and the simulated platform
writes (``candidate_pool.parquet`` beside the KuaiRec files).

One row per video the platform ranked for a session, grouped by session in increasing session
order: ``session`` (the platform's number of the session), ``user_id``, ``video_id``,
``score`` (its ranking score at the session's start) and ``timestamp`` (the showing's time, as
big_matrix.csv's ``timestamp``, for a video shown; empty for one ranked and not shown).

- ``read_pool`` reads the file and checks it, naming the file and the first bad row (counted
  from 0) of any problem;
- ``match_pool`` ties its sessions to 01's: every interaction must be a showing of the log, and
  01's sessions and the log's must be the same sessions. It returns the pools of 01's sessions
  (``data/interim/candidate_pool.parquet``), with whether each video was shown in the session
  and whether the user was shown it in an earlier one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kuairec_utils.config import kuairec_data_dir
from kuairec_utils.data.kuairec import KuaiRecFormatError

POOL_FILE = "candidate_pool.parquet"
POOL_COLUMNS = {"session": "integer", "user_id": "integer", "video_id": "integer",
                "score": "floating", "timestamp": "floating"}  # fmt: skip
INTERIM_POOL_COLUMNS = {"session_id": "int64", "video_id": "int64", "score": "float32",
                        "shown": "bool", "seen": "bool"}  # fmt: skip


def pool_path(raw_dir: str | Path) -> Path:
    """Where a release under ``raw_dir`` keeps the platform's pool log (if it has one)."""
    return kuairec_data_dir(raw_dir) / POOL_FILE


def _bad(path: Path, row: int, problem: str) -> KuaiRecFormatError:
    return KuaiRecFormatError(f"{path}: row {row} (counting from 0): {problem}")


def _first(mask: np.ndarray) -> int | None:
    rows = np.flatnonzero(mask)
    return int(rows[0]) if len(rows) else None


def read_pool(path: str | Path) -> pd.DataFrame:
    """The pool log at ``path``, checked: its columns and their types, no empty id or score,
    finite scores and times, each session's rows together in increasing session order, one user
    per session, no video twice in a session and at least one video shown in each. Raises
    ``KuaiRecFormatError`` naming the file and the first bad row."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise KuaiRecFormatError(f"{path}: not a readable parquet file ({exc})") from exc
    missing = [c for c in POOL_COLUMNS if c not in table.column_names]
    if missing:
        raise KuaiRecFormatError(
            f"{path}: missing columns {missing}; a pool log has {list(POOL_COLUMNS)}"
        )
    frame = table.select(list(POOL_COLUMNS)).to_pandas()
    for name, kind in POOL_COLUMNS.items():
        if pd.api.types.infer_dtype(frame[name], skipna=True) not in (kind, "empty") and not (
            kind == "floating" and pd.api.types.is_integer_dtype(frame[name])
        ):
            raise KuaiRecFormatError(f"{path}: column {name!r} must hold {kind} numbers")
    if frame.empty:
        raise KuaiRecFormatError(f"{path}: the pool log has no rows")
    for name in ("session", "user_id", "video_id", "score"):
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = _first(~np.isfinite(values) | ((values < 0) if name != "score" else False))
        if bad is not None:
            raise _bad(path, bad, f"{name} is {frame[name].iloc[bad]!r}, not a valid value")
    time = frame["timestamp"].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = _first(np.isinf(time))
    if bad is not None:
        raise _bad(path, bad, f"timestamp is {time[bad]}")
    session = frame["session"].to_numpy(np.int64)
    bad = _first(np.diff(session) < 0)
    if bad is not None:
        raise _bad(path, bad + 1, "sessions must come in increasing order, each one's rows together")
    start = np.r_[True, session[1:] != session[:-1]]
    user = frame["user_id"].to_numpy(np.int64)
    bad = _first(~start & (user != np.r_[user[0], user[:-1]]))
    if bad is not None:
        raise _bad(path, bad, f"session {session[bad]} holds a second user ({user[bad]})")
    twice = frame.duplicated(["session", "video_id"]).to_numpy()
    bad = _first(twice)
    if bad is not None:
        raise _bad(path, bad, f"session {session[bad]} ranks video {frame['video_id'].iloc[bad]} twice")
    shown_in = pd.Series(~np.isnan(time)).groupby(np.cumsum(start)).transform("any").to_numpy()
    bad = _first(~shown_in)
    if bad is not None:
        raise _bad(path, bad, f"session {session[bad]} shows no video (every timestamp empty)")
    return frame


def empty_interim_pool() -> pd.DataFrame:
    """01's pool table when the data has no pool log (real KuaiRec): no rows."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in INTERIM_POOL_COLUMNS.items()})


def match_pool(pool: pd.DataFrame, interactions: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The logged pools of 01's sessions: ``session_id`` (01's), ``video_id``, ``score``,
    ``shown`` (in this session) and ``seen`` (shown to the user in an earlier session of the
    log), one row per ranked video, by session then descending score.

    ``interactions``: 01's rows (``raw_row``, ``user_id``, ``video_id``, ``timestamp``,
    ``session_id``). Every one must be a showing of the log, each of 01's sessions must hold the
    showings of one logged session and each logged session's showings must lie in one of 01's
    sessions; otherwise ``KuaiRecFormatError`` names the file and the first bad row."""
    path = Path(path)
    key = ["user_id", "video_id", "timestamp"]
    shown = pool.loc[pool["timestamp"].notna(), ["session", *key]]
    twice = shown.duplicated(key).to_numpy()
    if twice.any():
        row = int(shown.index[np.flatnonzero(twice)[0]])
        raise _bad(path, row, "a showing (user, video, timestamp) logged twice")
    rows = interactions[["raw_row", "session_id", *key]].merge(
        shown.reset_index(names="pool_row"), on=key, how="left"
    )
    lost = _first(rows["session"].isna().to_numpy())
    if lost is not None:
        r = rows.iloc[lost]
        raise KuaiRecFormatError(
            f"{path}: big_matrix.csv row {int(r['raw_row'])} (user {int(r['user_id'])}, video "
            f"{int(r['video_id'])}, timestamp {r['timestamp']!r}) is no showing of the pool log: "
            "the log is not this data's"
        )
    pairs = rows[["session_id", "session", "pool_row"]].astype(np.int64)
    for one, other in (("session_id", "session"), ("session", "session_id")):
        spread = pairs.groupby(one)[other].transform("nunique").to_numpy() > 1
        bad = _first(spread)
        if bad is not None:
            raise _bad(
                path,
                int(pairs["pool_row"].iloc[bad]),
                f"01's session {pairs['session_id'].iloc[bad]} and the log's session "
                f"{pairs['session'].iloc[bad]} are not the same session (one holds showings of "
                "several of the other's): 01 must split sessions as the platform did "
                "(interactions.session_gap_minutes)",
            )
    ours = pairs.drop_duplicates("session").set_index("session")["session_id"]
    return _pool_of_sessions(pool, ours)


def _pool_of_sessions(pool: pd.DataFrame, session_id: pd.Series) -> pd.DataFrame:
    """The rows of the logged sessions in ``session_id``'s index, renamed to 01's sessions, with
    ``shown`` and ``seen`` (the user's first showing of the video came before the session's)."""
    time = pool["timestamp"]
    start = time.groupby(pool["session"]).transform("min")
    first_shown = time.groupby([pool["user_id"], pool["video_id"]]).transform("min")
    kept = pool["session"].isin(session_id.index).to_numpy()
    out = pd.DataFrame(
        {
            "session_id": session_id.loc[pool["session"][kept]].to_numpy(np.int64),
            "video_id": pool["video_id"][kept].to_numpy(np.int64),
            "score": pool["score"][kept].to_numpy(np.float32),
            "shown": time[kept].notna().to_numpy(),
            "seen": (first_shown < start)[kept].to_numpy(),
        }
    )
    order = np.lexsort((-out["score"].to_numpy(), out["session_id"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)
