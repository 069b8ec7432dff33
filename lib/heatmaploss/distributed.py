"""Distributed searches: one Keras Tuner chief oracle, several workers, one registry.

Keras Tuner's own distributed mode is used as designed: every process runs the *same* search,
configured by three environment variables — ``KERASTUNER_TUNER_ID`` (``chief`` for the oracle
server, any other name for a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.
The chief only serves the Bayesian-optimisation oracle; each worker asks it for a learning rate,
trains, saves and records the model in the results registry (keyed by search and trial, so a
model is recorded once whichever worker trains it), then evaluates the models it trained.

On one machine, :func:`run_local_cluster` starts the chief and ``workers`` worker processes for
one search and waits for them (``run_all.py --workers N`` and the notebooks' ``workers``
parameter use it). Across machines, start the processes yourself with the command line below,
all with the same experiment arguments and one PostgreSQL registry::

    # machine A (chief; reachable on port 8000):
    python -m heatmaploss.distributed chief --experiment 1 --profile thesis --seed 0 \\
        --search-key exp1-controlled-heatmap-thesis-seed0 --oracle 0.0.0.0:8000 \\
        --database-url postgresql+psycopg2://user:pass@db-host/heatmaploss
    # machines B, C, ... (one worker each, distinct --tuner-id):
    python -m heatmaploss.distributed worker --tuner-id worker-b --oracle A:8000 ...same args...

Then run the notebook (or ``run_all.py``) anywhere with the same ``database_url``: searches
whose models are all recorded are not reopened, so it only collects and compares.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

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


def _command(role: str, tuner_id: str, oracle: str, experiment: int, profile: str, seed: int,
             results_dir: Path, search_key: str, protocols: str | None,
             database_url: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "heatmaploss.distributed", role, "--tuner-id", tuner_id,
           "--oracle", oracle, "--experiment", str(experiment), "--profile", profile,
           "--seed", str(seed), "--results-dir", str(results_dir), "--search-key", search_key]
    if protocols:
        cmd += ["--protocols", protocols]
    if database_url:
        cmd += ["--database-url", database_url]
    return cmd


def run_local_cluster(experiment: int, profile: str, seed: int, results_dir: str | Path,
                      search_key: str, workers: int, protocols: str | None = None,
                      database_url: str | None = None, timeout: float | None = None) -> None:
    """Run one search with a chief oracle and ``workers`` worker processes on this machine.

    Args:
        experiment, profile, seed, results_dir, protocols, database_url: as for
            :func:`heatmaploss.experiments.run_experiment`.
        search_key: the search to run (``SearchSpec.key``).
        workers: number of worker processes (≥ 1).
        timeout: seconds to wait for the whole search (None: no limit).

    Raises:
        ValueError: for ``workers`` < 1.
        DistributedSearchError: naming the process that failed and the end of its output.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r}: must be a positive integer")
    results_dir = Path(results_dir)
    logs = results_dir / "tuner" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    oracle = f"127.0.0.1:{free_port()}"
    env = dict(os.environ)
    lib = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [lib, env.get("PYTHONPATH")]))
    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for role, tuner_id in [("chief", CHIEF)] + [("worker", f"worker{i}") for i in range(workers)]:
            log = logs / f"{search_key}-{tuner_id}.log"
            with open(log, "w") as out:
                proc = subprocess.Popen(
                    _command(role, tuner_id, oracle, experiment, profile, seed, results_dir,
                             search_key, protocols, database_url),
                    env=env, stdout=out, stderr=subprocess.STDOUT)
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
                    f"{tuner_id} of search {search_key} exited with {code}: "
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


def main(argv: list[str] | None = None) -> int:
    """Command line: run the chief or one worker of a distributed search."""
    parser = argparse.ArgumentParser(prog="python -m heatmaploss.distributed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("chief", "worker"))
    parser.add_argument("--tuner-id", default=None, help="worker name (default: host-pid)")
    parser.add_argument("--oracle", required=True, metavar="HOST:PORT",
                        help="where the chief listens (chief: the address to bind)")
    parser.add_argument("--experiment", type=int, required=True, choices=(1, 2))
    parser.add_argument("--profile", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--search-key", required=True)
    parser.add_argument("--protocols", default=None)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    host, _, port = args.oracle.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--oracle {args.oracle!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    tuner_id = CHIEF if args.role == "chief" else (
        args.tuner_id or f"{socket.gethostname()}-{os.getpid()}")
    if args.role == "worker" and tuner_id == CHIEF:
        parser.error("--tuner-id chief is reserved for the chief")
    os.environ.update(tuner_environment(tuner_id, host, int(port)))
    logging.basicConfig(level=logging.INFO, format=f"[{tuner_id}] %(levelname)s %(message)s")

    from . import experiments

    experiments.run_search_process(args.experiment, args.profile, args.seed, args.results_dir,
                                   args.search_key, protocols=args.protocols,
                                   database_url=args.database_url,
                                   evaluate=args.role == "worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
