"""Shared code of the KuaiRec multi-head value model study (docs/design.md).

One folder per step of the study, in the order the pipeline runs them; a lower step never
imports a higher one:

- ``config``, ``heads``, ``metrics``, ``params``, ``study`` -- paths, the four heads, the metrics
  writer, the checks of params.yaml, the study's published figures
- ``data``      -- the validated reader of the KuaiRec 2.0 files, sessions, the interaction table
- ``simulate``  -- the simulated KuaiRec platform (the default data set) and its calibration
- ``acquire``   -- picks the simulator or the download of the real archive
- ``features``  -- user, item, context and leak-free history features
- ``models``    -- the value models behind one interface, their registry and training
- ``weights``   -- feeds and candidates, the head-weight estimators and their registry
- ``causal``    -- residuals, selectivity, the regressions
- ``evaluation``-- the oracle and every step against the simulator's truth
- ``report``, ``stage`` -- the results page; running a notebook as a pipeline stage
"""

import os

__version__ = "0.1.0"

# Bitwise-reproducible CPU training. MKL, torch's CPU BLAS, may otherwise take a different code
# path from one process to the next (by the operands' memory alignment, by the CPU model), so the
# same seed could train a model that differs in the last bits, and early stopping can turn those
# into a different epoch. MKL's "conditional numerical reproducibility" in STRICT mode fixes the
# path: "AUTO,STRICT" gives the same bytes on every CPU where MKL picks the same branch, with the
# same thread count, at no measurable cost here. MKL reads the variable at its first call, so
# importing this package before any torch computation is enough; a value already exported wins
# (e.g. "COMPATIBLE,STRICT": MKL's one branch for every x86-64 CPU). What is identical across
# CPUs, and what only on the same machine: the README.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
