"""Many processes writing one registry at once: every record present, none duplicated.

Eight processes open the same brand-new database at the same instant (racing on schema
creation and on creating the same search), then write 500 models each, one transaction per
model with its metric row, 50 of them also written at the same moment by another process.
Run against SQLite and, when configured, PostgreSQL.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time

import pytest
from heatmaploss.registry import Registry
from registry_support import database_url  # noqa: F401  (fixture)
from sqlalchemy import create_engine, text

N_WORKERS = 8
N_RECORDS = 500
N_OVERLAP = 50
SEARCH = dict(experiment="concurrency", protocol="controlled", group="cce", name="search",
              profile="smoke", seed=7, loss_config={"classification": "cce"},
              hyperparameter_space={"learning_rate": [1e-5, 1e-3, "log"]})


def _value(key: int, round_no: int) -> float:
    return round_no + key / 10_000


def _writer(url: str, keys: list[int], round_no: int, barrier, errors) -> None:
    try:
        barrier.wait(timeout=300)  # everyone opens the (new) database at the same instant
        registry = Registry(url=url)
        search_id = registry.get_or_create_search(**SEARCH)
        for key in keys:
            registry.record_model(
                search_id, f"trial_{key:05d}", seed=key, val_accuracy=_value(key, round_no),
                hyperparameters={"learning_rate": 1e-5 * (key + 1)},
                metrics=[{"metric": "overlap", "explainer": "hirescam", "region": "heart",
                          "value": _value(key, round_no)}])
        registry.close()
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
        raise


def _run_writers(url: str, key_lists: list[list[int]], round_no: int) -> None:
    ctx = mp.get_context("spawn")  # no inherited connections, as on separate machines
    barrier = ctx.Barrier(len(key_lists))
    errors = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(url, keys, round_no, barrier, errors))
               for keys in key_lists]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    messages = []
    while True:
        try:
            messages.append(errors.get(timeout=0.5))
        except queue.Empty:
            break
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    assert [w.exitcode for w in workers] == [0] * len(workers), messages


def _check(url: str, keys: range, round_no: int, n_rewritten: int = 0) -> None:
    # Count with plain SQL, independently of the registry's own query helpers.
    engine = create_engine(url)
    with engine.connect() as conn:
        count = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        assert count("SELECT COUNT(*) FROM searches") == 1
        assert count("SELECT COUNT(*) FROM models") == len(keys)
        assert count("SELECT COUNT(DISTINCT trial) FROM models") == len(keys)
        assert count("SELECT COUNT(*) FROM metrics") == len(keys)
        assert count("SELECT COUNT(DISTINCT model_id) FROM metrics") == len(keys)
        # Each key written twice went through the update branch of the upsert exactly once.
        assert count("SELECT COUNT(*) FROM models WHERE updated_at <> created_at") == n_rewritten
    engine.dispose()
    registry = Registry(url=url)
    wide = registry.metrics_wide(experiment="concurrency")
    registry.close()
    assert sorted(wide["trial"]) == [f"trial_{k:05d}" for k in keys]
    expected = [_value(k, round_no) for k in keys]
    assert wide.sort_values("trial")["hirescam_heart"].tolist() == pytest.approx(expected)
    assert wide.sort_values("trial")["val_accuracy"].tolist() == pytest.approx(expected)


def test_eight_writers_record_4000_models_exactly_once(database_url):
    # Each process writes its own 500 models and also the first 50 of the next process's
    # block, interleaved so that both processes insert each of those 400 keys at the same time.
    blocks = [list(range(w * N_RECORDS, (w + 1) * N_RECORDS)) for w in range(N_WORKERS)]
    keys = []
    for w in range(N_WORKERS):
        shared = zip(blocks[w][:N_OVERLAP], blocks[(w + 1) % N_WORKERS][:N_OVERLAP])
        keys.append([k for pair in shared for k in pair] + blocks[w][N_OVERLAP:])
    _run_writers(database_url, keys, round_no=1)
    _check(database_url, range(N_WORKERS * N_RECORDS), round_no=1,
           n_rewritten=N_WORKERS * N_OVERLAP)


def _write_forever(url: str) -> None:
    registry = Registry(url=url)
    search_id = registry.get_or_create_search(**SEARCH)
    key = 0
    while True:
        registry.record_model(search_id, f"trial_{key:05d}", val_accuracy=0.5,
                              metrics=[{"metric": "overlap", "explainer": "hirescam",
                                        "region": "heart", "value": 0.5}])
        key += 1


def test_writer_killed_mid_write_leaves_only_whole_records(database_url):
    registry = Registry(url=database_url)
    writer = mp.get_context("spawn").Process(target=_write_forever, args=(database_url,))
    writer.start()
    deadline = time.monotonic() + 120
    while len(registry.models()) < 50 and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.1)  # let it write a while, then SIGKILL it (almost surely mid-write)
    writer.kill()
    writer.join()
    models = registry.models()
    # Keys were written in order, one transaction per model with its metric: the killed
    # transaction is rolled back entirely and everything before it is there.
    assert len(models) >= 50
    assert models["trial"].tolist() == [f"trial_{k:05d}" for k in range(len(models))]
    assert len(registry.metrics()) == len(models)
    # ... and the database takes new writes afterwards.
    search_id = registry.get_or_create_search(**SEARCH)
    registry.record_model(search_id, "after_the_crash")
    assert len(registry.models()) == len(models) + 1
    registry.close()
