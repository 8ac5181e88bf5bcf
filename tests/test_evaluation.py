"""Evaluation helpers that read the simulator's ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kuairec_utils.evaluation.truth import true_candidate_probabilities
from kuairec_utils.heads import HEADS


def test_true_candidate_probabilities_are_the_platforms_ranking_probabilities(
    tiny_sim: Path,
) -> None:
    import json

    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    w_true = json.loads((tiny_sim / "ground_truth" / "truth.json").read_text())["w_true"]
    rows = truth[~truth["is_duplicate"]]
    opening_rows = rows[rows["position"] == 0]  # a truth row's index is its big-matrix row
    first_row = pd.Series(opening_rows.index, index=opening_rows["session_id"].to_numpy())
    got = true_candidate_probabilities(
        tiny_sim,
        rows["user_id"].to_numpy(),
        rows["video_id"].to_numpy(),
        first_row.loc[rows["session_id"].to_numpy()].to_numpy(),
    )
    # every shown video: w_true times them is the platform's ranking score (habit included)
    score = got @ np.array([w_true[h] for h in HEADS])
    assert np.allclose(score, rows["score"].to_numpy(), atol=1e-9)
    # and a user's first video (no habit, no fatigue) has its row's own probabilities
    first_session = rows.groupby("user_id")["session_id"].transform("min")
    opening = ((rows["session_id"] == first_session) & (rows["position"] == 0)).to_numpy()
    expected = rows[[f"p_{h}" for h in HEADS]].to_numpy()[opening]
    assert opening.sum() > 20 and np.allclose(got[opening], expected, atol=1e-9)


def test_true_candidate_probabilities_in_chunks_equal_one_pass(
    tiny_sim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kuairec_utils.evaluation.truth as evaluation

    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    rows = truth[~truth["is_duplicate"]]
    opening_rows = rows[rows["position"] == 0]
    first_row = pd.Series(opening_rows.index, index=opening_rows["session_id"].to_numpy())
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(rows), 5_000)
    args = (
        tiny_sim,
        rows["user_id"].to_numpy()[pick],
        rng.choice(rows["video_id"].unique(), len(pick)),  # any video, not only the shown one
        first_row.loc[rows["session_id"].to_numpy()[pick]].to_numpy(),
    )
    for selectivity in ("session", "user"):
        monkeypatch.setattr(evaluation, "TRUE_PROBABILITY_CHUNK", 1 << 30)
        whole = evaluation.true_candidate_probabilities(*args, selectivity=selectivity)
        monkeypatch.setattr(evaluation, "TRUE_PROBABILITY_CHUNK", 777)  # 7 chunks, one partial
        chunked = evaluation.true_candidate_probabilities(*args, selectivity=selectivity)
        assert whole.shape == (len(pick), len(HEADS)) and np.isfinite(whole).all()
        assert np.array_equal(whole, chunked)  # bit for bit


def test_habit_replayed_from_earlier_sessions_is_the_next_sessions_habit(tiny_sim: Path) -> None:
    from kuairec_utils.evaluation.truth import (
        HABIT_COLUMNS,
        habit_at,
        habit_records,
        simulated_world,
    )

    cfg, world = simulated_world(tiny_sim)
    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    raw = pd.read_csv(tiny_sim / "KuaiRec 2.0" / "data" / "big_matrix.csv")
    keep = ~truth["is_duplicate"].to_numpy()
    records = habit_records(
        cfg, world, truth.loc[keep, HABIT_COLUMNS], raw["play_duration"].to_numpy()[keep]
    )
    user, category = records["user"].to_numpy(), records["category"].to_numpy()
    session = records["session"].to_numpy()
    # a record's own habit, from the earlier records only (the EMA replayed, the baseline solved)
    replayed = habit_at(records, user, category, session, later=False)
    earlier = records.duplicated(["user", "category"], keep="first").to_numpy()
    assert earlier.sum() > 50 and (np.abs(records["habit"].to_numpy()[earlier]) > 1e-3).mean() > 0.5
    assert np.allclose(replayed[earlier], records["habit"].to_numpy()[earlier], atol=1e-9)
    assert np.array_equal(replayed[~earlier], np.zeros((~earlier).sum()))
    # with the later records: the record itself
    assert np.allclose(habit_at(records, user, category, session), records["habit"], atol=0)


def _shown_rows(tiny_sim: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The tiny simulation's truth, truth.json and its non-duplicate rows in the study's layout."""
    import json

    truth = pd.read_parquet(tiny_sim / "ground_truth" / "big_matrix_truth.parquet")
    meta = json.loads((tiny_sim / "ground_truth" / "truth.json").read_text())
    raw = pd.read_csv(tiny_sim / "KuaiRec 2.0" / "data" / "big_matrix.csv")
    keep = np.flatnonzero(~truth["is_duplicate"].to_numpy())
    rows = pd.DataFrame(
        {
            "raw_row": keep,
            "user_id": truth["user_id"].to_numpy()[keep],
            "session_id": truth["session_id"].to_numpy()[keep],
            "position": truth["position"].to_numpy()[keep],
            "video_duration_ms": raw["video_duration"].to_numpy()[keep],
            "negative": (raw["play_duration"].to_numpy()[keep] < 2000).astype(int),
        }
    )
    return truth, rows, meta


