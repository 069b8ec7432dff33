"""Quiet runs: TensorFlow's start-up noise stays out unless HEATMAPLOSS_VERBOSE asks for it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from heatmaploss.project import logs

NOISY = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796096017.429950   19168 port.cc:153] oneDNN custom operations are on.
W0000 00:00:1796096017.431048   19168 cudart_stub.cc:31] Could not find cuda drivers.
E0000 00:00:1796096019.480112   19168 cuda_platform.cc:52] a real error is kept
a line of the user's own
"""


def test_noise_lines_are_dropped_and_everything_else_kept():
    assert logs.drop_noise(NOISY) == (
        "E0000 00:00:1796096019.480112   19168 cuda_platform.cc:52] a real error is kept\n"
        "a line of the user's own\n")


def _run(code: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", logs.VERBOSE_ENV)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**env, **env_extra})


@pytest.mark.slow
def test_importing_heatmaploss_keeps_tensorflow_quiet():
    pytest.importorskip("tensorflow")
    code = ("import heatmaploss, os, sys, tensorflow as tf\n"
            "print(int(tf.constant(1) + 1), os.environ['TF_CPP_MIN_LOG_LEVEL'],\n"
            "      tf.get_logger().level)\n"
            "print('kept', file=sys.stderr)\n")
    quiet = _run(code)
    assert quiet.returncode == 0 and quiet.stdout.split() == ["2", "3", "40"], quiet.stderr
    assert quiet.stderr == "kept\n", "only the program's own stderr remains"


def test_verbose_keeps_tensorflow_settings_untouched():
    code = ("import os, sys\nfrom heatmaploss.project import logs\n"
            "print(logs.quiet(), 'TF_CPP_MIN_LOG_LEVEL' in os.environ,\n"
            "      any(type(f).__name__ == '_QuietImportFinder' for f in sys.meta_path))\n")
    assert _run(code, HEATMAPLOSS_VERBOSE="1").stdout.split() == ["False", "False", "False"]
    assert _run(code).stdout.split() == ["True", "True", "True"]


def test_the_tuners_surrogate_model_notice_is_not_shown():
    code = ("import warnings\nimport heatmaploss\nfrom sklearn.exceptions import ConvergenceWarning\n"
            "from sklearn.gaussian_process import kernels\n"
            "warnings.warn_explicit('The optimal value found for dimension 0 of parameter "
            "length_scale is close to the specified lower bound 1e-05.', ConvergenceWarning,\n"
            "                       kernels.__file__, 445, module='sklearn.gaussian_process.kernels')\n"
            "warnings.warn('another warning is kept')\n")
    done = _run(code)
    assert "length_scale" not in done.stderr and "another warning is kept" in done.stderr
