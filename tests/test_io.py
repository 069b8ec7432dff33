"""Crash-safe outputs: atomic writes, figures, summary.json merging."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
from heatmaploss.project import files as io


def test_atomic_write_replaces_whole_file_and_uses_normal_permissions(tmp_path):
    target = tmp_path / "a.json"
    io.write_json(target, {"x": np.float32(1.5), "nan": math.nan, "arr": np.arange(3)})
    assert json.loads(target.read_text()) == {"x": 1.5, "nan": None, "arr": [0, 1, 2]}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "no temporary file left behind"


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.txt"
    io.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_summary_deep_merges_parts(tmp_path):
    io.update_summary(tmp_path, {"a": {"x": 1, "y": {"z": 2}}})
    io.update_summary(tmp_path, {"a": {"y": {"w": 3}}, "b": [1]})
    assert io.read_summary(tmp_path) == {"a": {"x": 1, "y": {"z": 2, "w": 3}}, "b": [1]}


def test_save_figure_writes_png_and_pdf(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    written = io.save_figure(fig, "line", tmp_path)
    plt.close(fig)
    assert sorted(p.name for p in written) == ["line.pdf", "line.png"]
    assert (tmp_path / "line.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="plain name"):
        io.save_figure(fig, "bad.png", tmp_path)


def _try_lock(path, queue):
    import filelock

    try:
        with io.locked(path, timeout=0.2):
            queue.put("acquired")
    except filelock.Timeout:
        queue.put("timeout")


def test_lock_excludes_another_process_and_is_released(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    lock = tmp_path / ".x.lock"
    queue = ctx.Queue()
    with io.locked(lock):
        child = ctx.Process(target=_try_lock, args=(lock, queue))
        child.start()
        child.join(60)
        assert queue.get(timeout=5) == "timeout", "a second process got the lock while held"
    child = ctx.Process(target=_try_lock, args=(lock, queue))
    child.start()
    child.join(60)
    assert queue.get(timeout=5) == "acquired", "the lock was not released"
