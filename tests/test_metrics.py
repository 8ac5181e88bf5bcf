"""The metrics writer: floats at six significant digits, one place; records compared at that
precision."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kuairec_utils.metrics import disagreements, leaves, rounded, write_metrics


def test_floats_are_rounded_to_six_significant_digits_everywhere() -> None:
    record = {
        "auc": 0.8801234567,
        "nested": {"w": [0.2169384, -0.000444811234], "ci95": (1.0, 12345678.9)},
        "n": 45284,
        "converged": True,
        "name": "gnn_h64",
        "missing": None,
        "nan": float("nan"),
        "inf": float("-inf"),
    }
    out = rounded(record)
    assert out["auc"] == 0.880123
    assert out["nested"] == {"w": [0.216938, -0.000444811], "ci95": [1.0, 12345700.0]}
    assert out["n"] == 45284 and out["converged"] is True and isinstance(out["n"], int)
    assert out["name"] == "gnn_h64" and out["missing"] is None
    assert math.isnan(out["nan"]) and out["inf"] == float("-inf")
    assert rounded(np.float64(1 / 3)) == 0.333333  # numpy's float64 is a float


def test_last_bits_that_differ_between_cpus_write_the_same_figure() -> None:
    value = 0.27022738787984757  # two CPUs' values of one standard error (seen: 2.6e-10 apart)
    assert rounded(value) == rounded(0.27022738780823224) == 0.270227


def test_write_metrics_writes_rounded_indented_json(tmp_path: Path) -> None:
    path = write_metrics(tmp_path / "deep" / "auc.json", {"mean": 2 / 3, "k": 10})
    assert path.read_text() == '{\n  "mean": 0.666667,\n  "k": 10\n}\n'


def test_a_value_json_cannot_hold_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "weights.json"
    path.write_text('{"w": 1}\n')
    with pytest.raises(TypeError, match="ndarray"):
        write_metrics(path, {"w": np.array([0.1, 0.2])})
    assert json.loads(path.read_text()) == {"w": 1}


def test_leaves_are_dotted_paths() -> None:
    assert dict(leaves({"a": {"b": [1, {"c": 2}]}, "d": 3})) == {"a.b[0]": 1, "a.b[1].c": 2, "d": 3}


def test_records_agree_to_their_last_written_digit_and_no_further() -> None:
    first = {"auc": 0.880123, "se": 1.23457e-5, "n": 10, "name": "x", "ci": [0.1, 0.2]}
    assert disagreements(first, dict(first)) == []
    # one unit in the sixth digit: rounding on either side of a boundary
    assert disagreements(first, {**first, "auc": 0.880124, "se": 1.23456e-5}) == []
    moved = {**first, "auc": 0.880126, "n": 11, "name": "y", "ci": [0.1, 0.21]}
    assert disagreements(first, moved) == ["auc", "ci[1]", "n", "name"]
    assert disagreements(first, {**first, "extra": 1}) == ["extra"]
    assert disagreements({"x": 1e-13}, {"x": 3e-13}) == []  # below the floor: no information
    assert disagreements({"x": float("nan")}, {"x": float("nan")}) == []
    assert disagreements({"x": float("nan")}, {"x": 0.5}) == ["x"]
