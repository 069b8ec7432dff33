"""Engines for the results database: URL checks, safe SQLite settings, transient-error retries.

The registry writes from many processes at once (parallel notebooks, Keras Tuner workers,
several machines). SQLite copes with that when it runs in WAL mode, waits on a busy timeout,
and takes its write lock at the *start* of a write transaction (``BEGIN IMMEDIATE``): a
deferred transaction that reads first and then tries to write can fail at once with "database is
locked", busy timeout or not. PostgreSQL needs deadlocks retried, and a server that restarts
while a long search writes must not end the search: pooled connections are pinged before use,
and a transaction that loses its connection, or cannot connect while the server restarts, is
run again until :data:`RETRY_BUDGET_S` is spent (the registry's writes are idempotent upserts,
so running one twice is harmless). Past the budget the run stops with a one-line error, and
starting it again continues where it stopped.

Every failure a user can cause (bad URL, server down, a file that is not a database, a folder
that cannot be written) becomes a :class:`RegistryError` with a one-line message that names the
value (passwords masked) and the fix.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

log = logging.getLogger(__name__)

T = TypeVar("T")

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: Seconds SQLite waits for another writer's lock before reporting "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Seconds a PostgreSQL connection attempt may take (an unreachable host would hang otherwise).
POSTGRES_CONNECT_TIMEOUT_S = 10
#: Total seconds spent retrying one transaction that keeps failing with a transient error
#: (a locked SQLite file, a deadlock, a PostgreSQL server that restarts).
RETRY_BUDGET_S = 120.0
#: Execution option that makes an SQLite transaction take the write lock when it begins.
WRITE_OPTION = "heatmaploss_write"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_URL_HELP = ("use sqlite:///<path/to/file.sqlite> or "
             "postgresql+psycopg2://user:password@host:5432/dbname")
# Substrings / SQLSTATE codes of errors that succeed when the transaction is simply run again.
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy")
_TRANSIENT_PGCODES = ("40001", "40P01")  # serialization failure, deadlock detected
# A server that shuts down, restarts or crashes (SQLSTATE classes 08 and 57P0x), and what the
# driver says when it cannot reach one: the same transaction succeeds once the server is back.
_UNREACHABLE_PGCODES = ("57P01", "57P02", "57P03")
_UNREACHABLE_MESSAGES = ("connection refused", "could not connect", "server closed the connection",
                         "terminating connection", "the database system is starting up",
                         "the database system is shutting down",
                         "the database system is in recovery mode", "connection already closed",
                         "no connection to the server", "could not receive data from server",
                         "could not send data to server", "ssl syscall error", "eof detected",
                         "connection reset by peer", "connection timed out")


class RegistryError(RuntimeError):
    """The results database cannot be used; the message says why and how to fix it."""


def mask_url(url: str | URL) -> str:
    """Return ``url`` as text with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: mask anything between "user:" and "@" by hand
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", str(url))


def first_line(exc: BaseException) -> str:
    """The first non-empty line of a driver error, without SQLAlchemy's background links."""
    text = str(getattr(exc, "orig", None) or exc)
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line
    return type(exc).__name__


