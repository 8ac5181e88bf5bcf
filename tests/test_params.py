"""params.yaml is checked whole before any stage works; a bad value is named."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kuairec_utils.config import PROJ_ROOT, load_params
from kuairec_utils.params import ParamError, check_params, check_pipeline, main


@pytest.fixture
def params() -> dict:
    return copy.deepcopy(load_params())


def test_the_project_params_are_valid(params: dict) -> None:
    check_params(params)


@pytest.mark.parametrize(
    ("section", "name", "value", "named"),
    [
        ("data", "source", "kuairek", "data.source"),
        ("gnn", "sizes", [64, 0], "gnn.sizes"),
        ("taste", "n_layers", -1, "taste.n_layers"),
        ("taste", "interaction", "yes", "taste.interaction"),
        ("taste", "tag_encoding", "rare", "taste.tag_encoding"),
        ("taste", "free_user_embedding", False, "taste.user_features"),  # with user_features off
        ("ablation", "n_seeds", 0, "ablation.n_seeds"),
        ("value_model", "downstream", ["gnn_h32"], "value_model.downstream"),  # not trained
        ("value_model", "downstream", ["gnn_h64", "gnn_h64"], "value_model.downstream"),
        ("value_model", "headline", "gnn_h128", "value_model.headline"),  # not downstream
        ("labels", "negative_play_s", -1.0, "labels.negative_play_s"),
        ("interactions", "burst_threshold", 1.5, "interactions.burst_threshold"),
        ("interactions", "split_val", 0, "interactions.split_val"),  # an empty validation set
        ("simulate", "scale", 2.0, "simulate.scale"),
        ("baselines", "dropout", 1.0, "baselines.dropout"),
        ("baselines", "schedule", "linear", "baselines.schedule"),
        ("gnn", "schedule", None, "gnn.schedule"),
        ("head_weights", "n_boot", 1, "head_weights.n_boot"),
        ("head_weights", "exclude_seen", True, "head_weights.exclude_seen"),
        ("head_weights", "selection_min_feed", 0, "head_weights.selection_min_feed"),
        ("head_weights", "score_position", "last", "head_weights.score_position"),
        ("head_weights", "selection_bias_correction", "bootstrap", "head_weights.selection_bias"),
        ("head_weights", "selection_splits", 0, "head_weights.selection_splits"),
        # the jackknife's halves need feeds of at least 10 videos
        ("head_weights", "selection_min_feed", 5, "head_weights.selection_min_feed"),
        ("causal", "estimator", "selektion", "causal.estimator"),
        ("causal", "prior_sd", 0.0, "causal.prior_sd"),
        ("causal", "quality_offset", "yes", "causal.quality_offset"),
        ("debias", "correction", "linear", "debias.correction"),
        ("debias", "min_session_length", 1, "debias.min_session_length"),
        ("debias", "n_boot", "many", "debias.n_boot"),
        ("features", "onehot_min_share", 0.7, "features.onehot_min_share"),
    ],
)
def test_a_bad_value_is_named(params: dict, section: str, name: str, value, named: str) -> None:
    params[section][name] = value
    if (section, name) == ("taste", "free_user_embedding"):
        params["taste"]["user_features"] = False
    with pytest.raises(ParamError, match=named.replace(".", r"\.")):
        check_params(params)


def test_unknown_keys_and_missing_sections_are_named(params: dict) -> None:
    params["gnn"]["hiden"] = 128
    with pytest.raises(ParamError, match="hiden"):
        check_params(params)
    del params["gnn"]["hiden"]
    del params["causal"]
    with pytest.raises(ParamError, match="causal"):
        check_params(params)


def test_the_command_line_exits_2_with_the_reason(
    params: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params["device"] = "tpu"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main([str(path)]) == 2
    assert "device = 'tpu'" in capsys.readouterr().err
    assert main([str(PROJ_ROOT / "params.yaml")]) == 0


def test_every_stage_checks_the_params_first() -> None:
    stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():  # the stage runner checks them before the notebook runs
        cmd = stage.get("do", stage)["cmd"]
        assert cmd.startswith(
            ("python -m kuairec_utils.params && ", "python -m kuairec_utils.stage ")
        ), name
    out = subprocess.run(
        [sys.executable, "-m", "kuairec_utils.params"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr


def test_params_rewritten_by_dvc_exp_run_keep_their_text_values(tmp_path: Path) -> None:
    """`dvc exp run -S` rewrites params.yaml and drops the quotes of "yes"; read as YAML 1.2
    (as DVC reads it), the value stays the text "yes", not a boolean."""
    text = (
        (PROJ_ROOT / "params.yaml").read_text().replace('exclude_seen: "yes"', "exclude_seen: yes")
    )
    assert "exclude_seen: yes" in text
    path = tmp_path / "params.yaml"
    path.write_text(text)
    params = load_params(path)
    assert params["head_weights"]["exclude_seen"] == "yes"
    check_params(params)


def test_gnn_sizes_must_match_the_models_the_auc_table_compares(
    params: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_pipeline(params, PROJ_ROOT / "dvc.yaml")  # the project's own pair agrees
    params["gnn"]["sizes"] = [64, 256]
    with pytest.raises(ParamError, match=r"gnn.sizes = \[64, 256\].*compares gnn_h64, gnn_h128"):
        check_pipeline(params, PROJ_ROOT / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text((PROJ_ROOT / "dvc.yaml").read_text())
    assert main([str(tmp_path / "params.yaml")]) == 2
    assert "auc_table" in capsys.readouterr().err
