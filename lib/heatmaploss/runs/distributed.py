"""Distributed searches: one Keras Tuner chief oracle and several workers, launched here.

Keras Tuner's own distributed mode is used as designed: every process runs the *same* search,
configured by three environment variables — ``KERASTUNER_TUNER_ID`` (``chief`` for the oracle
server, any other name for a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.
The chief only serves the oracle; each worker asks it for hyperparameters, trains, saves and
records the model in the results registry (keyed by search and trial, so a model is recorded
once whichever worker trains it), then evaluates the models it trained.

This module only launches: :func:`run_local_cluster` starts a chief and ``workers`` worker
processes for one search on this machine and waits for them. What each process runs is the
command line of the chapter whose search it is (for experiments 1 and 2:
``python -m heatmaploss.chapters.experiments.workers``), given to the launcher as a function.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

CHIEF = "chief"
_ENV_ID, _ENV_IP, _ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


class DistributedSearchError(RuntimeError):
    """A chief or worker process of a distributed search failed."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tuner_environment(tuner_id: str, host: str, port: int) -> dict[str, str]:
    """The environment variables that put Keras Tuner into distributed mode.

    Raises:
        ValueError: for an empty tuner id or a port outside 1–65535.
    """
    if not tuner_id or not tuner_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"tuner_id={tuner_id!r}: use letters, digits, '-' or '_' "
                         f"('{CHIEF}' for the oracle)")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port={port!r}: allowed 1–65535")
    return {_ENV_ID: tuner_id, _ENV_IP: host, _ENV_PORT: str(int(port))}


def run_local_cluster(command: Callable[[str, str, str], list[str]], name: str, workers: int,
                      logs: Path, timeout: float | None = None) -> None:
    """Run one search with a chief oracle and ``workers`` worker processes on this machine.

    Args:
        command: ``command(role, tuner_id, oracle)`` → the command line of one process
            (role ``chief`` or ``worker``, oracle ``HOST:PORT``); the chapter's own CLI.
        name: the search's name (for log file names and messages).
        workers: number of worker processes (≥ 1).
        logs: folder for one log file per process.
        timeout: seconds to wait for the whole search (None: no limit).

    Raises:
        ValueError: for ``workers`` < 1.
        DistributedSearchError: naming the process that failed and the end of its output.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers={workers!r}: must be a positive integer")
    logs.mkdir(parents=True, exist_ok=True)
    oracle = f"127.0.0.1:{free_port()}"
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for role, tuner_id in [("chief", CHIEF)] + [("worker", f"worker{i}") for i in range(workers)]:
            log = logs / f"{name}-{tuner_id}.log"
            with open(log, "w") as out:
                proc = subprocess.Popen(command(role, tuner_id, oracle), stdout=out,
                                        stderr=subprocess.STDOUT)
            procs.append((tuner_id, proc, log))
            if role == "chief":
                _wait_for_port(oracle, proc, log)
        deadline = None if timeout is None else time.monotonic() + timeout
        for tuner_id, proc, log in procs[1:] + procs[:1]:  # workers first, then the chief
            remaining = None if deadline is None else max(deadline - time.monotonic(), 1)
            code = proc.wait(timeout=remaining)
            if code != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise DistributedSearchError(
                    f"{tuner_id} of search {name} exited with {code}: "
                    + " | ".join(tail) + f" (full log: {log})")
    finally:
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for_port(oracle: str, proc: subprocess.Popen, log: Path, limit: float = 120) -> None:
    host, port = oracle.rsplit(":", 1)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DistributedSearchError(
                f"the chief oracle exited with {proc.returncode} before serving: "
                f"{' | '.join(log.read_text(errors='replace').splitlines()[-5:])}")
        with socket.socket() as sock:
            if sock.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.5)
    raise DistributedSearchError(f"the chief oracle did not listen on {oracle} within {limit:.0f} s "
                                 f"(log: {log})")


def enter_role(role: str, oracle: str, tuner_id: str | None = None) -> str:
    """Put this process into Keras Tuner's distributed mode as ``role`` (chief or worker).

    Args:
        role: ``chief`` or ``worker``.
        oracle: ``HOST:PORT`` where the chief listens (the chief binds it).
        tuner_id: a worker's name (default ``<host>-<pid>``).

    Returns:
        The tuner id set.

    Raises:
        ValueError: a bad role, oracle address or tuner id.
    """
    host, _, port = oracle.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"oracle={oracle!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    if role not in ("chief", "worker"):
        raise ValueError(f"role={role!r}: allowed chief, worker")
    tuner_id = CHIEF if role == "chief" else (tuner_id or f"{socket.gethostname()}-{os.getpid()}")
    if role == "worker" and tuner_id == CHIEF:
        raise ValueError(f"tuner id {CHIEF!r} is reserved for the chief")
    os.environ.update(tuner_environment(tuner_id, host, int(port)))
    return tuner_id


__all__ = ["CHIEF", "DistributedSearchError", "enter_role", "free_port", "run_local_cluster",
           "tuner_environment"]