def parse_url(url: str) -> URL:
    """Parse and validate a database URL.

    Args:
        url: an SQLAlchemy URL with an ``sqlite`` or ``postgresql`` scheme.

    Returns:
        The parsed URL.

    Raises:
        RegistryError: the text is not a URL or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RegistryError(f"database URL {mask_url(url)!r} is not a URL: {_URL_HELP}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # the libpq / Heroku spelling
        backend = "postgresql"
    if backend not in SUPPORTED_BACKENDS:
        raise RegistryError(
            f"unsupported database URL scheme {parsed.drivername!r} in {mask_url(parsed)!r}: "
            f"{_URL_HELP}"
        )
    if backend == "postgresql" and not driver:
        # SQLAlchemy's default PostgreSQL driver changed between versions (psycopg2 → psycopg):
        # use whichever of the two is installed.
        driver = next((name for name in ("psycopg2", "psycopg")
                       if importlib.util.find_spec(name) is not None), "psycopg2")
    return parsed.set(drivername=f"{backend}+{driver}" if driver else backend)


def not_a_database(path: str | Path, reason: str | None = None) -> RegistryError:
    """The error for a registry file that exists but is not an SQLite database."""
    detail = f" ({reason})" if reason else ""
    return RegistryError(
        f"registry file {str(path)!r} is not an SQLite database{detail}: move it aside (it is "
        "left untouched) or point HEATMAPLOSS_DATABASE_URL / the results dir elsewhere"
    )


def sqlite_path(url: URL) -> Path | None:
    """The file behind an SQLite URL, or None for an in-memory database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def check_sqlite_file(path: Path) -> None:
    """Fail early, with a fix, when an SQLite registry file cannot work.

    Args:
        path: the database file (need not exist yet).

    Raises:
        RegistryError: its folder cannot be created or written (SQLite also writes ``-wal`` and
            ``-shm`` files next to it), it is a folder, or it exists but is not SQLite.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".registry-write-test-"):
            pass
    except OSError as exc:
        raise RegistryError(
            f"results folder {str(folder)!r} is not writable ({exc.strerror or exc}): choose a "
            "writable results dir (run_all.py --results-dir DIR) or fix its permissions"
        ) from None
    if path.is_dir():
        raise RegistryError(
            f"registry path {str(path)!r} is a folder, not a database file: remove or rename it"
        )
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            header = fh.read(len(_SQLITE_MAGIC))
        if header != _SQLITE_MAGIC:
            raise not_a_database(path)


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    # Hand transaction control to the "begin" hook below: pysqlite's own implicit BEGIN is
    # deferred and would take the write lock only at the first write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # WAL: readers never block the writer and vice versa; the mode is stored in the file.
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL never corrupts the file and survives killed processes; only an OS
        # crash may roll back the last commits (re-running re-records them). FULL costs an
        # fsync per commit: 3x slower here.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: URL) -> Engine:
    """Create an engine for a validated URL, configured for concurrent writers.

    Args:
        url: result of :func:`parse_url`.

    Returns:
        The engine (no connection is opened yet).

    Raises:
        RegistryError: the driver named in the URL is not installed.
    """
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        connect_args = {}
        if url.get_driver_name() in ("psycopg2", "psycopg"):
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
        # A long search outlives idle connections that a server, a restart or a NAT drops:
        # ping each pooled connection before use (one round trip, negligible next to a trial),
        # recycle them after 30 min, and retry a transaction that loses its connection anyway
        # (is_transient).
        return create_engine(url, connect_args=connect_args, pool_recycle=1800,
                             pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise RegistryError(
            f"no driver for {mask_url(url)!r} ({first_line(exc)}): install it (for "
            "postgresql+psycopg2: pip install 'heatmaploss[postgres]') or name an installed one"
        ) from None


def is_unreachable(exc: BaseException) -> bool:
    """True when the database server cannot be reached right now (restarting, shutting down,
    connection lost or refused)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:  # server restarted or connection dropped: reconnect
        return True
    pgcode = getattr(exc.orig, "pgcode", None) or ""
    if pgcode.startswith("08") or pgcode in _UNREACHABLE_PGCODES:
        return True
    message = str(exc.orig).lower()
    return any(text in message for text in _UNREACHABLE_MESSAGES)


def is_transient(exc: BaseException) -> bool:
    """True for errors that go away when the transaction is run again.

    Locks held by other writers, deadlocks, dead pooled connections (the pool reconnects) and a
    server that is restarting (:func:`is_unreachable`).
    """
    if not isinstance(exc, DBAPIError):
        return False
    if is_unreachable(exc):
        return True
    pgcode = getattr(exc.orig, "pgcode", None)
    if pgcode in _TRANSIENT_PGCODES:
        return True
    message = str(exc.orig).lower()
    return any(text in message for text in _TRANSIENT_MESSAGES)


def retry_transient(run: Callable[[], T], url: URL, budget_s: float | None = None,
                    wait_for_server: bool = True) -> T:
    """Call ``run`` until it does not fail with a transient database error.

    Args:
        run: one whole transaction (it must be safe to repeat: the registry's writes are
            idempotent upserts).
        url: the database URL, for the error message.
        budget_s: give up after this many seconds of retrying (default
            :data:`RETRY_BUDGET_S`).
        wait_for_server: also retry while the server is unreachable (False when a registry
            is opened: a wrong host or a stopped server is reported at once).

    Returns:
        What ``run`` returns.

    Raises:
        RegistryError: the error persisted for ``budget_s`` seconds.
    """
    budget_s = RETRY_BUDGET_S if budget_s is None else budget_s
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            return run()
        except DBAPIError as exc:
            if not is_transient(exc) or (not wait_for_server and is_unreachable(exc)):
                raise
            waited = time.monotonic() - start
            if waited > budget_s:
                if is_unreachable(exc):
                    raise RegistryError(
                        f"results database {mask_url(url)!r} unreachable for {waited:.0f} s "
                        f"({first_line(exc)}): start the server (or fix the network), then run "
                        "again: the run continues where it stopped") from None
                raise RegistryError(
                    f"results database {mask_url(url)!r} stayed busy for {waited:.0f} s "
                    f"({first_line(exc)}): another process holds a long transaction; retry later"
                ) from None
            attempt += 1
            delay = min(2.0, 0.02 * 2 ** attempt) * random.uniform(0.5, 1.5)
            (log.warning if attempt == 1 and is_unreachable(exc) else log.debug)(
                "database error (%s); retrying for up to %.0f s", first_line(exc), budget_s)
            time.sleep(delay)

