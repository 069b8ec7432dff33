"""Crash-safe file output: atomic writes, figures as PNG + PDF, and ``summary.json``.

A run killed at any instant must leave either the old file or the new one, never half of
one; every writer in the project goes through these helpers.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock

SUMMARY_NAME = "summary.json"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Args:
        path: final destination.
        suffix: suffix of the temporary file (defaults to the destination's, so writers that
            infer the format from the name, such as matplotlib, keep working).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file with mode 0600; give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, tuples and non-finite floats for JSON.

    NaN and ±inf become ``None`` so that the output is strict JSON readable by any program.
    """
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented, strict JSON atomically and return the path."""
    return write_text(path, json.dumps(to_jsonable(data), indent=2, sort_keys=True) + "\n")


def save_figure(fig, name: str, figures_dir: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Save a matplotlib figure as ``<name>.png`` and ``<name>.pdf`` atomically.

    Args:
        fig: a matplotlib Figure.
        name: explicit figure name, e.g. ``exp1_heart_overlap_hist`` (no extension).
        figures_dir: destination folder.
        dpi: resolution of the PNG.

    Returns:
        The two written paths.
    """
    if not name or "/" in name or "." in name:
        raise ValueError(f"figure name {name!r} must be a plain name without '/' or extension")
    out = []
    for ext in ("png", "pdf"):
        target = Path(figures_dir) / f"{name}.{ext}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=ext)
        out.append(target)
    return out


def _deep_merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


@contextlib.contextmanager
def locked(lock_path: str | os.PathLike, timeout: float = -1) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the block.

    Lets several processes (e.g. notebooks run in parallel) read-modify-write one file safely,
    on every platform: :class:`filelock.FileLock` uses ``fcntl`` on POSIX and ``msvcrt`` on
    Windows, where the hand-written ``fcntl`` lock this replaces silently took no lock.

    Args:
        lock_path: the lock file (kept after the block; its contents are irrelevant).
        timeout: seconds to wait for the lock; negative waits for ever.

    Raises:
        filelock.Timeout: the lock was not acquired within ``timeout`` seconds.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path), timeout=timeout):
        yield


def update_json(path: str | os.PathLike, update: Callable[[Any], Any], default: Any = None) -> Any:
    """Read-modify-write the JSON file ``path`` under a lock, writing the result atomically.

    Args:
        path: the JSON file; its lock is ``.<stem>.lock`` in the same folder.
        update: called with the current contents (``default`` when the file is absent); returns
            the new contents.
        default: contents assumed for a missing file.

    Returns:
        The new contents, as written (numpy values etc. converted by ``to_jsonable``).
    """
    path = Path(path)
    with locked(path.parent / f".{path.stem}.lock"):
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                current = json.load(fh)
        else:
            current = default
        new = to_jsonable(update(current))
        write_json(path, new)
    return new


def update_summary(results: str | os.PathLike, part: dict) -> dict:
    """Deep-merge ``part`` into ``<results>/summary.json`` (process-safe, atomic).

    Each notebook contributes its own top-level keys; re-running a notebook replaces its
    values and leaves the other notebooks' entries alone.

    Args:
        results: a profile's results folder.
        part: nested mapping of statistics (numpy values are converted).

    Returns:
        The whole summary after the update.
    """
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    return update_json(results / SUMMARY_NAME,
                       lambda current: _deep_merge(current, to_jsonable(part)), default={})


def read_summary(results: str | os.PathLike) -> dict:
    """Return the contents of ``<results>/summary.json`` (empty dict when absent)."""
    path = Path(results) / SUMMARY_NAME
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# -- checksums: artefacts a resumed run trusts are checked, and set aside when damaged ----------

#: Name of the checksum list of a folder of cached files (:func:`write_manifest`).
MANIFEST_NAME = ".checksums.json"


class DamagedFileWarning(UserWarning):
    """A file a resumed run would have trusted was damaged; it was moved aside and is redone."""


def sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes (read in chunks: models can be large)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: str | os.PathLike, expected_sha256: str | None = None) -> str | None:
    """Why an existing file cannot be trusted, or None when it can.

    Args:
        path: the file.
        expected_sha256: its digest recorded when it was written. Without one, a ``.keras``
            model (a zip archive) is checked member by member against the archive's own CRCs:
            truncated or altered archives fail.

    Returns:
        None for a good file, else a short reason (``"missing"``, ``"checksum differs"`` ...).
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        return "missing"
    try:
        if expected_sha256:
            return None if sha256(path) == expected_sha256 else "checksum differs from the " \
                "one recorded when it was written"
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f"archive member {bad} is corrupt"
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a damaged file out of the way, with a :class:`DamagedFileWarning` naming it.

    The file is renamed ``<name>.damaged-<UTC time>`` in its folder (kept for inspection,
    never trusted again); the caller redoes its work.

    Returns:
        Where the file now lies.
    """
    import time
    import warnings

    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for n in range(2, 1000):  # the same file damaged twice within a second
        if not target.exists():
            break
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, target)
    warnings.warn(f"{path} is damaged ({reason}): moved aside to {target.name}; its work is "
                  "done again", DamagedFileWarning, stacklevel=2)
    return target


def write_manifest(folder: str | os.PathLike, paths: list[Path]) -> Path:
    """Record the SHA-256 of ``paths`` (files under ``folder``) in ``<folder>/.checksums.json``."""
    folder = Path(folder)
    return write_json(folder / MANIFEST_NAME,
                      {str(Path(p).relative_to(folder)): sha256(p) for p in sorted(paths)})


def check_manifest(folder: str | os.PathLike) -> list[Path] | None:
    """Check the files listed in ``<folder>/.checksums.json``; set aside the damaged ones.

    Returns:
        The listed files that were missing or damaged (damaged ones are moved aside with a
        warning), or None when the list itself is missing or unreadable (then nothing in the
        folder can be trusted).
    """
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        if not isinstance(listed, dict):
            return None
    except (OSError, ValueError):
        return None
    bad = []
    for name, digest in sorted(listed.items()):
        path = folder / name
        reason = check_file(path, digest)
        if reason is not None:
            if path.exists():
                set_aside(path, reason)
            bad.append(path)
    return bad


# -- the run lock: one live run per results folder ----------------------------------------------

#: Lock file and owner record of a folder's run lock (:func:`run_lock`).
RUN_LOCK_NAME, RUN_OWNER_NAME = ".run.lock", ".run.owner.json"


class FolderInUseError(RuntimeError):
    """Another live process holds the run lock of a results folder."""


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the run lock of ``folder`` for the block; refuse when another process holds it.

    The lock is an operating-system file lock (``filelock``): the system releases it when its
    process ends, so a crashed or killed run never leaves a stale lock behind. Who holds it
    (process id, host, command line, start time) is written next to it, for the message a
    second run gets. Processes the holder starts itself (notebook kernels, search workers) do
    not take the lock and are never refused.

    Args:
        folder: the results folder (created if missing).

    Yields:
        The folder.

    Raises:
        FolderInUseError: another live process holds the lock (the message names it).
    """
    import datetime
    import socket
    import sys

    import filelock

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / RUN_LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise FolderInUseError(
            f"results folder {folder} is in use by {_lock_owner(folder)}: wait for it to "
            "finish, or choose another results folder") from None
    try:
        write_json(folder / RUN_OWNER_NAME, {
            "pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})
        yield folder
    finally:
        lock.release()


def _lock_owner(folder: Path) -> str:
    """Who holds ``folder``'s run lock, in words (from its owner record)."""
    try:
        owner = json.loads((folder / RUN_OWNER_NAME).read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
    import socket

    import psutil

    if host == socket.gethostname() and not psutil.pid_exists(pid):
        return "another process"  # the record is an older run's: the holder has not written yet
    return (f"process {pid} on {host} ({owner.get('command') or 'unknown command'}, started "
            f"{owner.get('started', '?')})")
