"""Shared code of the KuaiRec multi-head value model study.

One module per concern, named in the study's words:

- ``config``   -- where things live (one place that knows paths) and ``params.yaml``
- ``kuairec``  -- the validated reader of the seven KuaiRec 2.0 files
- ``acquire``  -- download + verify the real archive, or point at an unpacked copy
- ``simulate`` -- the simulated KuaiRec platform (the embedded default data set)
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
