"""Shared fixtures: a tiny simulated KuaiRec release, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuairec_utils.config import load_params
from kuairec_utils.simulate import SimConfig, simulate

TINY_SCALE = 0.01  # 72 users, ~1,070 videos, ~120k big-matrix rows: seconds to simulate
TINY_SEED = 7


@pytest.fixture(scope="session")
def project_params() -> dict:
    return load_params()


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory: pytest.TempPathFactory, project_params: dict) -> Path:
    """Root of a tiny simulated release: ``KuaiRec 2.0/data/`` and ``ground_truth/``."""
    out = tmp_path_factory.mktemp("tiny") / "raw"
    cfg = SimConfig.from_params(project_params, scale=TINY_SCALE)
    simulate(out, cfg, TINY_SEED, progress=False)
    return out
