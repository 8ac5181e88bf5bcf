"""The real notebooks, run headlessly by papermill on the tiny simulated data set."""

from __future__ import annotations

import json
from pathlib import Path

import papermill as pm
import pytest

from kuairec_utils.config import PROJ_ROOT

KERNEL = "kuairec"
pytestmark = pytest.mark.slow


def run_notebook(name: str, out_dir: Path, **parameters: object) -> dict:
    """Execute notebooks/<name> into out_dir with papermill; return the executed notebook."""
    out = out_dir / name
    pm.execute_notebook(
        str(PROJ_ROOT / "notebooks" / name),
        str(out),
        parameters=parameters,
        kernel_name=KERNEL,
        progress_bar=False,
        cwd=str(out_dir),
    )
    return json.loads(out.read_text())


def test_00_simulator_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    nb = run_notebook(
        "00_simulator.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        metrics_dir=str(tmp_path / "metrics"),
        figures_dir=str(tmp_path / "figures"),
    )
    table = json.loads((tmp_path / "metrics" / "calibration.json").read_text())
    assert table["exact duplicate share"]["data"] == pytest.approx(0.0773, abs=0.002)
    assert (tmp_path / "figures" / "00_calibration.png").stat().st_size > 10_000
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "w_true" in printed and "effect_true" in printed  # the ground-truth section ran
