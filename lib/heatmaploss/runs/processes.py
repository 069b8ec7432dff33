"""Worker processes for trials and evaluations, replaced as their memory grows: runs stay bounded.

TensorFlow and Keras keep state from every ``fit`` that ``keras.backend.clear_session`` does not
free (earlier measured here at about 20 MB per trial for the small CNN and 200–400 MB for
VGG16), and the C heap keeps a finished task's freed buffers unless asked to give them back, so
a long search in one process grows without bound. The study runner therefore trains and
evaluates in a :class:`WorkerPool`: one worker process at a time, started with ``spawn``
(TensorFlow is not fork-safe) when a task arrives. After each task the worker returns the
heap's free pages to the system (glibc's ``malloc_trim``; with it, VGG16 tasks of the toy-size
``thesis-tiny`` profile that reuse a traced model grew the worker by 0–5 MB each, without it by
75–175 MB, which replaced the worker every second task). The worker is replaced before its
memory would grow by more than :data:`GROWTH_LIMIT` of the whole run's (this process and the
worker), judged from the typical growth per task seen so far (the median of the last few tasks
that reused a state; a task that brings a new state also builds its caches), and at the latest
after ``tasks_per_process`` tasks. What a worker accumulated goes back to the system when it
exits. The process that owns the pool only hands out work (the Keras Tuner oracle, the
registry): it never builds a model.

A task is ``function(state, *args)``. Its *state* (a model builder, a data factory, an
evaluation) is pickled once per pool and sent once per worker, which keeps the last few states
it received, so consecutive studies share one worker. Callables in a state must be
module-level functions or :func:`functools.partial` of them, and objects that cache data
should drop the cache when pickled so that the worker rebuilds it
(:class:`heatmaploss.pipeline.SyntheticTrainingData` regenerates its images there).
``tasks_per_process=0`` runs every task in the calling process instead (debugging, or callables
that cannot be pickled). :func:`shared_pool` is the pool the study runner uses: one per process,
its idle worker stopped after :data:`IDLE_SECONDS`.

Written on :mod:`multiprocessing` rather than :class:`concurrent.futures.ProcessPoolExecutor`:
the executor's ``max_tasks_per_child`` starts a replacement worker as soon as one retires, even
after the last task (a process that imports TensorFlow for nothing), it cannot replace a worker
by its memory, and it offers no way to stop a worker that is still training when the caller is
interrupted. No TensorFlow import.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from multiprocessing.connection import wait
from typing import Any, Callable

#: Environment variable that overrides :data:`DEFAULT_TASKS_PER_PROCESS` (0: no workers).
TASKS_PER_PROCESS_ENV = "HEATMAPLOSS_TASKS_PER_PROCESS"
#: The most tasks (trials or evaluations) a worker runs before it is replaced, whatever its
#: memory (state outside the process's RSS, such as GPU memory, may grow too).
DEFAULT_TASKS_PER_PROCESS = 20
#: A worker is replaced before its next task would grow its resident memory, since its first
#: task, by more than this fraction of the whole run's (``benchmarks/search_memory.py``).
GROWTH_LIMIT = 0.08
#: Growth per task is estimated from the median of this many recent tasks.
RECENT_TASKS = 5
#: An idle worker of the shared pool stops after this many seconds (its memory is returned).
IDLE_SECONDS = 30.0
#: States a worker keeps (a study's training and evaluation work).
KEPT_STATES = 2


class WorkerDiedError(RuntimeError):
    """A worker process ended (killed, out of memory, crashed) before finishing its task."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (its ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def tasks_per_process(value: int | None = None) -> int:
    """The most tasks per worker: ``value``, else ``$HEATMAPLOSS_TASKS_PER_PROCESS``, else
    :data:`DEFAULT_TASKS_PER_PROCESS`.

    Args:
        value: tasks per worker process; 0 runs every task in the calling process.

    Returns:
        A non-negative integer.

    Raises:
        ValueError: the value (or the variable) is not a non-negative integer.
    """
    source = "tasks_per_process"
    if value is None:
        text = os.environ.get(TASKS_PER_PROCESS_ENV, "").strip()
        if not text:
            return DEFAULT_TASKS_PER_PROCESS
        source = f"${TASKS_PER_PROCESS_ENV}"
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{source}={text!r}: must be a non-negative integer "
                             "(0: run in this process)") from None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{source}={value!r}: must be a non-negative integer "
                         "(0: run in this process)")
    return value


