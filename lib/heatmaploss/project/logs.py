"""Quiet by default: TensorFlow's start-up noise is kept out of runs and notebooks.

On a machine without a GPU, TensorFlow prints lines that look like failures but are not:
absl's ``WARNING: All log messages before absl::InitializeLog() ...`` with ``I0000`` notices
(oneDNN, the CUDA stub) while it loads, ``E0000 ... failed call to cuInit`` at its first
operation, and ``WARNING:tensorflow: ... triggered tf.function retracing`` whenever a search
builds another model. None of them asks the user to do anything.

:func:`quiet` (called when :mod:`heatmaploss` is imported) therefore

* sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it (TensorFlow's C++ log; Python
  exceptions are unaffected);
* drops absl's pre-initialisation ``I``/``W`` lines while ``tensorflow`` is being imported —
  they are written to file descriptor 2 before any log level applies, so nothing but a filter
  on that descriptor can hold them back; every other line written meanwhile is passed on;
* lowers the ``tensorflow`` Python logger to ERROR once TensorFlow is loaded;
* ignores scikit-learn's ``ConvergenceWarning`` that the length scale of Keras Tuner's
  Gaussian process sits at its bound — a note on the tuner's surrogate model after a few
  trials of a one-dimensional search, not on any result.

``HEATMAPLOSS_VERBOSE=1`` in the environment (``python run_all.py --verbose`` sets it for every
notebook) turns all of this off. No TensorFlow is imported here.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Iterator

#: Environment variable that keeps TensorFlow's log output (any of 1, true, yes, on).
VERBOSE_ENV = "HEATMAPLOSS_VERBOSE"
#: Lines absl writes before its logging is initialised: the notice itself and info/warning
#: records (``I0000 00:00:1712267574.801377  681831 file.cc:12] text``). Error and fatal
#: records (``E``/``F``) are always passed on.
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are "
                   r"written to STDERR|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ ]+:\d+\] .*)$")


def verbose() -> bool:
    """True when ``$HEATMAPLOSS_VERBOSE`` asks for TensorFlow's full log output."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def drop_noise(text: str) -> str:
    """``text`` without the lines :data:`NOISE` matches (line ends kept)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not NOISE.match(line.rstrip("\r\n")))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture what is written to file descriptor 2 in the block; pass on all but noise.

    Works below Python (C++ libraries write there directly) and inside a Jupyter kernel, whose
    descriptor 2 is a pipe the kernel forwards to the notebook. Where the descriptor cannot be
    duplicated (a closed stderr), the block runs unfiltered.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = drop_noise(capture.read().decode("utf-8", errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _FilteredLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` inside :func:`filtered_stderr`."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec):  # noqa: D401 - importlib protocol
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_stderr():
            self._loader.exec_module(module)
        _quiet_python_logger(module)

    def __getattr__(self, name: str) -> Any:  # resources, get_data, ... of the real loader
        return getattr(self._loader, name)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but loads it through :class:`_FilteredLoader` (which
    also quietens its Python logger once it is loaded)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


def _quiet_python_logger(_tensorflow: Any) -> None:
    # TensorFlow configures its logger (level INFO in interactive sessions) when it is first
    # asked for it, so the level is set after that, not before the import.
    _tensorflow.get_logger().setLevel(logging.ERROR)


_installed = False


def quiet() -> bool:
    """Keep TensorFlow's start-up noise out of this process (see the module docstring).

    Safe to call repeatedly; does nothing when :func:`verbose` is true. When TensorFlow is
    already imported, only its later logging is affected.

    Returns:
        True when the quiet settings are (now) in place.
    """
    global _installed
    if verbose():
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if _installed:
        return True
    warnings.filterwarnings("ignore", message=r"The optimal value found for dimension \d+ of "
                            r"parameter length_scale", module=r"sklearn\.gaussian_process")
    if "tensorflow" in sys.modules:
        _quiet_python_logger(sys.modules["tensorflow"])
    elif not any(isinstance(f, _QuietImportFinder) for f in sys.meta_path):
        # First in line: other finders (wrapt's post-import hooks) never see "tensorflow".
        sys.meta_path.insert(0, _QuietImportFinder())
    _installed = True
    return True


__all__ = ["NOISE", "VERBOSE_ENV", "drop_noise", "filtered_stderr", "quiet", "verbose"]
