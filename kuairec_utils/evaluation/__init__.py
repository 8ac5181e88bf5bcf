"""Evaluation against the simulated platform's ground truth (never read by an estimator): the
oracle and the heads' true probabilities (``truth``), and the AUC ceilings of a model trained on
the training days (``ceilings``)."""