class WorkerPool:
    """Runs ``function(state, *args)`` in a worker process that is replaced as its memory grows.

    Args:
        limit: the most tasks per worker process (None: :func:`tasks_per_process`'s default;
            0: run in this process).
        growth_limit: replace a worker before its next task would grow its memory by more than
            this fraction of the whole run's (see :data:`GROWTH_LIMIT`).
        idle_seconds: stop a worker that has had no task for this long (None: never).
    """

    def __init__(self, limit: int | None = None, growth_limit: float = GROWTH_LIMIT,
                 idle_seconds: float | None = None) -> None:
        self.limit = tasks_per_process(limit)
        self.growth_limit = growth_limit
        self.idle_seconds = idle_seconds
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._payloads: dict[int, tuple[Any, str, bytes]] = {}  # id(state) → (state, key, bytes)
        self._process: Any = None
        self._conn: Any = None
        self._sent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._done = 0
        self._first_rss = self._last_rss = 0  # the worker's RSS after its first / last task
        self._run_rss = 0  # the whole run's RSS after the worker's first task
        # Growth of a worker's RSS per task, in recent tasks (carried over to the next worker).
        self._steps: collections.deque[int] = collections.deque(maxlen=RECENT_TASKS)
        #: Worker processes started so far.
        self.started = 0

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None when none runs)."""
        process = self._process
        return process.pid if process is not None else None

    def prepare(self, state: Any, name: str = "task") -> None:
        """Pickle ``state`` now, so that one that cannot be sent fails before any work starts.

        Raises:
            TypeError: ``state`` cannot be pickled (the message says what to pass instead).
        """
        if self.limit:
            with self._lock:
                self._payload(state, name)

    def call(self, function: Callable[..., Any], state: Any, *args: Any,
             name: str = "task") -> Any:
        """Run ``function(state, *args)`` in the worker and return its result.

        Args:
            function: a module-level function (pickled by reference).
            state: what the task needs (pickled once per pool, sent once per worker).
            *args: the task's own arguments.
            name: names the work in messages (e.g. a search key).

        Raises:
            TypeError: ``state`` cannot be pickled (the message says what to pass instead).
            WorkerDiedError: the worker process ended before it answered.
            Exception: whatever ``function`` raised in the worker (its traceback attached as
                the ``__cause__``).
        """
        if not self.limit:
            return function(state, *args)
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            key, payload = self._payload(state, name)
            if self._process is not None and self._should_retire():
                self._stop(kill=False)
            if self._process is None:
                self._start()
            self._done += 1
            new_state = key not in self._sent
            message = (function, key, payload if new_state else None, args)
            self._remember(key)
            try:
                self._conn.send(message)
                ready = wait([self._conn, self._process.sentinel])
                if self._conn not in ready:
                    raise EOFError
                status, value = self._conn.recv()
            except (EOFError, OSError):
                code = self._stop(kill=True)
                raise WorkerDiedError(
                    f"{name}: the worker process running {function.__name__} ended with "
                    f"{_describe_exit(code)} before it finished (killed, or out of memory? in a "
                    "script, is its code under `if __name__ == \"__main__\":`, as worker "
                    "processes need?); run again to continue") from None
            except BaseException:  # interrupted: a worker still training must not go on
                self._stop(kill=True)
                raise
            self._measure(new_state)
            if self.idle_seconds is not None:
                self._timer = threading.Timer(self.idle_seconds, self._idle)
                self._timer.daemon = True
                self._timer.start()
        if status == "ok":
            return value
        error, text = value
        raise error from RemoteTraceback(text)

    def _payload(self, state: Any, name: str) -> tuple[str, bytes]:
        found = self._payloads.get(id(state))
        if found is None or found[0] is not state:
            try:
                data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise TypeError(
                    f"{name}: cannot send the work to a worker process ({exc}): pass "
                    "module-level functions or functools.partial of them (no lambdas or local "
                    f"functions), or set tasks_per_process=0 (${TASKS_PER_PROCESS_ENV}=0) to "
                    "run in this process") from None
            found = (state, hashlib.sha256(data).hexdigest(), data)
            if len(self._payloads) >= KEPT_STATES:  # the worker keeps no more either
                self._payloads.pop(next(iter(self._payloads)))
            self._payloads[id(state)] = found
        return found[1], found[2]

    def _remember(self, key: str) -> None:
        # The worker keeps the last KEPT_STATES states it was sent, in this order.
        self._sent.pop(key, None)
        self._sent[key] = None
        while len(self._sent) > KEPT_STATES:
            self._sent.popitem(last=False)

    def _measure(self, new_state: bool) -> None:
        """Note the worker's memory after a task (and, for a task that reused its state, the
        growth per task)."""
        import psutil

        try:
            rss = psutil.Process(self._process.pid).memory_info().rss
        except (psutil.Error, AttributeError):
            return
        if self._done == 1:
            self._first_rss = rss
            self._run_rss = rss + psutil.Process().memory_info().rss
        elif not new_state:
            self._steps.append(max(rss - self._last_rss, 0))
        self._last_rss = rss

    def _should_retire(self) -> bool:
        """Whether the worker is done: task limit, or the next task would pass the growth limit
        (predicted from the typical growth per task, seen in this worker or earlier ones)."""
        if self._done >= self.limit:
            return True
        step = sorted(self._steps)[len(self._steps) // 2] if self._steps else 0
        grown = self._last_rss - self._first_rss
        return grown + step > self.growth_limit * self._run_rss

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True,
                                        name="heatmaploss-worker")
        self._process.start()
        child.close()
        self._conn = parent
        self._sent.clear()
        self._done = 0
        self.started += 1

    def _stop(self, kill: bool) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self._sent.clear()
        if process is None:
            return None
        if not kill:
            try:
                conn.send(None)  # the worker leaves its loop and exits
            except OSError:
                kill = True
        if kill:
            process.kill()
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()
        conn.close()
        return process.exitcode

    def _idle(self) -> None:
        if self._lock.acquire(blocking=False):
            try:
                self._stop(kill=False)
            finally:
                self._lock.release()

    def close(self, kill: bool = False) -> None:
        """Stop the worker: let it exit (default) or kill it at once (``kill=True``)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._stop(kill)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        self.close(kill=exc_type is not None)


