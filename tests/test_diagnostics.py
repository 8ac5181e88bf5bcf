"""The diagnostics' metrics files (diagnostics/*.py --out) and their opt-in DVC stages
(supplementary/dvc.yaml): the records they build, fast, without running the pipeline."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from kuairec_utils.config import PROJ_ROOT
from kuairec_utils.metrics import write_metrics

SCRIPTS = ("auc_ceiling", "residual_measurement", "selection_model", "another_cpu")


def load(path: Path, name: str) -> ModuleType:
    """The module of the file ``path`` (a script or a test file), imported under ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def script(name: str) -> ModuleType:
    return load(PROJ_ROOT / "diagnostics" / f"{name}.py", f"diagnostics_{name}")


class Parsed(Exception):
    """Raised in place of running a script once its arguments are parsed."""


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_accepts_out(name: str, tmp_path: Path, monkeypatch) -> None:
    """``--out FILE`` parses to the path of the metrics file (the script stops right there)."""
    parse = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    out = tmp_path / "figures.json"
    with pytest.raises(Parsed) as parsed:
        script(name).main(["--out", str(out)])
    assert Path(parsed.value.args[0].out) == out
    with pytest.raises(SystemExit):  # an option the script does not know is refused
        script(name).main(["--no-such-option"])


# --- another_cpu: the comparison with the committed metrics


def pooled(mean: float, lo: float, hi: float, seeds: list[float]) -> dict:
    return {"mean": mean, "ci95": [lo, hi], "per_seed": seeds, "sd_seeds": 0.01}


def metrics_folder(root: Path, shift: float = 0.0) -> Path:
    """A metrics folder of two files with three pooled figures (one a difference's
    ``estimate``, one in details/) and a figure that is not pooled; ``shift`` moves the AUC."""
    folder = root / "metrics"
    auc = {"auc": pooled(0.7 + shift, 0.69, 0.71, [0.695, 0.7 + shift, 0.705]), "n_rows": 10}
    weights = {
        "w": {"complete": pooled(0.2, 0.1, 0.3, [0.15, 0.2, 0.25])},
        "effect": {"estimate": -5.0, "ci95": [-6.0, -4.0], "per_seed": [-5.1, -4.9, -5.0]},
    }
    write_metrics(folder / "auc_x.json", auc)
    write_metrics(folder / "details" / "weights_x.json", weights)
    return folder


def test_a_metrics_folder_compared_with_itself_has_every_figure_within(tmp_path: Path) -> None:
    another_cpu = script("another_cpu")
    folder = metrics_folder(tmp_path)
    record = another_cpu.comparison_record(folder, folder)
    assert sorted(record["figures"]) == [
        "auc_x: auc",
        "details/weights_x: effect",
        "details/weights_x: w.complete",
    ]
    assert record["summary"] == {
        "pooled figures": 3,
        "means within the committed combined intervals": 3,
        "every seed within": 3,
    }
    effect = record["figures"]["details/weights_x: effect"]
    assert effect["committed mean"] == effect["other run's mean"] == -5.0
    assert effect["combined 95% CI"] == [-6.0, -4.0]
    assert (effect["seeds within"], effect["seeds"]) == (3, 3)


def test_a_moved_figure_lies_outside(tmp_path: Path) -> None:
    another_cpu = script("another_cpu")
    committed = metrics_folder(tmp_path / "committed")
    other = metrics_folder(tmp_path / "other", shift=0.05)
    record = another_cpu.comparison_record(committed, other)
    auc = record["figures"]["auc_x: auc"]
    assert auc["other run's mean"] == pytest.approx(0.75)
    assert not auc["mean within"] and not auc["all seeds within"]
    assert (auc["seeds within"], auc["seeds"]) == (2, 3)
    assert record["summary"]["means within the committed combined intervals"] == 2
    assert record["summary"]["every seed within"] == 2
    table = another_cpu.compare(committed, other).set_index("figure")  # the printed table agrees
    assert table.loc["auc_x: auc", "seeds within"] == "2 of 3"
    assert table["mean within"].tolist() == [f["mean within"] for f in record["figures"].values()]


def test_another_cpu_compare_writes_the_record(tmp_path: Path, capsys) -> None:
    """``--compare DIR --out FILE``: the printed summary and the metrics file, with its
    settings; the committed metrics compared with a copy of themselves are all within."""
    committed = PROJ_ROOT / "metrics"
    if not any(committed.glob("*.json")):
        pytest.skip("no committed metrics")
    shutil.copytree(committed, tmp_path / "run" / "metrics")
    out = tmp_path / "another_cpu.json"
    argv = ["--compare", str(tmp_path / "run"), "--metrics", str(committed), "--out", str(out)]
    assert script("another_cpu").main(argv) == 0
    record = json.loads(out.read_text())
    assert set(record) == {"settings", "figures", "summary"}
    assert record["settings"] == {
        "keep": None,
        "compare": str(tmp_path / "run"),
        "metrics": "metrics",
    }
    n = record["summary"]["pooled figures"]
    assert n > 0 and record["summary"]["means within the committed combined intervals"] == n
    assert f"{n} of {n} pooled figures' means within" in capsys.readouterr().out


