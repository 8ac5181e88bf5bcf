"""Shared code of the KuaiRec multi-head value model study.

One module per concern, named in the study's words:

- ``config``   -- where things live (one place that knows paths) and ``params.yaml``
- ``kuairec``  -- the validated reader of the seven KuaiRec 2.0 files
- ``acquire``  -- download + verify the real archive, or point at an unpacked copy
- ``simulate`` -- the simulated KuaiRec platform (the embedded default data set)
"""

__version__ = "0.1.0"
