"""Engagement signals at a common selectivity (notebook 07, docs/design.md section 7): the
corrections (``correct``), the cross-fitted selectivity (``crossfit``), one value model's run and
records (``run``), and the evaluation against the exact target of the simulator's truth
(``target``, ``evaluate``)."""
