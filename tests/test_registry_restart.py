"""A PostgreSQL server that restarts while a search writes loses nothing.

Uses a cluster of its own (``eval "$(.ci/postgres.sh --restartable)"``: the URL in
``$HEATMAPLOSS_TEST_POSTGRES_RESTART_URL``, ``pg_ctlcluster VERSION CLUSTER`` in
``$HEATMAPLOSS_TEST_POSTGRES_CTL``), since stopping the shared one would break other tests. Skips
without them, except under ``CI=true``, where they must be set.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from heatmaploss.registry import Registry, RegistryError, engine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SUPPORT = Path(__file__).resolve().parent / "search_support.py"
URL_ENV, CTL_ENV = "HEATMAPLOSS_TEST_POSTGRES_RESTART_URL", "HEATMAPLOSS_TEST_POSTGRES_CTL"


@pytest.fixture
def server():
    """``(url, ctl)``: a fresh schema on the restartable server and ``ctl(action)``."""
    base, ctl = os.environ.get(URL_ENV), os.environ.get(CTL_ENV)
    if not (base and ctl):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but ${URL_ENV} / ${CTL_ENV} are not set: run "
                        'eval "$(.ci/postgres.sh --restartable)" before pytest', pytrace=False)
        pytest.skip(f"needs ${URL_ENV} and ${CTL_ENV} (.ci/postgres.sh --restartable)")

    def control(action: str) -> None:
        subprocess.run([*shlex.split(ctl), action, *(["-m", "fast"] if action == "stop" else [])],
                       check=True, capture_output=True, timeout=120)

    control("start") if _down(base) else None
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, pool_pre_ping=True)  # its connection outlives the restarts
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False), control
    finally:
        if _down(base):
            control("start")
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _down(url: str) -> bool:
    probe = create_engine(url)
    try:
        with probe.connect():
            return False
    except Exception:
        return True
    finally:
        probe.dispose()


def _models(url: str):
    with Registry(url=url) as registry:
        return registry.models(status=None)


def test_a_search_rides_through_a_server_restart(server, tmp_path):
    url, control = server
    env = {**os.environ, "HEATMAPLOSS_DATABASE_URL": url, "TF_CPP_MIN_LOG_LEVEL": "3"}
    search = subprocess.Popen([sys.executable, str(SUPPORT), str(tmp_path), "4", "1.0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(search.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # restart once the search is writing its models
            assert search.poll() is None, "".join(err_lines)[-3000:]
            if len(_models(url)) >= 1:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no model recorded within 300 s")
        control("stop")  # the search keeps training and must wait for the server to record
        deadline = time.monotonic() + 100  # within the registry's retry budget (120 s)
        while not any("retrying for up to" in line for line in err_lines):
            assert time.monotonic() < deadline and search.poll() is None, "".join(err_lines)
            time.sleep(0.2)
        time.sleep(3)  # a few failed attempts
        control("start")
        out = search.stdout.read()
        search.wait(timeout=600)
        reader.join(timeout=60)
        err = "".join(err_lines)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    assert search.returncode == 0, err[-3000:]
    assert "completed: 0,1,2,3" in out
    models = _models(url)
    assert sorted(models["trial"]) == ["0", "1", "2", "3"] and models["trial"].is_unique
    assert (models["status"] == "completed").all()


def test_a_longer_outage_stops_with_one_line_and_the_run_resumes(server, monkeypatch):
    url, control = server
    registry = Registry(url=url)
    search_id = registry.get_or_create_search(experiment="exp1", protocol="controlled",
                                              group="cce", name="outage", profile="smoke")
    registry.record_model(search_id, "0", val_accuracy=0.5)
    monkeypatch.setattr(engine, "RETRY_BUDGET_S", 3.0)
    control("stop")
    try:
        with pytest.raises(RegistryError) as info:
            registry.record_model(search_id, "1", val_accuracy=0.6)
    finally:
        control("start")
    message = str(info.value)
    assert "\n" not in message, message
    assert ":***@" in message and ":heatmaploss@" not in message  # the password is masked
    assert "unreachable for" in message and "run again: the run continues" in message
    # The server is back: the same registry object carries on, and nothing was lost.
    registry.record_model(search_id, "1", val_accuracy=0.6)
    models = registry.models(search_id=search_id)
    assert models["trial"].tolist() == ["0", "1"]
    registry.close()
