"""The platform's pool log: written by the simulated platform beside the KuaiRec files (which
stay the same bytes without it), read back and checked, tied to 01's sessions, and refused,
naming the file and the first bad row, when malformed or not this data's."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCALE, TINY_SEED, tiny_params

from kuairec_utils.config import GROUND_TRUTH_SUBDIR, kuairec_data_dir
from kuairec_utils.data.interactions import InteractionsConfig, build_interactions
from kuairec_utils.data.kuairec import KuaiRecFormatError, read_table
from kuairec_utils.data.pool import POOL_COLUMNS, match_pool, pool_path, read_pool
from kuairec_utils.heads import LabelThresholds
from kuairec_utils.simulate import SimConfig, simulate


@pytest.fixture(scope="module")
def pool(tiny_sim: Path) -> pd.DataFrame:
    return read_pool(pool_path(tiny_sim))


@pytest.fixture(scope="module")
def interactions(tiny_sim: Path) -> pd.DataFrame:
    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")
    return build_interactions(big, InteractionsConfig(), LabelThresholds())[0]


def test_the_pool_log_holds_every_showing_with_the_platforms_score(
    tiny_sim: Path, pool: pd.DataFrame
) -> None:
    """Every big-matrix row (its duplicates once) is a shown video of the log, with the
    platform's score at the session's start (the truth's, to the log's six decimals); the
    other videos of a session were ranked and not shown."""
    assert list(pool.columns) == list(POOL_COLUMNS)
    truth = pd.read_parquet(tiny_sim / GROUND_TRUTH_SUBDIR / "big_matrix_truth.parquet")
    truth = truth[~truth["is_duplicate"]]
    shown = pool[pool["timestamp"].notna()]
    assert len(shown) == len(truth)
    key = ["user_id", "video_id", "timestamp"]
    both = truth[[*key, "score", "session_id"]].merge(shown, on=key, validate="one_to_one")
    assert len(both) == len(truth)
    np.testing.assert_allclose(both["score_y"], both["score_x"], atol=1e-6)
    # one logged session per simulated session, numbered by user, then start
    assert (both.groupby("session_id")["session"].nunique() == 1).all()
    starts = shown.groupby("session")[["user_id", "timestamp"]].min()
    assert (starts.sort_values(["user_id", "timestamp"]).index == np.arange(len(starts))).all()
    assert pool.groupby("session").size().min() > shown.groupby("session").size().min()


def test_the_kuairec_files_are_the_same_bytes_without_the_log(
    tiny_sim: Path, tmp_path: Path, project_params: dict
) -> None:
    params = tiny_params(project_params)
    params["simulate"] = {**params["simulate"], "candidate_pool": False}
    out = tmp_path / "raw"
    simulate(out, SimConfig.from_params(params, scale=TINY_SCALE), TINY_SEED, progress=False)
    files = sorted(p.name for p in kuairec_data_dir(tiny_sim).iterdir())
    assert sorted(p.name for p in kuairec_data_dir(out).iterdir()) == [
        f for f in files if f != "candidate_pool.parquet"
    ]
    for name in [f for f in files if f.endswith(".csv")]:
        assert (kuairec_data_dir(out) / name).read_bytes() == (
            kuairec_data_dir(tiny_sim) / name
        ).read_bytes(), name
    for name in ("big_matrix_truth.parquet", "small_matrix_truth.parquet"):
        assert (out / GROUND_TRUTH_SUBDIR / name).read_bytes() == (
            tiny_sim / GROUND_TRUTH_SUBDIR / name
        ).read_bytes(), name


def test_01_ties_the_log_to_its_sessions(
    tiny_sim: Path, pool: pd.DataFrame, interactions: pd.DataFrame
) -> None:
    logged = match_pool(pool, interactions, pool_path(tiny_sim))
    assert set(logged["session_id"]) == set(interactions["session_id"])
    # every video of a session's feed is a shown video of its pool
    feed = interactions[["session_id", "video_id"]].drop_duplicates()
    shown = logged[logged["shown"]][["session_id", "video_id"]]
    assert len(feed.merge(shown, on=["session_id", "video_id"])) == len(feed)
    # "seen": shown to the user in an earlier session of the log, which holds every session 01
    # keeps (and those it drops): a video the interactions show earlier is seen
    first = interactions.groupby(["user_id", "video_id"])["timestamp"].min().rename("first")
    start = interactions.groupby("session_id").agg(
        user_id=("user_id", "first"), t=("timestamp", "min")
    )
    rows = logged.join(start, on="session_id").join(first, on=["user_id", "video_id"])
    earlier = (rows["first"] < rows["t"]).to_numpy()
    assert earlier.any() and logged["seen"].to_numpy()[earlier].all()
    assert logged["seen"].sum() > earlier.sum()  # and those shown in sessions 01 dropped
    scores = logged["score"].to_numpy()
    sessions = logged["session_id"].to_numpy()
    assert (np.diff(sessions) >= 0).all()  # by session, then descending score
    assert (np.diff(scores)[np.diff(sessions) == 0] <= 0).all()


def _broken(pool: pd.DataFrame, tmp_path: Path, change: str) -> Path:
    """The pool log with one change, written to a file."""
    frame = pool.copy()
    row = int(np.flatnonzero(frame["session"].to_numpy() == 3)[1])  # session 3's second row
    if change == "missing column":
        frame = frame.drop(columns="score")
    elif change == "text ids":
        frame["video_id"] = frame["video_id"].astype(str)
    elif change == "empty score":
        frame.loc[row, "score"] = np.nan
    elif change == "sessions out of order":
        frame.loc[row, "session"] = 0
    elif change == "two users":
        frame.loc[row, "user_id"] = frame["user_id"].iloc[row] + 1
    elif change == "video twice":
        frame.loc[row, "video_id"] = frame["video_id"].iloc[row - 1]
    elif change == "nothing shown":
        frame.loc[frame["session"] == 3, "timestamp"] = np.nan
    path = tmp_path / "candidate_pool.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing column", "missing columns ['score']"),
        ("text ids", "'video_id' must hold integer"),
        ("empty score", "score is"),
        ("sessions out of order", "increasing order"),
        ("two users", "holds a second user"),
        ("video twice", "twice"),
        ("nothing shown", "shows no video"),
    ],
)
def test_a_malformed_log_is_refused_naming_the_file_and_row(
    pool: pd.DataFrame, tmp_path: Path, change: str, message: str
) -> None:
    path = _broken(pool, tmp_path, change)
    with pytest.raises(KuaiRecFormatError) as caught:
        read_pool(path)
    text = str(caught.value)
    assert str(path) in text and message in text, text
    if change not in ("missing column", "text ids"):  # a row's problem names the row
        first = int(np.flatnonzero(pool["session"].to_numpy() == 3)[0])
        assert f"row {first + (change != 'nothing shown')} " in text, text


def test_a_file_that_is_no_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "candidate_pool.parquet"
    path.write_text("session,user_id\n1,2\n")
    with pytest.raises(KuaiRecFormatError, match="not a readable parquet file"):
        read_pool(path)


def test_another_datas_log_is_refused(
    tiny_sim: Path, pool: pd.DataFrame, interactions: pd.DataFrame, tmp_path: Path
) -> None:
    """A showing the log lacks (a moved time), and sessions split otherwise than the
    platform's: refused, naming the file and the row."""
    moved = pool.copy()
    row = int(moved["timestamp"].notna().to_numpy().argmax())
    moved.loc[row, "timestamp"] += 1.0
    with pytest.raises(KuaiRecFormatError) as caught:
        match_pool(moved, interactions, pool_path(tiny_sim))
    assert str(pool_path(tiny_sim)) in str(caught.value) and "big_matrix.csv row" in str(
        caught.value
    )
    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")
    merged, _ = build_interactions(
        big, InteractionsConfig(session_gap_minutes=24 * 60.0), LabelThresholds()
    )
    with pytest.raises(KuaiRecFormatError, match=r"row \d+ .*session_gap_minutes"):
        match_pool(pool, merged, pool_path(tiny_sim))


def test_01_without_a_log_writes_an_empty_pool(tiny_sim: Path, tmp_path: Path) -> None:
    """The real layout (the seven files, no log, no truth): 01 runs as before, its pool table
    empty."""
    from test_notebooks import run_notebook

    raw = tmp_path / "raw"
    data = kuairec_data_dir(raw)
    data.mkdir(parents=True)
    for path in kuairec_data_dir(tiny_sim).glob("*.csv"):
        shutil.copy(path, data / path.name)
    run_notebook(
        "01_data.ipynb",
        tmp_path,
        raw_dir=str(raw),
        interim_dir=str(tmp_path / "interim"),
        metrics_dir=str(tmp_path / "metrics"),
        figures_dir=str(tmp_path / "figures"),
    )
    logged = pd.read_parquet(tmp_path / "interim" / "candidate_pool.parquet")
    assert len(logged) == 0 and list(logged.columns) == [
        "session_id", "video_id", "score", "shown", "seen"
    ]  # fmt: skip
    assert len(pd.read_parquet(tmp_path / "interim" / "interactions.parquet")) > 0
