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


def test_01_data_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    run_notebook(
        "01_data.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        interim_dir=str(tmp_path / "interim"),
        metrics_dir=str(tmp_path / "metrics"),
        figures_dir=str(tmp_path / "figures"),
    )
    summary = json.loads((tmp_path / "metrics" / "data.json").read_text())
    assert set(summary["n_interactions"]) == {"train", "val", "test"}
    assert all(n > 0 for n in summary["n_interactions"].values())
    assert len(summary["bursts"]) == 3
    assert (tmp_path / "interim" / "interactions.parquet").exists()
    assert (tmp_path / "figures" / "01_daily_volume.png").exists()


def test_02_features_notebook(tiny_sim: Path, tmp_path: Path) -> None:
    import pandas as pd

    from kuairec_utils.config import kuairec_data_dir
    from kuairec_utils.dataset import InteractionsConfig, build_interactions
    from kuairec_utils.heads import LabelThresholds
    from kuairec_utils.kuairec import read_table

    big = read_table(kuairec_data_dir(tiny_sim), "big_matrix")  # what 01_data writes
    interactions, _ = build_interactions(big, InteractionsConfig(), LabelThresholds())
    (tmp_path / "interim").mkdir()
    interactions.to_parquet(tmp_path / "interim" / "interactions.parquet")
    run_notebook(
        "02_features.ipynb",
        tmp_path,
        raw_dir=str(tiny_sim),
        interim_dir=str(tmp_path / "interim"),
        processed_dir=str(tmp_path / "processed"),
        figures_dir=str(tmp_path / "figures"),
    )
    manifest = json.loads((tmp_path / "processed" / "features.json").read_text())
    names = [f["name"] for f in manifest["features"]]
    assert {f["group"] for f in manifest["features"]} == {"user", "item", "context", "history"}
    n_rows = 0
    for split in ("train", "val", "test"):
        part = pd.read_parquet(tmp_path / "processed" / f"{split}.parquet")
        assert list(part.columns) == manifest["id_columns"] + manifest["label_columns"] + names
        assert (part["split"] == split).all() and part[names].notna().all().all()
        n_rows += len(part)
    assert n_rows == len(interactions)
    assert (tmp_path / "figures" / "02_features.png").stat().st_size > 10_000
