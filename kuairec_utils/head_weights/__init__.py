"""The head-weight step (05_head_weights): the sessions' feeds and candidates scored by a value
model (``feeds``), the study's simulated-moments estimator and the rank-ordered logit
(``moments``), and the case-control selection model of the long feeds (``selection``)."""
