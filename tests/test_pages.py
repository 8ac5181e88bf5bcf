"""The committed pages say what the committed metrics say: the README's results block, the
findings page and the results page are exactly what the report stage writes from `metrics/`,
and figures sampled from them are found in the metrics files."""

from __future__ import annotations

import json
import re

import pytest

from kuairec_utils.config import PROJ_ROOT, load_params
from kuairec_utils.report.fill import fill
from kuairec_utils.report.head_weights import headline_model
from kuairec_utils.report.page import (
    README_END,
    README_START,
    build_report,
    context,
    readme_block,
)

METRICS = PROJ_ROOT / "metrics"
SUPPLEMENTARY = PROJ_ROOT / "supplementary" / "metrics"


@pytest.fixture(scope="module")
def values() -> dict:
    params = load_params()
    model = headline_model(METRICS, params["value_model"]["headline"], downstream())
    return context(METRICS, model, params, SUPPLEMENTARY)


def downstream() -> list[str]:
    return load_params()["value_model"]["downstream"]


def test_the_findings_page_is_what_the_metrics_write(values: dict) -> None:
    assert (PROJ_ROOT / "docs/findings.md").read_text() == fill("findings.md", values)


def test_the_readme_block_is_what_the_metrics_write(values: dict) -> None:
    readme = PROJ_ROOT / "README.md"
    text = readme.read_text()
    block = text[text.index(README_START) : text.index(README_END) + len(README_END)]
    written = readme_block(
        readme, METRICS, PROJ_ROOT / "docs/figures", values["model"], values, SUPPLEMENTARY
    )
    assert block == written


def test_the_results_page_is_what_the_metrics_write() -> None:
    page = PROJ_ROOT / "docs/results.md"
    params = load_params()
    written = build_report(
        *(METRICS, PROJ_ROOT / "reports", page, PROJ_ROOT / "docs/figures"),
        params["value_model"]["headline"],
        SUPPLEMENTARY,
        downstream(),
    )
    assert page.read_text() == written


def leaves(value: object) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return [float(value)] if is_number else []


def found(token: str, numbers: list[float]) -> bool:
    """Whether a figure as printed (``-0.0004``, ``0.69``) is one of ``numbers`` rounded to
    the figure's decimals."""
    decimals = len(token.split(".")[1])
    return any(round(x, decimals) == float(token) for x in numbers)


def table_rows(text: str, first_cell: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| {first_cell}")]


def test_figures_sampled_from_the_pages_are_in_the_metrics(values: dict) -> None:
    """Each AUC of the findings' value-model table and each figure of the README's taste-model
    and causal rows, found in the metrics file it comes from."""
    model = values["model"]
    findings = (PROJ_ROOT / "docs/findings.md").read_text()
    for name in ("logreg", "edge_mlp", "taste_h64"):
        (row,) = table_rows(findings, f"{name} |")
        record = json.loads((METRICS / f"auc_{name}.json").read_text())
        comparisons = json.loads((METRICS / "auc_comparisons.json").read_text())
        numbers = leaves(record) + leaves(comparisons["models"].get(name, {}))
        tokens = re.findall(r"[-+]?\d+\.\d+", row)
        assert tokens and all(found(t, numbers) for t in tokens), (row, tokens)
    readme = (PROJ_ROOT / "README.md").read_text()
    (row,) = [r for r in table_rows(readme, "a worse feed") if model in r]
    numbers = leaves(json.loads((METRICS / f"causal_{model}.json").read_text()))
    tokens = re.findall(r"[-+]?\d+\.\d+", row)
    assert len(tokens) >= 9 and all(found(t, numbers) for t in tokens), row


def test_a_figure_not_in_the_metrics_is_not_found() -> None:
    assert found("0.87", [0.8713]) and found("-0.0004", [-0.000412])
    assert not found("0.88", [0.8713])
