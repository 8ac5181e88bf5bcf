"""The names params.yaml may choose among, each written here once.

The registries and checks that use them import them from here: ``params`` (which checks
params.yaml without torch or scipy), the head-weight estimators' registry
(``head_weights.estimators.ESTIMATORS``, keyed by ``ESTIMATORS`` in this order), the debiasing
corrections (``debias.correct``), the learning-rate schedules (``models.training``) and the
selection model's jackknife (``head_weights.selection``). A new estimator's name goes here and
its function into the registry; the registry refuses a name missing on either side.
"""

GRAPH_MODELS: tuple[str, ...] = ("gcn",)  # the graph value models gnn.arch may name
SCHEDULES: tuple[str, ...] = ("cosine", "constant")  # learning-rate schedules (gnn, taste)
ESTIMATORS: tuple[str, ...] = ("plain", "rank_logit", "selection")  # head-weight estimators
CORRECTIONS: tuple[str, ...] = ("structural", "fitted")  # debias.correction
SELECTIVITIES: tuple[str, ...] = ("in_sample", "cross_fitted")  # debias.selectivity
JACKKNIFE_MIN_FEED = 10  # the shortest feed the selection model's split-panel jackknife splits
