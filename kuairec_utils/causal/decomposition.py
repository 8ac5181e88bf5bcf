"""The causal step's gap taken apart (docs/design.md section 7): 06's residual measured from every
combination of what is known, and 06's regressions on each.

Four ingredients, each at the levels the data allow (``LEVELS``):

- the candidates: 05's ``sampled`` set (the feed and videos drawn by that day's shows, as 06) or
  the platform's ``logged`` pool (when the data has its log);
- the head weights: an estimate (``plain``, the study's, or ``selection``) or the ``true`` ones;
- the probabilities: the ``value model``'s or the ``true`` ones;
- the selectivity: 06's ``estimated`` c_s or the ``true`` one.

On the logged pool the true weights with the true probabilities are the platform's own logged
scores, which its log holds: that residual needs no truth. Every other true level is the
simulator's and enters the evaluation only (``kuairec_utils.evaluation.decomposition`` reads it).
Each cell runs 06's naive, instrumented (the split halves) and placebo regressions, with standard
errors clustered by user (``regressions.WithinDesign``), on each value-model seed; ``pool_cells`` pools them by
Rubin's rules and ``gap_shares`` says how much of the gap to a reference each ingredient closes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

import numba
import numpy as np
import pandas as pd

from kuairec_utils.causal.regressions import CONTROLS, WithinDesign, session_lag
from kuairec_utils.causal.residuals import split_candidates
from kuairec_utils.head_weights.moments import to_l1_sphere
from kuairec_utils.uncertainty import pool

INGREDIENTS: tuple[str, ...] = ("candidates", "weights", "probabilities", "selectivity")
LEVELS: dict[str, tuple[str, ...]] = {
    "candidates": ("sampled", "logged"),
    "weights": ("plain", "selection", "true"),
    "probabilities": ("value model", "true"),
    "selectivity": ("estimated", "true"),
}
SELECTIVITY = {"estimated": ("c", "precision"), "true": ("true_c", None)}  # outcome, weights
REGRESSIONS = ("effect", "effect_iv", "placebo")


class CandidateSet:
    """One candidate set of every session, kept as its valid candidates only, in row order:
    the ``valid`` mask of the padded (S, C) layout (the observed feed in slots 0..K_s-1), the
    valid candidates' rows of the model's videos ``items`` (n,), its two halves
    (``split_candidates`` with ``seed``, as 06 splits them) and, for a logged pool, the
    platform's logged scores (n,). ``set_probabilities`` adds the probabilities of a level
    (``value model``, and ``true`` in the evaluation)."""

    def __init__(
        self,
        valid: np.ndarray,
        items: np.ndarray,
        k: np.ndarray,
        seed: int,
        logged: np.ndarray | None = None,
    ) -> None:
        self.rows, self.slots = np.nonzero(valid)
        self.items = np.asarray(items)
        if len(self.items) != len(self.rows):
            raise ValueError(f"{len(self.items)} items for {len(self.rows)} valid candidates")
        self.offsets = np.searchsorted(self.rows, np.arange(len(valid) + 1))
        self.k = np.minimum(k, valid.sum(axis=1)).astype(np.int64)
        self.halves = tuple(h[valid] for h in split_candidates(valid, k, seed))
        self.logged = None if logged is None else np.asarray(logged, dtype=np.float64)
        self.probs: dict[str, np.ndarray] = {}

    def set_probabilities(self, level: str, probs: np.ndarray) -> None:
        """The probabilities of ``level``: (n, 4) for the valid candidates, or (S, C, 4) in the
        padded layout."""
        if probs.ndim == 3:
            probs = probs[self.rows, self.slots]
        self.probs[level] = np.ascontiguousarray(probs, dtype=np.float64)

    def score(self, weights: str, w: np.ndarray | None, probabilities: str) -> np.ndarray | None:
        """Every candidate's score under a cell's weights and probabilities, or None where the
        data do not give it: on a logged pool, the true weights with the true probabilities
        are the logged scores."""
        if (weights, probabilities) == ("true", "true") and self.logged is not None:
            return self.logged
        probs = self.probs.get(probabilities)
        if w is None or probs is None:
            return None
        return probs @ to_l1_sphere(w)


@numba.njit(cache=True)
def _top_sum(values, n, top):  # noqa: ANN001 (numba)
    """The sum of the ``top`` largest of ``values[:n]`` (reordered in place): a quickselect
    puts them in ``values[n - top:n]``, in plain loops that compile in a moment."""
    target, lo, hi = n - top, 0, n - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:  # values[j + 1:i] all equal the pivot
            break
    total = 0.0
    for e in range(target, n):
        total += values[e]
    return total


@numba.njit(cache=True, parallel=True)
def _feed_residuals(score, offsets, slots, k, half_a):  # noqa: ANN001 (numba)
    """Per session (in parallel; each row alone, so the same bits on any thread count): the
    residual on every valid candidate and on each half (the feed and the others ``half_a``
    marks, or does not): the observed feed's mean score (its candidates in slots 0..k-1)
    minus the mean of the ``min(k, kept)`` largest kept scores."""
    out = np.zeros((len(k), 3))
    for i in numba.prange(len(k)):
        lo, hi = offsets[i], offsets[i + 1]
        every, a, b = np.empty(hi - lo), np.empty(hi - lo), np.empty(hi - lo)
        n, n_a, n_b, observed = 0, 0, 0, 0.0
        for e in range(lo, hi):
            every[n] = score[e]
            n += 1
            if slots[e] < k[i]:  # the feed is in both halves
                observed += score[e]
                a[n_a], b[n_b] = score[e], score[e]
                n_a, n_b = n_a + 1, n_b + 1
            elif half_a[e]:
                a[n_a] = score[e]
                n_a += 1
            else:
                b[n_b] = score[e]
                n_b += 1
        for j, (values, m) in enumerate(((every, n), (a, n_a), (b, n_b))):
            top = min(k[i], m)
            if top > 0:
                out[i, j] = (observed - _top_sum(values, m, top)) / k[i]
    return out


def measured_residuals(candidates: CandidateSet, score: np.ndarray) -> pd.DataFrame:
    """``residual`` (06's: the observed feed's mean score minus that of the top K_s of the
    valid candidates) and the two halves' measurements ``residual_a``, ``residual_b``, from
    every valid candidate's ``score``."""
    c = candidates
    out = _feed_residuals(score, c.offsets, c.slots, c.k, c.halves[0])
    return pd.DataFrame(out, columns=["residual", "residual_a", "residual_b"])


