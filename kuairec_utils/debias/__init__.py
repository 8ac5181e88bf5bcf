"""Engagement signals at a common selectivity (notebook 07, docs/design.md section 7): the
corrections (``correct``) and their evaluation against the simulator's truth (``evaluate``)."""
