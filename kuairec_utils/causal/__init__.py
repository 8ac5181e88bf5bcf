"""The causal step (06_causal, docs/design.md section 7): the residual treatment of each session
(``residuals``), its selectivity from the quick skips and the watch depth (``selectivity``), and
the fixed-effects regressions, the instrument and the bootstrap (``regressions``)."""
