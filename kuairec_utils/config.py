"""Where things live: the one place that knows the project's paths.

Paths resolve from this file, so they are the same from JupyterLab, papermill and DVC, whatever
the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

PROJ_ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = PROJ_ROOT / "params.yaml"

DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"  # immutable input: real or simulated KuaiRec 2.0 layout
INTERIM_DIR = DATA_DIR / "interim"
PROCESSED_DIR = DATA_DIR / "processed"
EXTERNAL_DIR = DATA_DIR / "external"  # files shipped with the repository
KUAIREC_SIDE_DIR = EXTERNAL_DIR / "kuairec"  # the three real KuaiRec side files
MODELS_DIR = PROJ_ROOT / "models"
METRICS_DIR = PROJ_ROOT / "metrics"
REPORTS_DIR = PROJ_ROOT / "reports"

# Inside an unpacked KuaiRec release (or the simulator's output) the files sit here.
KUAIREC_DATA_SUBDIR = Path("KuaiRec 2.0") / "data"
GROUND_TRUTH_SUBDIR = Path("ground_truth")  # simulated data only


def kuairec_data_dir(root: str | Path = RAW_DIR) -> Path:
    """The folder holding the seven csv files of a release unpacked (or simulated) under ``root``."""
    return Path(root) / KUAIREC_DATA_SUBDIR


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """``params.yaml`` as a dict (one section per stage), read as YAML 1.2 the way DVC reads
    it: ``dvc exp run -S`` rewrites the file and drops quotes, and a bare ``yes`` must stay the
    text "yes" (YAML 1.1 readers such as PyYAML turn it into True)."""
    with open(path, encoding="utf-8") as f:
        params = YAML(typ="safe", pure=True).load(f)
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def resolve(path: str | Path) -> Path:
    """A path from a notebook parameter: relative paths are relative to the project root."""
    path = Path(path)
    return path if path.is_absolute() else PROJ_ROOT / path
