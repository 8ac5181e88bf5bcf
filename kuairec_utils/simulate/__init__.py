"""The simulated KuaiRec platform: the embedded default data set, with its ground truth.

    python -m kuairec_utils.simulate --out data/raw --scale 0.12 --seed 20200705 [--params params.yaml]

writes ``OUT/KuaiRec 2.0/data/`` with the seven files of the KuaiRec 2.0 release (same columns,
order, formats and quirks) and ``OUT/ground_truth/`` with what the study's estimators try to
recover. The generative model is docs/design.md section 8; every constant is in ``params.yaml``
(section ``simulate``, one comment each) and is recorded in ``truth.json``.

The model, in one paragraph. Real users (their real features) and real videos (their real
categories) get latent taste vectors; a user's utility for a video is
``m_ui = bias_u + quality_i + author_a + taste_u . taste_i + habit_u(category_i) - fatigue(position)``.
Users are active on most days of three bursts and a few days between; an active day holds a few
sessions hours apart. For each session the platform draws a popularity-weighted pool of videos
available that day, scores each by ``w_true . p(u, i)`` (the four heads' true probabilities) plus
ranking noise, and shows the top K_s in score order. Showing video i gives a quick skip (play under
2 s) with probability ``sigmoid(c_s - m_ui)``, otherwise a log-normal watch_ratio whose mean rises
with m_ui and falls with the video's duration, so the heads' true probabilities are closed-form.
The session's selectivity is ``c_s = c_u + effect_true * r_(s-1) + noise``, where ``r`` is the
previous session's residual: the feed's mean true score minus that of the deterministic top K.

Where each part lives:

- ``config``: SimConfig (the constants of params.yaml), SimulationError and the fixed constants
  of the real release;
- ``world``: the users and videos with their latent parameters (World, build_world);
- ``platform``: the schedule of sessions, the heads' true probabilities and the outcomes, the
  platform's ranking and its sessions (run_platform);
- ``small_matrix``: the fully observed small matrix, shown inside the users' own sessions;
- ``release``: the side tables, the files in their real formats, and simulate(), which writes a
  release and its ground truth;
- ``calibration``: the published statistics the simulator is calibrated to.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kuairec_utils.config import KUAIREC_SIDE_DIR, load_params
from kuairec_utils.simulate.config import (
    BEIJING_UTC_OFFSET_S,
    COLLECT_FIRST_DATE,
    DAY_S,
    DEGREES,
    FULL_USERS,
    FULL_VIDEOS,
    MAX_WATCH_RATIO,
    REF_DURATION_S,
    SimConfig,
    SimulationError,
)
from kuairec_utils.simulate.platform import (
    Schedule,
    burst_days,
    draw_outcomes,
    head_probabilities,
    ranking_score,
    run_platform,
    schedule_sessions,
    static_utility,
)
from kuairec_utils.simulate.release import (
    check_output_dir,
    simulate,
    simulate_item_daily_features,
    simulate_social_network,
)
from kuairec_utils.simulate.small_matrix import simulate_small_matrix
from kuairec_utils.simulate.world import World, build_world

__all__ = [
    "BEIJING_UTC_OFFSET_S",
    "COLLECT_FIRST_DATE",
    "DAY_S",
    "DEGREES",
    "FULL_USERS",
    "FULL_VIDEOS",
    "KUAIREC_SIDE_DIR",
    "MAX_WATCH_RATIO",
    "REF_DURATION_S",
    "Schedule",
    "SimConfig",
    "SimulationError",
    "World",
    "build_world",
    "burst_days",
    "check_output_dir",
    "draw_outcomes",
    "head_probabilities",
    "main",
    "ranking_score",
    "run_platform",
    "schedule_sessions",
    "simulate",
    "simulate_item_daily_features",
    "simulate_small_matrix",
    "simulate_social_network",
    "static_utility",
]


def main(argv: list[str] | None = None) -> int:
    """The command line: simulate a release into --out; 2 on a bad parameter or folder."""
    parser = argparse.ArgumentParser(
        prog="python -m kuairec_utils.simulate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write (new or empty)")
    parser.add_argument("--scale", type=float, help="1.0 = full KuaiRec; default from params")
    parser.add_argument("--seed", type=int, help="random seed; default: params.yaml seed")
    parser.add_argument("--params", type=Path, help="params file (default: the project's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params) if args.params else load_params()
        cfg = SimConfig.from_params(params, scale=args.scale)
        seed = args.seed if args.seed is not None else params.get("seed", 0)
        summary = simulate(args.out, cfg, seed, progress=not args.no_progress)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0
