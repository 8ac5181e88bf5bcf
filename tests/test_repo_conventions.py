"""The repository's own conventions: pins that agree, committed notebooks without outputs and
with a parameters cell that DVC passes in full, and a clean ruff."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from kuairec_utils.config import PROJ_ROOT

NOTEBOOKS = sorted((PROJ_ROOT / "notebooks").glob("*.ipynb"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"not an exact pin: {line!r}"
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((PROJ_ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        d for ds in project["optional-dependencies"].values() for d in ds
    ]
    return _pins(lines)


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((PROJ_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "python=3.11" in env["dependencies"]
    return _pins(pip)


def lock_pins() -> dict[str, str]:
    lines = (PROJ_ROOT / "requirements.lock").read_text().splitlines()
    return _pins([ln for ln in lines if ln.strip() and not ln.startswith("#")])


def test_every_dependency_is_pinned_and_environment_yml_agrees() -> None:
    project, conda = pyproject_pins(), environment_pins()
    assert project == conda, {
        "only in pyproject": sorted(set(project.items()) - set(conda.items())),
        "only in environment.yml": sorted(set(conda.items()) - set(project.items())),
    }
    assert project["torch"] == "2.13.0"


def test_the_lock_file_agrees_with_the_pins() -> None:
    lock = lock_pins()
    drift = {
        name: (version, lock.get(name))
        for name, version in pyproject_pins().items()
        if lock.get(name) != version
    }
    assert not drift, f"pyproject pin vs requirements.lock: {drift}"


def test_a_drifted_pin_would_be_caught(tmp_path: Path) -> None:
    text = (PROJ_ROOT / "environment.yml").read_text().replace("pandas==", "pandas==0.0.0+", 1)
    env = yaml.safe_load(text)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) != pyproject_pins()


def _parameters_cell(nb: dict) -> dict:
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


def parameter_names(nb: dict) -> list[str]:
    """Names assigned in the parameters cell, checking each is a flat name = literal."""
    source = "".join(_parameters_cell(nb)["source"])
    names = []
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        assert isinstance(node.targets[0], ast.Name), ast.unparse(node)
        ast.literal_eval(node.value)  # a literal default that works as it is
        names.append(node.targets[0].id)
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"parameter without a comment: {line!r}"
    return names


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean_and_parameterised(path: Path) -> None:
    nb = json.loads(path.read_text())
    assert re.match(r"^\d\d_[a-z_]+\.ipynb$", path.name), "numbered, snake_case name"
    assert nb["metadata"]["kernelspec"]["name"] == "kuairec"
    assert nb["cells"][0]["cell_type"] == "markdown", "opens with what it does"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "outputs committed"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0] is _parameters_cell(nb), "the parameters cell is the first code cell"
    assert parameter_names(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_dvc_stage_runs_the_notebook_with_all_its_parameters(path: Path) -> None:
    rel = f"notebooks/{path.name}"
    runs = [b for b in _stage_bodies().values() if rel in str(b.get("cmd", "")).split()]
    assert len(runs) == 1, f"one stage runs {rel}"
    stage = runs[0]
    cmd = stage["cmd"].split()
    assert "papermill" in cmd and "-k" in cmd and cmd[cmd.index("-k") + 1] == "kuairec"
    executed = cmd[cmd.index(rel) + 1]
    assert executed.startswith(f"reports/notebooks/{path.stem}") and executed.endswith(".ipynb")
    assert executed in stage["outs"]
    assert rel in stage["deps"]
    passed = {cmd[i + 1] for i, word in enumerate(cmd) if word == "-p"}
    missing = set(parameter_names(json.loads(path.read_text()))) - passed
    assert not missing, f"parameters not passed by dvc.yaml: {sorted(missing)}"


def _project_imports(source: str) -> set[str]:
    """The parts of kuairec_utils (a top-level module or a subpackage) that ``source`` imports,
    anywhere, lazy imports included."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kuairec_utils."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[1] for a in node.names if a.name.startswith("kuairec_utils.")
            }
    return found


def _part_path(name: str) -> str:
    """A part's DVC dependency: its file, or its folder when it is a subpackage (importing any
    of its modules runs the package's __init__)."""
    folder = PROJ_ROOT / "kuairec_utils" / name
    return f"kuairec_utils/{name}" if folder.is_dir() else f"kuairec_utils/{name}.py"


