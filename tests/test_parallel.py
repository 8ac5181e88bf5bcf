"""The forked worker processes: the same results, in order, as one process."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
import pytest

from kuairec_utils import parallel
from kuairec_utils.parallel import fork_map, release_free_heap


def _row_sum_and_pid(i: int) -> tuple[float, int]:
    return float(parallel.SHARED[i].sum()), os.getpid()


def test_fork_map_reads_the_shared_inputs_in_the_workers_and_keeps_the_order() -> None:
    shared = np.random.default_rng(0).random((40, 1000))
    one = fork_map(_row_sum_and_pid, range(40), 1, shared)
    two = fork_map(_row_sum_and_pid, range(40), 2, shared)
    assert [v for v, _ in one] == [v for v, _ in two] == [float(r.sum()) for r in shared]
    assert {pid for _, pid in one} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in two}  # the work ran in the forked workers
    assert parallel.SHARED is None  # nothing is left behind for the next call


def _inner_sum(i: int) -> float:
    return float(parallel.SHARED[i].sum())


def _nested(i: int) -> tuple[float, float]:
    """A task that runs a fork_map of its own (in its process) before it reads its inputs."""
    inner = fork_map(_inner_sum, range(3), 1, np.ones((3, 4)) * i)
    return sum(inner), float(parallel.SHARED[i].sum())


def test_a_task_that_runs_fork_map_itself_keeps_its_own_shared_inputs() -> None:
    shared = np.arange(40.0).reshape(8, 5)
    expected = [(12.0 * i, float(shared[i].sum())) for i in range(8)]
    assert fork_map(_nested, range(8), 1, shared) == expected
    assert fork_map(_nested, range(8), 2, shared) == expected  # a worker's second task too
    assert parallel.SHARED is None


@pytest.mark.parametrize("n_jobs", [0, -1, 1.5, True])
def test_fork_map_names_a_bad_number_of_processes(n_jobs: object) -> None:
    with pytest.raises(ValueError, match="n_jobs must be a positive integer"):
        fork_map(_row_sum_and_pid, range(3), n_jobs, np.zeros((3, 2)))


def test_release_free_heap_returns_freed_small_arrays_to_the_system() -> None:
    import psutil

    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        assert release_free_heap() is False  # no malloc_trim: nothing to do, and it says so
        return
    process = psutil.Process()
    small = [np.ones(2_000) for _ in range(20_000)]  # 16 KB each, on the heap: 320 MB
    keep = np.ones(2_000)  # allocated after them, so the heap's top stays in use
    before = process.memory_info().rss
    del small
    held = process.memory_info().rss
    assert release_free_heap()
    after = process.memory_info().rss
    assert before - held < 100 * 2**20  # freeing alone kept most of the pages
    assert held - after > 200 * 2**20  # the release gave them back
    assert keep.sum() == 2_000
