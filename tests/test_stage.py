"""The stage runner: a notebook's parameters come whole from params.yaml's sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuairec_utils.config import PROJ_ROOT, load_params
from kuairec_utils.stage import (
    main,
    notebook_parameters,
    parse_value,
    stage_parameters,
    strip_volatile,
)


def test_a_notebooks_parameters_and_their_defaults() -> None:
    declared = notebook_parameters(PROJ_ROOT / "notebooks" / "04_gnn.ipynb")
    assert declared["hidden"] == 64 and declared["processed_dir"] == "data/processed"
    assert declared["arch"] == "gcn" and "sizes" not in declared


def test_sections_are_handed_over_whole_then_the_overrides() -> None:
    declared = {"hidden": 64, "lr": 0.1, "seed": 0, "processed_dir": "x"}
    params = {"seed": 7, "gnn": {"hidden": 64, "sizes": [64, 128], "lr": 0.008}}
    got = stage_parameters(declared, params, ["gnn", "seed"], {"hidden": 128})
    assert got == {"hidden": 128, "lr": 0.008, "seed": 7}  # sizes: not a parameter; paths kept
    with pytest.raises(ValueError, match="no section 'gnm'"):
        stage_parameters(declared, params, ["gnm"], {})
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['hiden'\]"):
        stage_parameters(declared, params, ["gnn"], {"hiden": 128})


def test_values_read_as_params_yaml_reads_them() -> None:
    assert parse_value("128") == 128 and parse_value("0.5") == 0.5
    assert parse_value("yes") == "yes" and parse_value("gnn_h64") == "gnn_h64"


def test_every_value_of_a_real_stage_reaches_its_notebook() -> None:
    declared = notebook_parameters(PROJ_ROOT / "notebooks" / "05_head_weights.ipynb")
    params = load_params()
    got = stage_parameters(declared, params, ["head_weights", "labels", "seed"], {"model": "m"})
    assert {k: got[k] for k in params["head_weights"]} == params["head_weights"]
    assert got["long_play_s"] == params["labels"]["long_play_s"] and got["model"] == "m"


def test_an_unknown_override_stops_before_the_notebook_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.ipynb"
    assert main(["04_gnn", "gnn", "-p", "hiden", "8", "--out", str(out)]) == 2
    assert "hiden" in capsys.readouterr().err and not out.exists()


def test_the_executed_copy_holds_the_handed_parameters(tmp_path: Path) -> None:
    """A real run of the smallest notebook, 00_simulator, on a missing folder: papermill
    injects the parameters, then the notebook stops at the missing release."""
    out = tmp_path / "00.ipynb"
    with pytest.raises(Exception, match="big_matrix"):
        main(["00_simulator", "-p", "raw_dir", str(tmp_path / "none"), "--out", str(out)])
    cells = json.loads(out.read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "none" in "".join(injected[0]["source"])


def executed(start: str, seconds: float, cell_id: str) -> dict:
    """A notebook as papermill leaves it after one run started at ``start``."""
    run = {"start_time": start, "duration": seconds, "status": "completed"}
    styler = cell_id * 3  # pandas draws a table id: T_<5 hex digits>
    table = [f'<table id="T_{styler[:5]}">\n', f'<th id="T_{styler[:5]}_level0_col0">a</th>\n']
    return {
        "metadata": {"papermill": {"parameters": {"seed": 1}, "input_path": "/x", **run}},
        "cells": [
            {
                "id": cell_id,
                "cell_type": "code",
                "metadata": {"tags": ["injected-parameters"], "papermill": run},
                "outputs": [],
                "source": ["seed = 1\n"],
            },
            {
                "id": "fixed",
                "cell_type": "code",
                "metadata": {"execution": {"iopub.status.idle": start}, "papermill": run},
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["AUC "]},
                    {"output_type": "stream", "name": "stderr", "text": [f"{seconds} it/s"]},
                    {"output_type": "stream", "name": "stdout", "text": ["0.87\n"]},
                    {"output_type": "display_data", "data": {"text/html": table}},
                    {
                        "output_type": "execute_result",
                        "data": {"text/plain": [f"<Styler at 0x7f{cell_id}90>"]},
                    },
                ],
                "source": ["print('AUC 0.87')\n"],
            },
        ],
    }


def test_two_runs_of_the_same_inputs_leave_the_same_executed_copy() -> None:
    first = strip_volatile(executed("2026-01-01T00:00", 3.5, "a1"))
    second = strip_volatile(executed("2026-01-02T09:30", 4.25, "b2"))
    assert first == second
    assert first["metadata"]["papermill"] == {"parameters": {"seed": 1}}  # kept: the inputs
    stdout, table, styler = first["cells"][1]["outputs"]
    assert styler["data"]["text/plain"] == ["<Styler>"]  # no memory address
    assert stdout == {"output_type": "stream", "name": "stdout", "text": ["AUC 0.87\n"]}
    html = "".join(table["data"]["text/html"])
    assert html == '<table id="T_00000">\n<th id="T_00000_level0_col0">a</th>\n'  # numbered