def test_oracles_without_the_shock_learn_only_from_earlier_rows(tiny_sim: Path) -> None:
    from kuairec_utils.evaluation.truth import shock_free_oracles

    truth, rows, meta = _shown_rows(tiny_sim)
    base = shock_free_oracles(truth, meta, rows)
    learnt = base["c learnt in the session"]
    assert learnt.shape == (len(rows), 4) and np.isfinite(learnt).all()
    # one session: flipping its last row's label changes none of its predictions (nothing comes
    # after it), flipping its first row's label changes every later row and not the first
    sizes = rows.groupby("session_id").size()
    session = sizes.index[np.argmax(sizes.to_numpy() >= 5)]
    where = np.flatnonzero(rows["session_id"].to_numpy() == session)
    where = where[np.argsort(rows["position"].to_numpy()[where])]
    for flipped, unchanged, changed in ((where[-1], where, []), (where[0], where[:1], where[1:])):
        other = rows.copy()
        other.loc[flipped, "negative"] = 1 - other.loc[flipped, "negative"]
        again = shock_free_oracles(truth, meta, other)["c learnt in the session"]
        assert np.allclose(again[unchanged], learnt[unchanged], atol=1e-12)
        if len(changed):
            assert (np.abs(again[changed] - learnt[changed]).max(axis=1) > 1e-6).all()
            # a negative so far points to a higher c_s: a higher P(negative) for every later row
            up = 1 if other.loc[flipped, "negative"] == 1 else -1
            assert (up * (again[changed, 3] - learnt[changed, 3]) > 0).all()
        outside = rows["session_id"].to_numpy() != session
        assert np.array_equal(again[outside], learnt[outside])


def test_oracle_at_the_user_mean_is_the_truth_when_c_does_not_vary(tiny_sim: Path) -> None:
    from kuairec_utils.evaluation.truth import shock_free_oracles

    truth, rows, meta = _shown_rows(tiny_sim)
    truth = truth.copy()
    # every session of a user at the user's first session's c: the user's mean is c_s itself
    first_c = truth.groupby("user_id")["selectivity"].transform("first")
    truth["selectivity"] = first_c
    got = shock_free_oracles(truth, meta, rows)
    # the truth's probabilities used each session's own c; recompute them at the common c
    from kuairec_utils.evaluation.truth import simulator_config
    from kuairec_utils.simulate import head_probabilities

    cfg = simulator_config(meta)
    raw_row = rows["raw_row"].to_numpy()
    at_c = head_probabilities(
        cfg,
        truth["utility"].to_numpy()[raw_row],
        first_c.to_numpy()[raw_row],
        rows["video_duration_ms"].to_numpy().astype(float),
    )[0]
    assert np.allclose(got["user mean c"], at_c, atol=1e-12)
    # no within-user spread of c_s: nothing to learn in the session
    assert np.allclose(got["c learnt in the session"], at_c, atol=1e-12)