def regression_designs(
    sessions: pd.DataFrame, selectivity: Mapping[str, tuple[str, str | None]]
) -> dict[tuple[str, int], tuple[WithinDesign, np.ndarray, np.ndarray]]:
    """For each selectivity (name -> outcome, weights) and lag (1: r(s-1), -1: r(s+1)), the
    fixed-effects design on the sessions that have that lag (``session_lag``), the rows it
    holds and, for each, the row of its adjacent session."""
    at = sessions.assign(at=np.arange(len(sessions), dtype=np.float64))
    out = {}
    for lag in (1, -1):
        adjacent = session_lag(at, "at", lag)
        rows = ~np.isnan(adjacent)
        for name, (_, weights) in selectivity.items():
            design = WithinDesign(sessions, CONTROLS, weights, rows)
            out[(name, lag)] = (design, rows, adjacent[rows].astype(np.int64))
    return out


def cell_regressions(
    sessions: pd.DataFrame,
    residuals: pd.DataFrame,
    selectivity: Mapping[str, tuple[str, str | None]],
    designs: Mapping[tuple[str, int], tuple[WithinDesign, np.ndarray, np.ndarray]],
) -> dict[str, dict[str, float]]:
    """06's regressions on one measured residual, for each selectivity: the naive effect of
    r(s-1), r_a(s-1) instrumented by r_b(s-1), and the placebo r(s+1), each with its clustered
    se (``designs``: ``regression_designs``)."""
    r = {c: residuals[c].to_numpy() for c in residuals}
    out = {}
    for name, (outcome, _) in selectivity.items():
        y = sessions[outcome].to_numpy(np.float64)
        prev, rows, before = designs[(name, 1)]
        nxt, next_rows, after = designs[(name, -1)]
        fits = {
            "effect": prev.effect(y[rows], r["residual"][before]),
            "effect_iv": prev.effect(y[rows], r["residual_a"][before], r["residual_b"][before]),
            "placebo": nxt.effect(y[next_rows], r["residual"][after]),
        }
        out[name] = {n: f["effect"] for n, f in fits.items()}
        out[name] |= {f"{n}_se": f["se"] for n, f in fits.items()}
    return out