def _module_closure(modules: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            path = PROJ_ROOT / _part_path(name)
            sources = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for source in sources:
                todo += sorted(_project_imports(source.read_text()) - seen)
    return seen


def _stage_bodies() -> dict[str, dict]:
    """Each stage of dvc.yaml: a plain stage, or the ``do`` of a foreach stage (one run per item,
    e.g. per hidden size)."""
    stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s.get("do", s) for name, s in stages.items()}


@pytest.mark.parametrize("name", sorted(_stage_bodies()))
def test_a_stage_depends_on_every_module_its_code_imports(name: str) -> None:
    """A change to a module a stage's code runs (directly or through another module) re-runs
    the stage: every such ``kuairec_utils/*.py`` is among its deps. The params check that starts
    every command is left out (it only reads params.yaml, which DVC tracks by value)."""
    stage = _stage_bodies()[name]
    words = str(stage["cmd"]).split()
    imported: set[str] = set()
    for word in words:
        if word.startswith("notebooks/") and word.endswith(".ipynb"):
            nb = json.loads((PROJ_ROOT / word).read_text())
            code = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
            for cell in code:
                text = "".join(cell)
                lines = [s for s in text.splitlines() if not s.lstrip().startswith(("%", "!"))]
                text = "\n".join(lines)
                imported |= _project_imports(text)
        elif word.startswith("kuairec_utils.") and word != "kuairec_utils.params":
            imported.add(word.split(".")[1])
    needed = {_part_path(m) for m in _module_closure(imported)}
    if needed:  # importing any module runs the package's __init__ (it sets MKL's mode)
        needed.add("kuairec_utils/__init__.py")
    missing = sorted(needed - set(stage["deps"]))
    assert not missing, f"stage {name} runs code from {missing} without depending on it"


# the folders of the data flow a stage's command names (the notebooks' *_dir parameters, the
# modules' path options); data/external holds files shipped with the repository, which the
# acquire stage reads from config.py and lists as a dependency
FLOW = ("data/", "models", "metrics", "reports")
PATH_OPTIONS = ("--out", "--metrics", "--reports")


def _named_paths(cmd: str) -> set[str]:
    words = cmd.split()
    named = set()
    for i, word in enumerate(words[:-1]):
        if word == "-p" and words[i + 1].endswith("_dir") and i + 2 < len(words):
            named.add(words[i + 2])
        elif word in PATH_OPTIONS:
            named.add(words[i + 1])
    return {p.rstrip("/") for p in named if p.startswith(FLOW)}


def _paths(entries: list) -> set[str]:
    return {e if isinstance(e, str) else next(iter(e)) for e in entries}


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def data_dependency_problems(name: str, stage: dict) -> list[str]:
    """Every folder of the data flow that a stage's command hands its code must be among its
    deps (a dep inside it, or it inside a dep) unless the stage only writes there, and every
    data dep must lie inside a folder the command hands over."""
    named = _named_paths(str(stage["cmd"]))
    deps = {d for d in _paths(stage.get("deps", [])) if d.startswith(FLOW)}
    written = _paths(stage.get("outs", [])) | _paths(stage.get("metrics", []))
    problems = []
    for folder in sorted(named):
        read = any(_under(d, folder) or _under(folder, d) for d in deps)
        if not read and not any(_under(o, folder) for o in written):
            problems.append(f"stage {name} is given {folder} but does not depend on it")
    for dep in sorted(deps - {"data/external/kuairec"}):
        if not any(_under(dep, folder) for folder in named):
            problems.append(f"stage {name} depends on {dep}, which its command does not name")
    return problems


@pytest.mark.parametrize("name", sorted(_stage_bodies()))
def test_a_stage_depends_on_the_data_it_is_given(name: str) -> None:
    """DVC re-runs a stage when what it reads changes, and tracks nothing it cannot read."""
    assert data_dependency_problems(name, _stage_bodies()[name]) == []


def test_the_data_dependency_check_names_a_missing_or_stray_dependency() -> None:
    stage = {
        "cmd": "papermill a.ipynb b.ipynb -p raw_dir data/raw -p metrics_dir metrics",
        "deps": ["a.ipynb", "metrics/weights.json", "models/gnn"],
        "metrics": [{"metrics/causal.json": {"cache": False}}],
    }
    assert data_dependency_problems("x", stage) == [
        "stage x is given data/raw but does not depend on it",
        "stage x depends on models/gnn, which its command does not name",
    ]
    stage["deps"] = ["a.ipynb", "data/raw", "metrics/weights.json"]
    assert data_dependency_problems("x", stage) == []
