"""Pure tasks over large in-memory inputs, in forked worker processes (the machine's cores).

The workers are forked with the inputs already in memory, so nothing large is pickled: only the
items go to them and the results come back. Every result equals the one-process result, since
each task is a pure function of its item and of the shared inputs; the estimates do not depend
on the number of processes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tqdm.auto import tqdm

SHARED: Any = None  # the inputs of the running fork_map, read by its tasks


def fork_map(
    task: Callable[[Any], Any],
    items: Iterable,
    n_jobs: int,
    shared: Any,
    desc: str | None = None,
    progress: bool = False,
) -> list:
    """``[task(item) for item in items]``, in ``n_jobs`` forked processes when n_jobs > 1 (and
    the platform can fork; else in this process), with a progress bar. ``task`` must be a
    module-level function; it reads ``shared`` as ``kuairec_utils.parallel.SHARED``."""
    global SHARED
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    items = list(items)
    bar = {"total": len(items), "desc": desc, "leave": False, "disable": not progress}
    SHARED = shared
    try:
        if n_jobs == 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return list(tqdm((task(item) for item in items), **bar))
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(n_jobs, len(items)), mp_context=context) as pool:
            chunk = max(1, len(items) // (4 * n_jobs))
            return list(tqdm(pool.map(task, items, chunksize=chunk), **bar))
    finally:
        SHARED = None