# --- the other scripts' records: JSON-ready from numpy values


def test_auc_ceiling_record() -> None:
    table = pd.DataFrame(
        {"all": [0.70, 0.80], "warm videos": [0.72, 0.81], "cold videos": [0.65, 0.78]},
        index=["edge MLP (03_baselines)", "oracle"],
    )
    table["gap to oracle (all)"] = table["all"] - table.loc["oracle", "all"]
    record = script("auc_ceiling").ceiling_record(table, np.float64(0.48), np.int64(1234))
    assert record["test rows"] == 1234 and record["cold share of the test rows"] == 0.48
    assert record["mean test AUC"]["edge MLP (03_baselines)"]["gap to oracle (all)"] == (
        pytest.approx(-0.1)
    )
    assert list(record["mean test AUC"]["oracle"]) == list(table.columns)
    json.dumps(record, allow_nan=False)  # plain Python values only


def test_residual_measurement_record() -> None:
    module = script("residual_measurement")
    rows = {"true residual": {"true c_s on r(s-1)": np.float64(-4.97), "se": np.float64(0.19)}}
    record = module.measurement_record(pd.DataFrame(rows).T, {"standardised": np.float64(0.58)})
    assert record == {
        module.FIT: {"standardised": 0.58},
        module.TABLE: {"true residual": {"true c_s on r(s-1)": -4.97, "se": 0.19}},
    }
    assert all(type(v) is float for v in record[module.TABLE]["true residual"].values())


def test_selection_model_figures() -> None:
    module = script("selection_model")
    w, w_true = np.array([0.21, 0.09, -0.03, -0.67]), np.array([0.22, 0.10, -0.02, -0.66])
    est = SimpleNamespace(
        w=w,
        w_se=np.full(4, 0.01),
        noise_sd=np.float64(0.072),
        uncorrected=SimpleNamespace(w=w_true + [0.0, 0.0, 0.05, 0.0]),
        n_sessions=np.int64(1314),
        converged=np.True_,
    )
    figures = module.fit_figures(est, w_true)
    assert figures["w"] == {"complete": 0.21, "long": 0.09, "rewatch": -0.03, "negative": -0.67}
    assert figures["max error"] == pytest.approx(0.01)
    assert figures["uncorrected max error"] == pytest.approx(0.05)
    assert figures["sessions"] == 1314 and figures["converged"] is True
    json.dumps(figures, allow_nan=False)
    assert "seconds" not in figures  # (printed, not recorded: a rerun writes the same bytes)
    assert "max error" not in module.fit_figures(est, None)


def test_selection_model_reads_05s_pooled_error(capsys) -> None:
    """05's max error is pooled over the value-model seeds ({mean, ci95, ...}): its mean."""
    heads = ["complete", "long", "rewatch", "negative"]
    record = {
        "estimators": {
            "plain": {"w": dict.fromkeys(heads, 0.25), "max_abs_error": {"mean": 0.69}},
            "rank_logit": {"w": dict.fromkeys(heads, -0.25), "max_abs_error": 0.26},
            "notes": {"verdict": "no w"},
        }
    }
    figures = script("selection_model").estimates_05(record, np.ones(4), "taste_h64")
    assert figures["plain"]["max error"] == 0.69 and figures["rank_logit"]["max error"] == 0.26
    assert figures["w_true"] == dict.fromkeys(heads, 1.0) and "notes" not in figures
    assert "plain [0.25 0.25 0.25 0.25], max error 0.6900" in capsys.readouterr().out


def test_settings_name_paths_from_the_project_root() -> None:
    args = argparse.Namespace(raw=PROJ_ROOT / "data" / "raw", epochs=None, out=Path("x.json"))
    for name in SCRIPTS:  # every script records its settings through the shared helper
        assert script(name).run_settings(args) == {"raw": "data/raw", "epochs": None}


# --- the stages


def stages() -> dict[str, dict]:
    return yaml.safe_load((PROJ_ROOT / "supplementary" / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_diagnostic_stage_writes_its_metrics_and_depends_on_its_code(name: str) -> None:
    """One stage per script, named after it: it runs the script with ``--out`` its metrics
    file (not cached), and depends on the script and every kuairec_utils module it runs."""
    stage = stages()[name]
    out = f"supplementary/metrics/{name}.json"
    words = str(stage["cmd"]).split()
    assert words[:2] == ["python", f"diagnostics/{name}.py"] and stage["wdir"] == ".."
    assert words[words.index("--out") + 1] == out
    assert stage["metrics"] == [{out: {"cache": False}}]
    deps = [str(d).rstrip("/") for d in stage["deps"]]
    assert f"diagnostics/{name}.py" in deps
    conventions = load(PROJ_ROOT / "tests" / "test_repo_conventions.py", "_repo_conventions")
    source = (PROJ_ROOT / "diagnostics" / f"{name}.py").read_text()
    modules = conventions._module_closure(conventions._project_imports(source))
    needed = {conventions._part_path(m) for m in modules} | {"kuairec_utils/__init__.py"}
    missing = sorted(m for m in needed if not any(m == d or m.startswith(d + "/") for d in deps))
    assert not missing, f"stage {name} runs code from {missing} without depending on it"
