"""Every value of ``params.yaml`` checked at once, before a stage does any work.

Each DVC stage starts with ``python -m kuairec_utils.params``: whichever stage a change makes
run first stops there, with a message naming the bad parameter, before it reads or overwrites
anything. The checks reuse each stage's own config classes (``SimConfig``,
``InteractionsConfig``, ``FeatureConfig``, ``TrainConfig``, ``LabelThresholds``), so a notebook
run alone by papermill checks its values the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kuairec_utils.config import PARAMS_FILE, load_params, resolve
from kuairec_utils.names import (  # each name written once, there
    CORRECTIONS,
    ESTIMATORS,
    GRAPH_MODELS,
    JACKKNIFE_MIN_FEED,
    SCHEDULES,
    SELECTIVITIES,
)

SOURCES = ("simulated", "kuairec")
DEVICES = ("auto", "cpu", "cuda")
SECTIONS = (
    "seed",
    "device",
    "data",
    "labels",
    "simulate",
    "interactions",
    "features",
    "baselines",
    "gnn",
    "taste",
    "ablation",
    "value_model",
    "head_weights",
    "causal",
    "claims",
    "debias",
)


class ParamError(ValueError):
    """A value of params.yaml that no stage can use; the message names it."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_at_least(section: Mapping[str, Any], where: str, name: str, low: int) -> None:
    value = section.get(name)
    if not _is_int(value) or value < low:
        raise ParamError(f"params {where}.{name} = {value!r}: must be an integer of at least {low}")


def _choice(section: Mapping[str, Any], where: str, name: str, allowed: tuple[str, ...]) -> None:
    value = section.get(name)
    if value not in allowed:
        raise ParamError(f"params {where}.{name} = {value!r}: must be one of {list(allowed)}")


def _in_range(
    section: Mapping[str, Any], where: str, name: str, test: Callable[[float], bool], why: str
) -> None:
    value = section.get(name)
    if not _is_number(value) or not test(value):
        raise ParamError(f"params {where}.{name} = {value!r}: {why}")


