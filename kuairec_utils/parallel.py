"""Pure tasks over large in-memory inputs, in forked worker processes (the machine's cores).

The workers are forked with the inputs already in memory, so nothing large is pickled: only the
items go to them and the results come back. Every result equals the one-process result, since
each task is a pure function of its item and of the shared inputs; the estimates do not depend
on the number of processes.

Before it forks, ``fork_map`` hands the C heap's free pages back to the system
(``release_free_heap``): a worker that allocates in pages its parent had freed but kept would
copy them, and at full scale the freed problem of one estimator (GBs) was still held when the
next one forked.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tqdm.auto import tqdm

SHARED: Any = None  # the inputs of the running fork_map, read by its tasks


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # glibc's; other C libraries (macOS, musl) have none and return memory their own way
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the operating system (glibc's ``malloc_trim(0)``).

    numpy arrays under glibc's mmap threshold (up to 32 MB once large arrays have been freed)
    live on the heap, and freeing them leaves the pages with the process. Returns whether
    memory was released (False where the C library has no ``malloc_trim``). Changes no value.
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


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
    module-level function; it reads ``shared`` as ``kuairec_utils.parallel.SHARED``. A task may
    call ``fork_map`` again: the inner call restores the outer ``SHARED`` when it returns."""
    global SHARED
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    items = list(items)
    bar = {"total": len(items), "desc": desc, "leave": False, "disable": not progress}
    outer, SHARED = SHARED, shared
    try:
        if n_jobs == 1 or len(items) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return list(tqdm((task(item) for item in items), **bar))
        release_free_heap()  # the workers then start from the pages in use only
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(n_jobs, len(items)), mp_context=context) as pool:
            chunk = max(1, len(items) // (4 * n_jobs))
            return list(tqdm(pool.map(task, items, chunksize=chunk), **bar))
    finally:
        SHARED = outer