_SHARED: dict[int, WorkerPool] = {}


def shared_pool(limit: int | None = None) -> WorkerPool:
    """This process's pool for ``limit`` (see :func:`tasks_per_process`), created on first use.

    Studies run one after another share its worker (until the worker is replaced); the worker
    stops after :data:`IDLE_SECONDS` without a task, and when this process exits.
    """
    limit = tasks_per_process(limit)
    if limit not in _SHARED:
        _SHARED[limit] = WorkerPool(limit, idle_seconds=IDLE_SECONDS)
    return _SHARED[limit]


@atexit.register
def _close_shared() -> None:
    for pool in _SHARED.values():
        pool.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def in_worker() -> bool:
    """Whether this process is a worker process (whose progress bars nobody would see: its
    output is not a notebook's)."""
    return multiprocessing.parent_process() is not None


def _serve(conn: Any) -> None:
    """The worker's loop: receive ``(function, key, payload, args)``, answer
    ``(status, value)``."""
    # Ctrl-C reaches the whole process group: the owner handles it (and stops this worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # On a GPU, take memory as needed rather than all of it: the owner may need some too.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # tqdm's default lock is a named semaphore in a spawned process: one that a worker killed
    # with its kernel (a notebook shut down) would leak, and the system would warn about.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    states: collections.OrderedDict[str, Any] = collections.OrderedDict()
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the owner is gone
            return
        if message is None:
            return
        function, key, payload, args = message
        try:
            if payload is not None:
                states[key] = pickle.loads(payload)
            states.move_to_end(key)
            while len(states) > KEPT_STATES:
                states.popitem(last=False)
            answer = ("ok", function(states[key], *args))
            _return_free_memory()
        except Exception as exc:  # every failure goes back to the owner
            answer = ("error", (_portable(exc), traceback.format_exc()))
        try:
            conn.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("error", (RuntimeError(f"result of {function.__name__} cannot be "
                                              f"sent back: {exc}"), traceback.format_exc())))


def _return_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing), so that the worker's RSS, which decides when it is replaced, counts what it
    holds rather than what the allocator kept of a finished task's buffers."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


__all__ = ["DEFAULT_TASKS_PER_PROCESS", "GROWTH_LIMIT", "IDLE_SECONDS", "KEPT_STATES",
           "RECENT_TASKS", "TASKS_PER_PROCESS_ENV", "RemoteTraceback", "WorkerDiedError",
           "WorkerPool", "in_worker", "shared_pool", "tasks_per_process"]
