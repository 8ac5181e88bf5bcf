"""The repository's own conventions: pins that agree, committed notebooks without outputs and
with a parameters cell that DVC passes in full, and a clean ruff."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
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


def executed_copies() -> list[Path]:
    """The executed notebooks the study's stages write (dvc.yaml's outs, ``foreach`` items
    from params.yaml)."""
    stages = yaml.safe_load((PROJ_ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((PROJ_ROOT / "params.yaml").read_text())
    found = []
    for stage in stages.values():
        items = [None]
        if "foreach" in stage:
            section, key = stage["foreach"].strip("${}").split(".")
            items = params[section][key]
        for out in stage.get("do", stage).get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            if path.endswith(".ipynb"):
                found += [path.replace("${item}", str(item)) for item in items]
    return [PROJ_ROOT / p for p in found]


def test_every_step_has_its_executed_notebook_with_its_outputs() -> None:
    """A reader browsing the repository sees each step run: its executed copy is in git with
    every code cell run, no error, tables or plots, and no run-to-run noise."""
    copies = executed_copies()
    for source in NOTEBOOKS:  # each step's notebook runs in the study (the ablation: supplementary)
        if source.stem != "04_taste_ablation":
            assert any(p.name.startswith(source.stem) for p in copies), source.name
    for path in copies:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        outputs = [o for c in code for o in c.get("outputs", [])]
        assert all(c.get("execution_count") for c in code), f"{path.name}: a cell not run"
        assert not [o for o in outputs if o["output_type"] == "error"], path.name
        assert not [o for o in outputs if o.get("name") == "stderr"], path.name
        shown = [o for o in outputs if {"image/png", "text/html"} & set(o.get("data", {}))]
        assert shown, f"{path.name}: no table or plot"
        noise = [c for c in nb["cells"] if {"papermill", "execution"} & set(c["metadata"])]
        assert not noise, f"{path.name}: run-to-run metadata"


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


def _stage_run(cmd: str) -> tuple[str, list[str], dict[str, str], str] | None:
    """A ``python -m kuairec_utils.stage`` command's notebook, sections, ``-p`` values and
    executed copy; None for another command."""
    words = cmd.split()
    if "kuairec_utils.stage" not in words:
        return None
    args = words[words.index("kuairec_utils.stage") + 1 :]
    notebook, sections, overrides = args[0], [], {}
    out = f"reports/notebooks/{notebook}.ipynb"
    i = 1
    while i < len(args):
        if args[i] == "-p":
            overrides[args[i + 1]] = args[i + 2]
            i += 3
        elif args[i] == "--out":
            out, i = args[i + 1], i + 2
        else:
            sections.append(args[i])
            i += 1
    return notebook, sections, overrides, out


def _tracked(value: str, tracked: set[str]) -> bool:
    """Whether DVC tracks params.yaml's ``value`` (``section.key`` or a top-level name) through
    a stage's ``params`` list: the value itself or its whole section."""
    return value in tracked or value.split(".")[0] in tracked


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_dvc_stage_runs_the_notebook_with_all_its_parameters(path: Path) -> None:
    """One stage runs each notebook through the stage runner: the notebook is a dependency, its
    executed copy an output; every parameter but the paths gets a value from the sections the
    stage hands over whole or from a ``-p``; DVC tracks every value so handed over."""
    from kuairec_utils.config import load_params

    runs = {n: r for n, b in _stage_bodies().items() if (r := _stage_run(str(b["cmd"])))}
    runs = {n: r for n, r in runs.items() if r[0] == path.stem}
    assert len(runs) == 1, f"one stage runs {path.name}"
    ((name, (_, sections, overrides, out)),) = runs.items()
    stage = _stage_bodies()[name]
    assert f"notebooks/{path.name}" in stage["deps"] and out in _paths(stage["outs"])
    params, tracked = load_params(), set(stage.get("params", []))
    declared = [n for n in parameter_names(json.loads(path.read_text())) if not n.endswith("_dir")]
    for parameter in declared:
        owners = [
            s
            for s in sections
            if parameter in (params[s] if isinstance(params[s], dict) else {s: 0})
        ]
        assert owners or parameter in overrides, f"{parameter} gets no value from the stage"
        if parameter not in overrides:
            value = owners[0] if owners[0] == parameter else f"{owners[0]}.{parameter}"
            assert _tracked(value, tracked), f"{value} is passed but DVC does not track it"
    for value in re.findall(r"\$\{([\w.]+)\}", str(stage["cmd"])):
        assert value == "item" or _tracked(value, tracked), f"{value} is not tracked"


