"""The DVC pipeline end to end on a copy of the repository at a tiny scale: `dvc repro` runs the
notebooks through papermill into reports/notebooks/, and a second run does nothing."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_SCALE, TINY_SIMULATE

from kuairec_utils.config import PROJ_ROOT
from kuairec_utils.metrics import disagreements

pytestmark = pytest.mark.slow


def copy_repository(dest: Path) -> Path:
    """The working tree's tracked and untracked, not ignored, files (what a clone would hold
    plus work in progress) in a fresh git repository."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJ_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = PROJ_ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def set_params(repo: Path, **changes: object) -> None:
    """Change params.yaml entries given as section__name=value."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        section, name = key.split("__")
        params[section][name] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


# a tiny data set and short searches: these tests check the pipeline's mechanics (stages,
# reruns, bytes, parameters), the notebooks' tests and the unit tests check the estimates
TINY = {
    "simulate__scale": TINY_SCALE,
    **{f"simulate__{name}": value for name, value in TINY_SIMULATE.items()},
    "baselines__epochs": 1,  # one epoch: the mechanics, not the models' quality
    "gnn__epochs": 1,
    "taste__epochs": 1,
    "ablation__n_seeds": 1,
    "value_model__seeds": [20200705],  # one value-model seed (the notebooks' tests pool two)
    "value_model__downstream": ["taste_h64"],  # one 05 and 06 run each (the notebooks' tests
    # run them on the taste model; both run in the default pipeline)
    "head_weights__n_screen": 8,
    "head_weights__max_evaluations": 30,
    "head_weights__n_boot": 10,
    "head_weights__boot_grid": 50,
    "causal__n_boot": 5,
}


def tree_digest(repo: Path) -> dict[str, str]:
    """Every file of the working tree but .dvc/, .git/ and .venv (DVC's, git's and the
    environment's own), with its md5."""
    digest = {}
    for folder, dirs, files in os.walk(repo):  # symlinks to folders are not followed
        if Path(folder) == repo:
            dirs[:] = [d for d in dirs if d not in (".dvc", ".git", ".venv")]
        for name in files:
            path = Path(folder) / name
            if path.is_file():
                digest[str(path.relative_to(repo))] = hashlib.md5(path.read_bytes()).hexdigest()
    return digest


def run(
    repo: Path, *args: str, forced: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=repo, env=tool_env(forced), capture_output=True, text=True)


def tool_env(forced: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the test's Python's folder first on PATH (its dvc, papermill),
    and ``forced`` variables on top."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path} | (forced or {})


def another_cpus_kernels() -> dict[str, str]:
    """Variables that make this machine compute as an x86-64 CPU one level down would: numpy's
    loops without their top level (AVX-512 machines run the AVX2 ones, AVX2 machines SSE ones),
    OpenBLAS's Sandybridge kernels (no fused multiply-add), and torch's and oneDNN's AVX2
    kernels where they would run AVX-512 ones. MKL keeps its own path (see the README)."""
    import numpy as np
    import torch

    found = np.show_config(mode="dicts")["SIMD Extensions"]["found"]
    forced = {"OPENBLAS_CORETYPE": "Sandybridge"}
    if "X86_V4" in found:
        forced["NPY_DISABLE_CPU_FEATURES"] = "X86_V4"
    elif "X86_V3" in found:
        forced["NPY_DISABLE_CPU_FEATURES"] = "X86_V3"
    if torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        forced |= {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    return forced


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repository(tmp_path_factory.mktemp("clone"))
    set_params(repo, **TINY)
    return repo


def test_dvc_repro_runs_every_stage_then_nothing(repo: Path) -> None:
    first = run(repo, "dvc", "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # every stage ran (foreach stages once per item), and every output it locked is there
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    declared = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    expected = []
    for name, stage in declared.items():
        items = stage.get("foreach")
        if items:  # ${section.key} of the repository's params.yaml
            section, key = items.strip("${}").split(".")
            items = yaml.safe_load((repo / "params.yaml").read_text())[section][key]
        names = [f"{name}@{item}" for item in items] if items else [name]
        assert all(n in locked for n in names), (name, sorted(locked))
        expected += names
    for name in expected:  # (the lock keeps entries of the committed run's other items)
        for out in locked[name].get("outs", []):
            assert (repo / out["path"]).exists(), (name, out["path"])
    executed = json.loads((repo / "reports/notebooks/00_simulator.ipynb").read_text())
    assert any(c.get("outputs") for c in executed["cells"])  # executed, not copied
    assert (repo / "data/raw/ground_truth/truth.json").exists()
    assert json.loads((repo / "metrics/calibration.json").read_text())
    # 00 ran after 03: its AUC anchors are 03's mean test AUCs (on the tiny data, far from the
    # study's; the default data are held to them)
    anchors = json.loads((repo / "metrics/details/calibration.json").read_text())["auc_anchors"]
    for model, row in anchors.items():
        auc = json.loads((repo / f"metrics/auc_{model}.json").read_text())["test_auc"]["mean"]
        assert row["data"] == pytest.approx(auc, abs=1e-6)
        assert row["gap"] == pytest.approx(auc - row["published"], abs=1e-6)
    before = tree_digest(repo)
    again = run(repo, "dvc", "repro")
    assert again.returncode == 0
    assert "Data and pipelines are up to date" in again.stdout
    status = run(repo, "dvc", "status", "dvc.yaml")  # the study (not the supplementary stages)
    assert "up to date" in status.stdout
    assert tree_digest(repo) == before  # the second run changed no file


@pytest.fixture(scope="module")
def reruns(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny study again in two fresh copies, side by side (two processes: the machine's
    cores): ``same``, on this machine's kernels, and, on x86-64, ``other_cpu``, on the kernels
    of a CPU one level down. Each copy's folder, after its `dvc repro` succeeded."""
    assert (repo / "metrics" / "causal_taste_h64.json").exists(), "needs the first test's run"
    kernels = {"same": {}}
    if platform.machine() in ("x86_64", "AMD64"):
        kernels["other_cpu"] = another_cpus_kernels()
    started = {}
    for name, forced in kernels.items():
        copy = copy_repository(tmp_path_factory.mktemp(name))
        set_params(copy, **TINY)
        log = (copy.parent / f"{name}.log").open("w")
        process = subprocess.Popen(
            ["dvc", "repro"], cwd=copy, env=tool_env(forced), stdout=log, stderr=log
        )
        started[name] = (copy, process, log)
    for name, (copy, process, log) in started.items():
        code = process.wait()
        log.close()
        output = (copy.parent / f"{name}.log").read_text()
        assert code == 0, f"{name}: {output[-3000:]}"
    return {name: copy for name, (copy, _, _) in started.items()}


def test_a_second_clone_writes_byte_identical_metrics(repo: Path, reruns: dict[str, Path]) -> None:
    """Same seed, same bytes: the metrics, the plots' data, the executed notebooks (stripped of
    run-to-run noise) and the generated pages of a fresh copy equal the first run's (CPU)."""
    other = reruns["same"]
    written = [*(repo / "metrics").rglob("*.json"), *(repo / "metrics").rglob("*.csv")]
    written += [*(repo / "reports/notebooks").glob("*.ipynb")]
    written += [repo / "docs/results.md", repo / "docs/findings.md", repo / "README.md"]
    names = sorted(str(p.relative_to(repo)) for p in written)
    assert len([n for n in names if n.endswith(".ipynb")]) >= 10
    assert len([n for n in names if n.startswith("metrics/plots/")]) >= 8
    for name in names:
        assert (other / name).read_bytes() == (repo / name).read_bytes(), name


def test_another_cpus_kernels_write_the_same_metrics_to_their_precision(
    repo: Path, reruns: dict[str, Path]
) -> None:
    """What the README promises across CPUs: a copy run on the kernels of a CPU one level down
    writes metrics that agree with the first run's to their written significant digits."""
    if "other_cpu" not in reruns:
        pytest.skip(f"the forced kernels are x86-64 ones; this CPU is {platform.machine()}")
    other = reruns["other_cpu"]
    names = sorted(str(p.relative_to(repo / "metrics")) for p in (repo / "metrics").rglob("*.json"))
    for name in names:
        first, second = (json.loads((r / "metrics" / name).read_text()) for r in (repo, other))
        assert disagreements(first, second) == [], name


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"data__source": "kuairek"}, "data.source"),
        ({"gnn__sizes": [64, 0]}, "gnn.sizes"),
        ({"labels__complete_ratio": -1.0}, "labels.complete_ratio"),
        ({"interactions__split_val": 0}, "interactions.split_val"),
    ],
)
def test_a_bad_parameter_stops_the_first_stage_naming_it(
    repo: Path, change: dict, named: str
) -> None:
    """After a full run, a bad value stops `make repro` before any stage runs (nothing is
    touched), and a bare `dvc repro` at the first stage it runs; both name the value."""
    assert (repo / "metrics" / "causal_taste_h64.json").exists(), "needs the first test's run"
    params = (repo / "params.yaml").read_text()
    before = tree_digest(repo)
    venv = repo / ".venv"
    venv.symlink_to(Path(sys.executable).parents[1])  # the project's environment, as built
    try:
        set_params(repo, **change)
        result = run(repo, "make", "-o", "env", "repro")
        assert result.returncode != 0
        assert f"params.yaml: error: params {named} = " in result.stderr
        assert "Running stage" not in result.stdout
        after = tree_digest(repo)
        after.pop("params.yaml"), before.pop("params.yaml")
        assert after == before
        bare = run(repo, "dvc", "repro")
        assert bare.returncode != 0
        assert f"params.yaml: error: params {named} = " in bare.stderr + bare.stdout
    finally:
        (repo / "params.yaml").write_text(params)
        venv.unlink()
        run(repo, "dvc", "checkout", "--force")  # what DVC cleared before the check ran


def test_switching_to_real_files_reruns_the_pipeline(repo: Path, tiny_sim: Path) -> None:
    """data.source kuairec with data.kuairec_dir: every stage re-runs on real-schema files (the
    simulator's, without its ground truth) and the metrics carry no truth."""
    set_params(repo, data__source="kuairec", data__kuairec_dir=str(tiny_sim / "KuaiRec 2.0"))
    result = run(repo, "dvc", "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Running stage 'causal@taste_h64'" in result.stdout
    assert not (repo / "data/raw/ground_truth").exists()
    weights = json.loads((repo / "metrics/weights_taste_h64.json").read_text())
    causal = json.loads((repo / "metrics/causal_taste_h64.json").read_text())
    assert "w_true" not in weights and "effect_true" not in causal
    assert set(weights["estimators"]["plain"]["w"]) == {"complete", "long", "rewatch", "negative"}
    assert "max_abs_error" not in weights["estimators"]["plain"]
    oracle = json.loads((repo / "metrics/auc_oracle.json").read_text())
    assert oracle["test_auc"] is None  # no truth, no oracle
    # no pool log: 01's pool table is empty, and the decomposition runs 06's own cells only
    assert len(pd.read_parquet(repo / "data/interim/candidate_pool.parquet")) == 0
    parts = json.loads((repo / "metrics/decomposition_taste_h64.json").read_text())
    assert parts["candidate_sets"] == ["sampled"] and "shares" not in parts
    assert {(c["weights"], c["probabilities"], c["selectivity"]) for c in parts["cells"]} == {
        ("plain", "value model", "estimated"),
        ("selection", "value model", "estimated"),
    }
    # the pages follow the data: no sentence about the simulated platform or its truth
    readme = (repo / "README.md").read_text()
    block = readme[readme.index("<!-- results") : readme.index("<!-- /results -->")]
    findings = (repo / "docs/findings.md").read_text()
    assert "Real data has no ground truth" in block and "Real data has no" in findings
    for text in (block, findings):
        assert "simulated platform (scale" not in text and "w_true" not in text


def test_unknown_data_source_stops_before_writing(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    set_params(repo, data__source="kuairek")
    result = run(repo, sys.executable, "-m", "kuairec_utils.acquire", "--out", "data/raw")
    assert result.returncode != 0
    assert "data.source" in result.stderr and "kuairek" in result.stderr
    assert not (repo / "data/raw").exists()


def test_real_data_path_uses_an_unpacked_copy(tiny_sim: Path, tmp_path: Path) -> None:
    """data.source kuairec with data.kuairec_dir: the real-data code path on real-schema files."""
    repo = copy_repository(tmp_path / "repo")
    set_params(repo, data__source="kuairec", data__kuairec_dir=str(tiny_sim / "KuaiRec 2.0"))
    result = run(repo, sys.executable, "-m", "kuairec_utils.acquire", "--no-progress")
    assert result.returncode == 0, result.stderr
    data = repo / "data/raw/KuaiRec 2.0/data"
    assert sorted(p.name for p in data.iterdir()) == sorted(  # the seven files, not the pool log
        p.name for p in (tiny_sim / "KuaiRec 2.0/data").glob("*.csv")
    )
    assert not (repo / "data/raw/ground_truth").exists()  # real data carries no truth
