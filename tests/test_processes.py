"""Worker processes: tasks run elsewhere, workers are replaced as they grow, failures come back."""

from __future__ import annotations

import functools
import os
import signal
import time

import psutil
import pytest
from heatmaploss.runs import processes
from heatmaploss.runs.processes import WorkerDiedError, WorkerPool

#: Memory a worker holds on to, per task (what TensorFlow does with each ``fit``).
_HELD: list[bytearray] = []


def whoami(state: dict, x: int) -> tuple[int, int, str]:
    return os.getpid(), x * state["factor"], state["name"]


def hold(state: dict, megabytes: int) -> int:
    _HELD.append(bytearray(os.urandom(1)) * (megabytes * 2**20))
    return os.getpid()


def fail(state: dict, text: str) -> None:
    raise ValueError(f"bad value {text!r}")


def die(state: dict) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_tasks_run_in_a_worker_that_keeps_its_state():
    with WorkerPool(limit=3, growth_limit=10.0) as pool:
        state = {"factor": 3, "name": "a"}
        answers = [pool.call(whoami, state, i) for i in range(5)]
        other = pool.call(whoami, {"factor": 1, "name": "b"}, 7)
    pids = [pid for pid, _, _ in answers]
    assert os.getpid() not in pids
    assert [value for _, value, _ in answers] == [0, 3, 6, 9, 12]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4]  # replaced after 3 tasks
    assert other[1:] == (7, "b") and other[0] == pids[3]  # another state, the same worker
    assert pool.started == 2 and pool.pid is None


def test_a_worker_is_replaced_before_it_grows_past_the_limit():
    # Each task keeps 60 MB: with a 1 % limit of the run (this process may hold TensorFlow:
    # 1-3 GB), one task per worker after the growth per task has been seen once.
    with WorkerPool(limit=50, growth_limit=0.01) as pool:
        pids = [pool.call(hold, {}, 60) for _ in range(5)]
    assert pids[0] == pids[1]  # the first worker shows the growth per task
    assert len(set(pids[1:])) == 4  # then a fresh worker per task
    # Tasks that keep nothing share one worker.
    with WorkerPool(limit=50, growth_limit=0.05) as pool:
        pids = {pool.call(whoami, {"factor": 1, "name": ""}, i)[0] for i in range(6)}
    assert len(pids) == 1


def test_in_process_mode_and_the_setting():
    pool = WorkerPool(limit=0)
    assert pool.call(whoami, {"factor": 2, "name": "x"}, 4) == (os.getpid(), 8, "x")
    assert processes.tasks_per_process(3) == 3
    with pytest.raises(ValueError, match="tasks_per_process=-1: must be a non-negative integer"):
        processes.tasks_per_process(-1)


def test_the_setting_from_the_environment(monkeypatch):
    monkeypatch.setenv(processes.TASKS_PER_PROCESS_ENV, "0")
    assert processes.tasks_per_process() == 0
    monkeypatch.setenv(processes.TASKS_PER_PROCESS_ENV, "many")
    with pytest.raises(ValueError, match=r"\$HEATMAPLOSS_TASKS_PER_PROCESS='many'"):
        processes.tasks_per_process()


def test_errors_come_back_with_the_workers_traceback_and_the_worker_goes_on():
    with WorkerPool(limit=5) as pool:
        with pytest.raises(ValueError, match="bad value 'x'") as info:
            pool.call(fail, {}, "x")
        assert "in fail" in str(info.value.__cause__)
        assert pool.call(whoami, {"factor": 1, "name": ""}, 1)[1] == 1


def test_a_killed_worker_is_reported_and_replaced():
    with WorkerPool(limit=5) as pool:
        with pytest.raises(WorkerDiedError, match="ended with signal SIGKILL"):
            pool.call(die, {}, name="search k")
        assert pool.call(whoami, {"factor": 1, "name": ""}, 2)[1] == 2


def test_work_that_cannot_be_pickled_is_refused_before_it_starts():
    pool = WorkerPool(limit=5)
    with pytest.raises(TypeError, match="search k: cannot send the work to a worker process"):
        pool.prepare({"build": lambda: None}, "search k")
    pool.prepare({"build": functools.partial(whoami, {})}, "search k")  # fine
    assert pool.pid is None  # nothing was started


def test_an_idle_shared_worker_stops():
    pool = WorkerPool(limit=5, idle_seconds=0.5)
    pid = pool.call(whoami, {"factor": 1, "name": ""}, 1)[0]
    deadline = time.monotonic() + 30
    while (pool.pid is not None or psutil.pid_exists(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool.pid is None and not psutil.pid_exists(pid)


def tqdm_lock_kind(state: dict) -> str:
    from tqdm.auto import tqdm

    for _ in tqdm(range(2), disable=True):
        pass
    return type(tqdm.get_lock()).__module__


def test_workers_hold_no_named_semaphore_that_a_killed_worker_would_leak():
    # A worker killed with its notebook's kernel must leave nothing for the system to clean.
    with WorkerPool(limit=5) as pool:
        assert pool.call(tqdm_lock_kind, {}) == "_thread"  # a thread lock, no semaphore


def test_free_heap_memory_is_returned_after_each_task():
    # What the worker does after every task; a no-op where the C library has no malloc_trim.
    processes._return_free_memory()
    processes._return_free_memory()
    assert processes._malloc_trim is not None  # looked up once, then kept
    with WorkerPool(limit=5) as pool:  # the worker goes on after returning memory
        assert [pool.call(whoami, {"factor": 2, "name": "m"}, i)[1] for i in range(3)] == [0, 2, 4]