def _project_imports(source: str) -> set[str]:
    """The kuairec_utils modules (dotted, e.g. ``models.gcn``) that ``source`` imports,
    anywhere, lazy imports included; ``from kuairec_utils.x import y`` counts ``x.y`` when y is
    a module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kuairec_utils."):
            module = node.module.removeprefix("kuairec_utils.")
            found.add(module)
            found |= {
                f"{module}.{a.name}" for a in node.names if _module_file(f"{module}.{a.name}")
            }
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("kuairec_utils.")
                for a in node.names
                if a.name.startswith("kuairec_utils.")
            }
    return found


def _module_file(module: str) -> Path | None:
    """The file of a dotted kuairec_utils module (a package's __init__.py), None if none."""
    path = PROJ_ROOT / "kuairec_utils" / Path(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _part_path(module: str) -> str:
    """A module's DVC dependency: its file, or its subpackage's folder (importing any of its
    modules runs the package's __init__, and the folder covers them all)."""
    top = module.split(".")[0]
    folder = PROJ_ROOT / "kuairec_utils" / top
    return f"kuairec_utils/{top}" if folder.is_dir() else f"kuairec_utils/{top}.py"


def _module_closure(modules: set[str]) -> set[str]:
    """The modules run when ``modules`` are imported: theirs, their packages' __init__, and
    what those import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or _module_file(name) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the packages' __init__
        todo += sorted(_project_imports(_module_file(name).read_text()) - seen)
    return seen


PIPELINES = {"": "dvc.yaml", "supplementary/dvc.yaml:": "supplementary/dvc.yaml"}


def _stage_bodies() -> dict[str, dict]:
    """Each stage of dvc.yaml and of the supplementary pipeline (whose paths are from the
    project root, its ``wdir``): a plain stage, or the ``do`` of a foreach stage (one run per
    item, e.g. per hidden size)."""
    bodies = {}
    for prefix, path in PIPELINES.items():
        stages = yaml.safe_load((PROJ_ROOT / path).read_text())["stages"]
        bodies |= {prefix + name: s.get("do", s) for name, s in stages.items()}
    return bodies


@pytest.mark.parametrize("name", sorted(_stage_bodies()))
def test_a_stage_depends_on_every_module_its_code_imports(name: str) -> None:
    """A change to a module a stage's code runs (directly or through another module) re-runs
    the stage: every such ``kuairec_utils/*.py`` is among its deps. The params check that starts
    every command is left out (it only reads params.yaml, which DVC tracks by value)."""
    stage = _stage_bodies()[name]
    words = str(stage["cmd"]).split()
    imported: set[str] = set()
    run = _stage_run(str(stage["cmd"]))
    for word in words + ([f"notebooks/{run[0]}.ipynb"] if run else []):
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
    deps = [str(d).rstrip("/") for d in stage["deps"]]  # a folder covers what it holds
    missing = sorted(m for m in needed if not any(m == d or m.startswith(d + "/") for d in deps))
    assert not missing, f"stage {name} runs code from {missing} without depending on it"


# the folders of the data flow a stage's command names (the notebooks' *_dir parameters, the
# modules' path options); data/external holds files shipped with the repository, which the
# acquire stage reads from config.py and lists as a dependency; the diagnostics' stages
# (supplementary/dvc.yaml) name their folders with --raw, --processed, --interim and --models
FLOW = ("data/", "models", "metrics", "reports")
PATH_OPTIONS = ("--out", "--metrics", "--reports", "--raw", "--processed", "--interim", "--models")


def _named_paths(cmd: str) -> set[str]:
    """The folders of the data flow a stage's command hands its code: a notebook's ``*_dir``
    parameters (their defaults, or the ``-p`` values), a module's path options."""
    words = cmd.split()
    named = {words[i + 1] for i, word in enumerate(words[:-1]) if word in PATH_OPTIONS}
    run = _stage_run(cmd)
    if run:
        nb = json.loads((PROJ_ROOT / "notebooks" / f"{run[0]}.ipynb").read_text())
        source = "".join(_parameters_cell(nb)["source"])
        for node in ast.parse(source).body:
            target = node.targets[0].id
            if target.endswith("_dir"):
                named.add(run[2].get(target, ast.literal_eval(node.value)))
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
        "cmd": "python -m kuairec_utils.stage 06_causal causal -p raw_dir data/raw",
        "deps": ["a.ipynb", "metrics/weights.json", "models/gnn"],
        "metrics": [{"metrics/causal.json": {"cache": False}}],
    }
    # 06's defaults: data/interim, data/raw, models, metrics, reports/figures
    assert data_dependency_problems("x", stage) == [
        "stage x is given data/interim but does not depend on it",
        "stage x is given data/raw but does not depend on it",
        "stage x is given reports/figures but does not depend on it",
    ]
    stage["deps"] += ["data/interim", "data/raw"]
    stage["outs"] = ["reports/figures/06_causal.png"]
    assert data_dependency_problems("x", stage) == []
    stage["deps"].append("data/processed")
    assert data_dependency_problems("x", stage) == [
        "stage x depends on data/processed, which its command does not name"
    ]


# a path into the repository's own folders (its metrics and supplementary records included), or
# a markdown file named bare
REFERENCE = re.compile(
    r"(?<![\w/.<{-])((?:docs|notebooks|kuairec_utils|benchmarks|diagnostics|tests|metrics"
    r"|supplementary)/[\w./-]*\w|\b[\w-]+\.md\b)"
)
LINK = re.compile(r"\]\(([^)#\s]+)")  # a markdown link's target
PATTERN = "<{*$"  # a path going on with one of these is a pattern: metrics/auc_<model>.json
GENERATED = {"auc_table.md", "benchmarks/out"}  # written by stages and scripts, not kept in git
# the report's templates, each read where the page it fills lies (its links are relative to it)
TEMPLATE_OUTPUT = {
    "kuairec_utils/report/templates/findings.md": "docs/findings.md",
    "kuairec_utils/report/templates/readme.md": "README.md",
}


def dangling_references(name: str, text: str, files: set[str]) -> list[str]:
    """The references in ``text`` (a file called ``name``) to files that are not in ``files``
    (the repository's, as paths from its root): paths into its folders (a module may be named
    without its .py, a package by its folder, a pattern by the start of a file's path), bare
    markdown file names, and markdown links."""
    folders = {str(Path(f).parent) for f in files} | {
        str(p) for f in files for p in Path(f).parents
    }
    missing = []
    for match in REFERENCE.finditer(text):
        ref, after = match.group(1).rstrip("."), text[match.end() : match.end() + 1]
        if ref in GENERATED:
            continue
        if "/" not in ref:
            found = any(Path(f).name == ref for f in files)
        elif after and after in PATTERN:
            found = any(f.startswith(ref) for f in files)
        else:
            found = ref in files or ref in folders or f"{ref}.py" in files
        if not found:
            missing.append(ref)
    if name.endswith(".md"):
        for target in LINK.findall(text):
            if "://" not in target and not target.startswith("mailto:"):
                path = os.path.normpath(Path(TEMPLATE_OUTPUT.get(name, name)).parent / target)
                if path not in files and path not in folders:
                    missing.append(target)
    return missing


def declared_outputs(path: Path) -> set[str]:
    """The outputs a dvc.yaml declares (what its stages write, not references to files)."""
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages", {})
    found = set()
    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for item in stage.get("do", stage).get(key, []):
                found |= set(item) if isinstance(item, dict) else {item}
    return found


def test_no_reference_to_a_file_the_repository_does_not_hold() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJ_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    files = {f for f in listed if f and (PROJ_ROOT / f).exists()}
    readable = (".py", ".ipynb", ".md", ".yaml", ".toml", ".yml")
    problems = {}
    for name in sorted(files - {"tests/test_repo_conventions.py"}):  # this file names examples
        if name.endswith(readable) or name in ("Makefile", ".ci/run"):
            missing = dangling_references(name, (PROJ_ROOT / name).read_text(), files)
            if name.endswith("dvc.yaml"):  # a stage's output is written, not read
                outputs = declared_outputs(PROJ_ROOT / name)
                missing = [m for m in missing if not any(o.startswith(m) for o in outputs)]
            if missing:
                problems[name] = missing
    assert not problems, problems


def test_the_reference_check_names_a_missing_file() -> None:
    files = {"docs/design.md", "kuairec_utils/models/gcn.py", "README.md"}
    text = "See docs/design.md section 2, DESIGN.md, kuairec_utils/models/gcn, docs/gone.md."
    assert dangling_references("x.py", text, files) == ["DESIGN.md", "docs/gone.md"]
    assert dangling_references("docs/a.md", "[d](design.md) [g](../gone.md)", files) == [
        "../gone.md"
    ]
    # the metrics are checked too; a pattern needs one file it matches
    text = "metrics/auc_<model>.json metrics/gone.json kuairec_utils/models/g{x}"
    found = dangling_references("x.py", text, files | {"metrics/auc_edge_mlp.json"})
    assert found == ["metrics/gone.json"]