def _section(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = params.get(name)
    if not isinstance(section, Mapping):
        raise ParamError(f"params {name}: missing, or not a mapping of names to values")
    return section


def _known(section: Mapping[str, Any], where: str, names: set[str]) -> None:
    unknown = sorted(set(section) - names)
    if unknown:
        raise ParamError(f"params {where}: unknown key(s) {unknown}; valid: {sorted(names)}")


def _check_training(section: Mapping[str, Any], where: str) -> None:
    """The values of TrainConfig (03, 04); torch itself is not imported for that."""
    for name in ("mlp_hidden", "epochs", "batch_size", "patience"):
        _int_at_least(section, where, name, 1)
    _in_range(section, where, "dropout", lambda v: 0 <= v < 1, "must be in [0, 1)")
    _in_range(section, where, "lr", lambda v: v > 0, "must be a positive number")
    _in_range(section, where, "weight_decay", lambda v: v >= 0, "must be a non-negative number")
    _choice(section, where, "schedule", SCHEDULES)


TASTE_SWITCHES = (
    "user_features",
    "free_user_embedding",
    "item_features",
    "free_item_embedding",
    "interaction",
)


def check_taste(section: Mapping[str, Any]) -> None:
    """The values of 04_taste (the params section, or the notebook's parameters)."""
    _int_at_least(section, "taste", "hidden", 1)
    _int_at_least(section, "taste", "n_layers", 0)
    for name in TASTE_SWITCHES:
        if not isinstance(section.get(name), bool):
            raise ParamError(f"params taste.{name} = {section.get(name)!r}: must be true or false")
    for side, features, free in [
        ("users", "user_features", "free_user_embedding"),
        ("videos", "item_features", "free_item_embedding"),
    ]:
        if not (section[features] or section[free]):
            raise ParamError(
                f"params taste.{features} and taste.{free} are both false: the {side} need one"
            )
    _choice(section, "taste", "tag_encoding", ("every", "pooled"))
    _int_at_least(section, "taste", "max_steps_per_epoch", 1)
    _check_training(section, "taste")


def check_head_weights(section: Mapping[str, Any]) -> None:
    """The values of 05_head_weights (the params section, or the notebook's parameters)."""
    for name, low in [
        ("n_others", 0),
        ("n_screen", 0),
        ("max_evaluations", 1),
        ("n_boot", 2),
        ("boot_grid", 1),
        ("boot_refine", 0),
        ("max_query_rows", 1),
        ("selection_min_feed", 1),
        ("selection_splits", 1),
        ("offline_k", 1),
        ("n_jobs", 1),
    ]:
        _int_at_least(section, "head_weights", name, low)
    _choice(section, "head_weights", "exclude_seen", ("yes", "no"))
    _choice(section, "head_weights", "score_position", ("mean", "first"))
    _choice(section, "head_weights", "selection_bias_correction", ("jackknife", "none"))
    if (
        section["selection_bias_correction"] == "jackknife"
        and section["selection_min_feed"] < JACKKNIFE_MIN_FEED
    ):
        raise ParamError(
            f"params head_weights.selection_bias_correction = 'jackknife' needs "
            f"head_weights.selection_min_feed of at least {JACKKNIFE_MIN_FEED} (halves of "
            f"{JACKKNIFE_MIN_FEED // 2} feed videos), got {section['selection_min_feed']}: raise "
            "it or set the correction to 'none'"
        )


def check_causal(section: Mapping[str, Any]) -> None:
    """The values of 06_causal (the params section, or the notebook's parameters)."""
    _choice(section, "causal", "estimator", ESTIMATORS)
    _choice(section, "causal", "center_index", ("yes", "no"))
    _choice(section, "causal", "quality_offset", ("watch", "none"))
    _in_range(section, "causal", "prior_sd", lambda v: v > 0, "must be a positive number")
    _int_at_least(section, "causal", "n_boot", 2)


def check_debias(section: Mapping[str, Any]) -> None:
    """The values of 07_debias (the params section, or the notebook's parameters)."""
    _choice(section, "debias", "correction", CORRECTIONS)
    _choice(section, "debias", "selectivity", SELECTIVITIES)
    _in_range(section, "debias", "prior_sd", lambda v: v > 0, "must be a positive number")
    _int_at_least(section, "debias", "min_session_length", 2)
    _int_at_least(section, "debias", "n_boot", 2)


def section_values(namespace: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The values a notebook holds (its parameters, in ``namespace``) for the keys of
    params.yaml's ``section``: what the notebook checks with that section's check."""
    return {key: namespace[key] for key in load_params()[section] if key in namespace}


def check_params(params: Mapping[str, Any]) -> None:
    """Raise ParamError naming the first value of ``params`` (a whole params.yaml) that is
    missing, of the wrong type or out of range."""
    from kuairec_utils.data.interactions import InteractionsConfig
    from kuairec_utils.features import FeatureConfig
    from kuairec_utils.simulate import SimConfig, SimulationError

    missing = [s for s in SECTIONS if s not in params]
    if missing:
        raise ParamError(f"params: missing section(s) {missing}")
    if not _is_int(params["seed"]) or params["seed"] < 0:
        raise ParamError(f"params seed = {params['seed']!r}: must be a non-negative integer")
    if params["device"] not in DEVICES:
        raise ParamError(f"params device = {params['device']!r}: must be one of {list(DEVICES)}")

    data = _section(params, "data")
    _choice(data, "data", "source", SOURCES)
    kuairec_dir = data.get("kuairec_dir") or ""
    if not isinstance(kuairec_dir, str):
        raise ParamError(f"params data.kuairec_dir = {kuairec_dir!r}: must be a path (text)")
    if data["source"] == "kuairec" and kuairec_dir and not resolve(kuairec_dir).is_dir():
        raise ParamError(
            f"params data.kuairec_dir = {kuairec_dir!r}: no such folder ({resolve(kuairec_dir)})"
        )

    try:
        SimConfig.from_params(params)  # also checks the labels section
    except (SimulationError, ValueError) as e:
        raise ParamError(str(e)) from e
    try:
        InteractionsConfig.from_params(_section(params, "interactions"))
        FeatureConfig.from_params(_section(params, "features"))
    except ValueError as e:
        raise ParamError(str(e)) from e

    baselines = _section(params, "baselines")
    training = {
        "mlp_hidden",
        "dropout",
        "epochs",
        "batch_size",
        "lr",
        "schedule",
        "weight_decay",
        "patience",
    }
    _known(baselines, "baselines", training)
    _check_training(baselines, "baselines")

    gnn = _section(params, "gnn")
    sizes = gnn.get("sizes")
    if not isinstance(sizes, list) or not sizes:
        raise ParamError(f"params gnn.sizes = {sizes!r}: must be a non-empty list of sizes")
    for size in sizes:
        if not _is_int(size) or size < 1:
            raise ParamError(f"params gnn.sizes = {sizes!r}: {size!r} is not a positive integer")
    if len(set(sizes)) != len(sizes):
        raise ParamError(f"params gnn.sizes = {sizes!r}: a size is listed twice")
    _known(
        gnn,
        "gnn",
        training | {"sizes", "arch", "n_layers", "layer_mix", "edge_input", "max_steps_per_epoch"},
    )
    _int_at_least(gnn, "gnn", "max_steps_per_epoch", 1)
    _choice(gnn, "gnn", "arch", GRAPH_MODELS)
    _int_at_least(gnn, "gnn", "n_layers", 1)
    _choice(gnn, "gnn", "layer_mix", ("last", "mean"))
    _choice(gnn, "gnn", "edge_input", ("concat", "product"))
    _check_training(gnn, "gnn")

    taste = _section(params, "taste")
    _known(
        taste,
        "taste",
        training | {"hidden", "n_layers", "tag_encoding", "max_steps_per_epoch", *TASTE_SWITCHES},
    )
    check_taste(taste)
    value_model = _section(params, "value_model")
    check_value_model(value_model, sizes, taste["hidden"])
    ablation = _section(params, "ablation")
    _known(ablation, "ablation", {"n_seeds"})
    _int_at_least(ablation, "ablation", "n_seeds", 1)
    claims = _section(params, "claims")
    _known(claims, "claims", {"w_tolerance", "effect_tolerance"})
    for name in ("w_tolerance", "effect_tolerance"):
        _in_range(claims, "claims", name, lambda v: v > 0, "must be a positive number")

    check_head_weights(_section(params, "head_weights"))
    check_causal(_section(params, "causal"))
    debias = _section(params, "debias")
    _known(
        debias, "debias", {"correction", "selectivity", "prior_sd", "min_session_length", "n_boot"}
    )
    check_debias(debias)


def check_value_model(section: Mapping[str, Any], gnn_sizes: list[int], taste_hidden: int) -> None:
    """``value_model.seeds`` lists distinct non-negative integers; ``downstream`` names
    trained value models, each once; ``headline`` is ``best`` or one of them."""
    _known(section, "value_model", {"seeds", "downstream", "downstream_users", "headline"})
    _int_at_least(section, "value_model", "downstream_users", 1)
    seeds = section.get("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(_is_int(v) and v >= 0 for v in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ParamError(
            f"params value_model.seeds = {seeds!r}: must be a non-empty list of distinct "
            "integers of at least 0"
        )
    trained = [f"gnn_h{h}" for h in gnn_sizes] + [f"taste_h{taste_hidden}"]
    downstream = section.get("downstream")
    if (
        not isinstance(downstream, list)
        or not downstream
        or len(set(downstream)) != len(downstream)
        or not set(downstream) <= set(trained)
    ):
        raise ParamError(
            f"params value_model.downstream = {downstream!r}: must list trained models, each "
            f"once, of {trained}"
        )
    _choice(section, "value_model", "headline", ("best", *downstream))


def check_pipeline(params: Mapping[str, Any], dvc_yaml: str | Path) -> None:
    """The pipeline beside params.yaml trains one GNN stage per ``gnn.sizes`` (``foreach``), but
    the ``auc_table`` stage names the GNNs it compares in its dependencies (DVC cannot derive
    them from a list): a size added to or dropped from ``gnn.sizes`` alone would fail there, on
    a missing dependency, after the earlier stages ran. Checked first instead, with the fix."""
    stages = load_params(dvc_yaml).get("stages", {})
    deps = stages.get("auc_table", {}).get("deps", [])
    compared = sorted(
        int(d.removeprefix("models/gnn_h"))
        for d in deps
        if isinstance(d, str) and d.removeprefix("models/gnn_h").isdigit()
    )
    sizes = params["gnn"]["sizes"]
    if compared and compared != sorted(sizes):
        names = ", ".join(f"gnn_h{h}" for h in compared)
        raise ParamError(
            f"params gnn.sizes = {sizes!r}: the auc_table stage of {Path(dvc_yaml).name} compares "
            f"{names}; list the same models in its deps (models/gnn_h<size>) and its -p models"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m kuairec_utils.params [params.yaml]``: exit 2 with the reason when a value
    is bad, 0 (silently) when all are fine. With a dvc.yaml beside params.yaml, its GNN stages
    are checked against ``gnn.sizes`` too."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else PARAMS_FILE
    try:
        params = load_params(path)
        check_params(params)
        if (path.parent / "dvc.yaml").exists():
            check_pipeline(params, path.parent / "dvc.yaml")
    except ParamError as e:
        print(f"{path.name}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
