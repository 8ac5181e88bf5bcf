"""Run a numbered notebook as a pipeline stage, its parameters taken whole from params.yaml.

``python -m kuairec_utils.stage NOTEBOOK [SECTION ...] [-p NAME VALUE ...] [--out PATH]``

checks the whole params.yaml first (as ``python -m kuairec_utils.params``: a bad value stops here,
named, before anything is read or written), then runs the notebook ``notebooks/<NOTEBOOK>.ipynb`` with papermill
on the project's kernel into ``reports/notebooks/<NOTEBOOK>.ipynb`` (or ``--out``). Each SECTION's
values are handed over whole: every key of the section (or a top-level value such as ``seed``)
that the notebook's ``parameters`` cell names becomes that parameter; ``-p`` sets one parameter
(after the sections; DVC interpolates ``${...}`` in dvc.yaml first). The notebook's paths keep
their defaults (from the project root). DVC tracks the same sections under the stage's
``params``, so a change of any value re-runs exactly the stages that read it.

The executed copy is kept in git (a reader sees every table and plot), so what changes from one
run to the next is stripped from it (``strip_volatile``): timestamps and durations, the
kernel's progress bars and warnings on stderr, the paths of the run. A rerun on the same
machine writes the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Mapping, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from kuairec_utils.config import PARAMS_FILE, PROJ_ROOT, load_params

KERNEL = "kuairec"


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell (flat literals)."""
    nb = json.loads(Path(path).read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    values = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def parse_value(text: str) -> Any:
    """A ``-p`` value read as params.yaml reads its values (YAML 1.2: ``128`` an int, ``yes``
    the text "yes")."""
    return YAML(typ="safe", pure=True).load(StringIO(text))


def stage_parameters(
    declared: Mapping[str, Any],
    params: Mapping[str, Any],
    sections: Sequence[str],
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """The parameters papermill hands the notebook: the named sections' values that the notebook
    declares, then ``overrides``. A section params.yaml lacks, or an override the notebook does
    not declare, is an error."""
    out: dict[str, Any] = {}
    for name in sections:
        if name not in params:
            raise ValueError(f"params.yaml has no section {name!r}")
        section = params[name]
        if isinstance(section, Mapping):
            out |= {key: value for key, value in section.items() if key in declared}
        elif name in declared:
            out[name] = section
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"the notebook has no parameter(s) {unknown}")
    return out | dict(overrides)


INJECTED_CELL_ID = "injected-parameters"  # papermill gives the cell a random id
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")  # an object's memory address in its repr
STYLER_ID = re.compile(r"\bT_[0-9a-f]{5}(?=[_\"\s])")  # a pandas Styler table's random id


def strip_volatile(nb: dict[str, Any]) -> dict[str, Any]:
    """An executed notebook without what differs between two runs of the same inputs: the
    papermill and execution metadata of the notebook and its cells (times, durations, paths,
    environment) but the parameters, the stderr streams (progress bars, warnings, timings), the
    injected parameters cell's random id, the random ids of pandas' styled tables (numbered in
    order instead) and the memory addresses in objects' reprs."""
    papermill = nb.get("metadata", {}).get("papermill")
    if papermill is not None:
        nb["metadata"]["papermill"] = {"parameters": papermill.get("parameters", {})}
    for cell in nb["cells"]:
        metadata = cell.get("metadata", {})
        metadata.pop("papermill", None)
        metadata.pop("execution", None)
        if INJECTED_CELL_ID in metadata.get("tags", []):
            cell["id"] = INJECTED_CELL_ID
        if "outputs" in cell:
            kept = [
                o
                for o in cell["outputs"]
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
            cell["outputs"] = _merge_streams(kept)
    return _normalise_outputs(nb)


def _merge_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive stdout outputs as one (the kernel splits a stream where its flushes fall)."""
    merged: list[dict[str, Any]] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if last and output.get("output_type") == "stream" == last.get("output_type"):
            if output.get("name") == last.get("name"):
                text = "".join(last["text"]) + "".join(output["text"])
                last["text"] = text.splitlines(keepends=True)
                continue
        merged.append(output)
    return merged


def _normalise_outputs(nb: dict[str, Any]) -> dict[str, Any]:
    """Each styled table's random id (``T_1a2b3``) replaced by its number in the notebook, and
    the memory address dropped from every repr (``<Styler at 0x7f...>``)."""
    numbers: dict[str, str] = {}

    def number(match: re.Match) -> str:
        return numbers.setdefault(match.group(0), f"T_{len(numbers):05d}")

    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            for holder, key in ((output, "text"), (output.get("data", {}), "text/plain")):
                if key in holder:
                    text = "".join(holder[key]) if isinstance(holder[key], list) else holder[key]
                    holder[key] = ADDRESS.sub(">", text).splitlines(keepends=True)
            html = output.get("data", {}).get("text/html")
            if html is not None:
                text = "".join(html) if isinstance(html, list) else html
                text = STYLER_ID.sub(number, text)
                output["data"]["text/html"] = text.splitlines(keepends=True)
    return nb


def write_notebook(nb: dict[str, Any], path: Path) -> None:
    """A notebook as JupyterLab writes it (one-space indent, UTF-8, a final newline)."""
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the notebook's name, e.g. 04_gnn")
    parser.add_argument("sections", nargs="*", help="params.yaml sections handed over whole")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--out", help="the executed copy (default reports/notebooks/NAME.ipynb)")
    args = parser.parse_args(argv)
    from kuairec_utils import params as checks

    if checks.main([str(PARAMS_FILE)]) != 0:
        return 2
    source = PROJ_ROOT / "notebooks" / f"{args.notebook}.ipynb"
    out = Path(args.out) if args.out else PROJ_ROOT / "reports/notebooks" / source.name
    try:
        parameters = stage_parameters(
            notebook_parameters(source),
            load_params(),
            args.sections,
            {name: parse_value(value) for name, value in args.p},
        )
    except (ValueError, OSError) as e:
        print(f"{source.name}: error: {e}", file=sys.stderr)
        return 2
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(source), str(out), parameters=parameters, kernel_name=KERNEL)
    write_notebook(strip_volatile(json.loads(out.read_text())), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