def within_user_corr(users: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The correlation of ``a`` and ``b`` within users (each demeaned by its user's mean;
    ``users``: 0..U-1 codes): the variation the fixed-effects regression uses."""
    n = np.bincount(users)
    centred = [v - (np.bincount(users, weights=v) / n)[users] for v in (a, b)]
    return float(np.corrcoef(*centred)[0, 1])


def decompose_seed(
    sessions: pd.DataFrame,
    candidate_sets: Mapping[str, CandidateSet],
    weights: Mapping[str, np.ndarray | None],
    true_residual: np.ndarray | None = None,
    shared: dict[str, pd.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """Every cell the data allow, on one value-model seed's run: ``sessions`` is 06's session
    table in ``session_feeds`` order with the controls (``regressions.session_controls``), ``c`` and
    ``precision`` (and ``true_c`` in the evaluation); ``candidate_sets`` by candidates' level,
    ``weights`` by weights' level, in the table's order (None: unknown). A cell's record holds its four levels, the
    three effects with their se and (with ``true_residual``) the measured residual's
    within-user correlation with it. ``shared`` keeps the residuals that are the same on every
    seed (true weights with true probabilities) from one seed's call to the next."""
    selectivity = {n: v for n, v in SELECTIVITY.items() if v[0] in sessions}
    designs = regression_designs(sessions, selectivity)
    cells = []
    for cand, wname, pname in product(LEVELS["candidates"], weights, LEVELS["probabilities"]):
        if cand not in candidate_sets:
            continue
        score = candidate_sets[cand].score(wname, weights.get(wname), pname)
        if score is None:
            continue
        if shared is not None and (wname, pname) == ("true", "true"):
            if cand not in shared:
                shared[cand] = measured_residuals(candidate_sets[cand], score)
            residuals = shared[cand]
        else:
            residuals = measured_residuals(candidate_sets[cand], score)
        corr = None
        if true_residual is not None:
            users = pd.factorize(sessions["user_id"])[0]
            corr = within_user_corr(users, residuals["residual"].to_numpy(), true_residual)
        regressions = cell_regressions(sessions, residuals, selectivity, designs)
        for sname, fits in regressions.items():
            levels = dict(zip(INGREDIENTS, (cand, wname, pname, sname), strict=True))
            cells.append(levels | fits | {"corr_true_within_user": corr})
    return cells


def cell_key(cell: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(cell[n] for n in INGREDIENTS)


def steady(values: Sequence[float]) -> list[float]:
    """The seeds' estimates of a cell whose ingredients are all the truth's are one number up to
    the arithmetic's last bits (which move with the arrays' memory alignment): as that number,
    lest its rounding noise pass for a spread across seeds."""
    values = [float(v) for v in values]
    if max(values) - min(values) <= 1e-12 * max(1.0, *map(abs, values)):
        return [values[0]] * len(values)
    return values


def pool_cells(runs: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Each cell's effects over the value-model seeds (``decompose_seed``'s records by seed),
    pooled by Rubin's rules (the clustered se within run), and its mean within-user
    correlation with the true residual."""
    by_key: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for cells in runs.values():
        for cell in cells:
            by_key.setdefault(cell_key(cell), []).append(cell)
    out = []
    for key, cells in by_key.items():
        record: dict[str, Any] = dict(zip(INGREDIENTS, key, strict=True))
        for name in REGRESSIONS:
            pooled = pool(
                steady([c[name] for c in cells]), steady([c[f"{name}_se"] for c in cells])
            )
            record[name] = pooled.record()
        corr = [c["corr_true_within_user"] for c in cells if c["corr_true_within_user"] is not None]
        record["corr_true_within_user"] = float(np.mean(corr)) if corr else None
        out.append(record)
    return out


def find_cell(cells: Sequence[Mapping[str, Any]], **levels: str) -> Mapping[str, Any] | None:
    """The pooled cell at the given levels (every ingredient named), or None."""
    key = tuple(levels[n] for n in INGREDIENTS)
    return next((c for c in cells if cell_key(c) == key), None)


def gap_shares(
    cells: Sequence[Mapping[str, Any]],
    start: Mapping[str, str],
    end: Mapping[str, str],
    target: float,
    estimate: str = "effect",
) -> dict[str, Any]:
    """How much of the gap between the ``start`` cell's ``estimate`` and ``target`` each
    ingredient closes, moving it from its ``start`` level to its ``end`` level one at a time,
    in ``INGREDIENTS`` order and in the reverse order (the parts interact, so the two may
    differ); ``left`` is the share the ``end`` cell still misses. None where a cell on the path
    is missing."""
    first = find_cell(cells, **start)
    if first is None:
        return {}
    base = first[estimate]["mean"]
    gap = target - base
    out: dict[str, Any] = {"start": base, "target": target}
    for order, names in (("fixed order", INGREDIENTS), ("reverse order", INGREDIENTS[::-1])):
        levels, before, steps = dict(start), base, {}
        for name in names:
            levels[name] = end[name]
            cell = find_cell(cells, **levels)
            if cell is None:
                steps = None
                break
            after = cell[estimate]["mean"]
            steps[name] = {"effect": after, "share": (after - before) / gap}
            before = after
        out[order] = steps
    last = find_cell(cells, **end)
    out["left"] = (target - last[estimate]["mean"]) / gap if last is not None else None
    return out


def cell_table(cells: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per cell (indexed by its four levels): the naive, instrumented and placebo
    effects pooled over the seeds with their combined se, the naive effect's spread across
    seeds and the measured residual's within-user correlation with the true one."""
    rows = []
    for cell in cells:
        row: dict[str, Any] = {n: cell[n] for n in INGREDIENTS}
        for name in REGRESSIONS:
            row[name], row[f"{name} se"] = cell[name]["mean"], cell[name]["se"]
        row["effect sd over seeds"] = cell["effect"]["sd_seeds"]
        row["corr with true r"] = cell["corr_true_within_user"]
        rows.append(row)
    return pd.DataFrame(rows).set_index(list(INGREDIENTS)).astype(float).round(3)


def pool_reference(runs: Mapping[int, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """The regressions on the simulator's residual (``simulator_residual_effects`` by seed),
    pooled over the seeds: for each selectivity, the effect and the placebo."""
    first = next(iter(runs.values()))
    return {
        selectivity: {
            name: pool(
                steady([r[selectivity][name] for r in runs.values()]),
                steady([r[selectivity][f"{name}_se"] for r in runs.values()]),
            ).record()
            for name in ("effect", "placebo")
        }
        for selectivity in first
    }


def targets(
    cells: Sequence[Mapping[str, Any]], effect_true: float, estimator: str
) -> dict[str, Any]:
    """The cells the study's question turns on, their naive effect's distance from
    ``effect_true`` in combined standard errors: every true ingredient (the method's check:
    within 1 se), the platform's (its logged pool and scores, 06's c_s: within 2 se), and the
    outside researcher's with the logged pool and with sampled candidates."""
    named = {
        "every true ingredient": ("logged", "true", "true", "true", 1.0),
        "the platform (its pool and scores, estimated c_s)": (
            "logged", "true", "true", "estimated", 2.0
        ),
        "outside researcher, logged pool": ("logged", estimator, "value model", "estimated", None),
        "outside researcher, sampled candidates": (
            "sampled", estimator, "value model", "estimated", None
        ),
    }  # fmt: skip
    out = {}
    for name, (*levels, allowed) in named.items():
        cell = find_cell(cells, **dict(zip(INGREDIENTS, levels, strict=True)))
        if cell is None:
            continue
        effect, se = cell["effect"]["mean"], cell["effect"]["se"]
        out[name] = {"effect": effect, "se": se, "distance_in_se": (effect - effect_true) / se}
        if allowed is not None:
            out[name][f"within_{allowed:g}_se"] = bool(abs(effect - effect_true) <= allowed * se)
    return out


def share_table(shares: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The shares of the gap each ingredient closes (``gap_shares`` of each estimate), in the
    fixed and the reverse order, with what the last cell still misses."""
    columns = {}
    for estimate, record in shares.items():
        for order in ("fixed order", "reverse order"):
            steps = record.get(order) or {}
            columns[(estimate, order)] = {n: s["share"] for n, s in steps.items()}
            columns[(estimate, order)]["left"] = record.get("left")
    return pd.DataFrame(columns).reindex([*INGREDIENTS, "left"]).astype(float).round(3)
