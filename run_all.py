#!/usr/bin/env python
"""Regenerate every figure and statistic: run the notebooks in order with papermill.

    python run_all.py                      # default profile (quick)
    python run_all.py --profile smoke      # seconds to minutes, what CI runs
    python run_all.py --profile thesis     # full scale, one GPU
    python run_all.py --profile thesis --tiny   # the thesis profile's code paths at toy size
    python run_all.py --list               # notebooks, their parameters, profiles
    python run_all.py --only 02 --force    # one chapter, even if already done
    python run_all.py --param acdc_root=/data/ACDC/database
    python run_all.py --verbose            # keep TensorFlow's and the kernels' log output

Outputs go to ``<results-dir>/<profile>/``: executed notebooks in ``notebooks/``, figures in
``figures/`` (PNG + PDF), statistics in ``stats/``, the index of all statistics in
``summary.json`` and the reproduction report in ``report.md`` / ``report.html``.

A notebook that finished for the same parameters and the same notebook source is skipped on
the next run unless ``--force`` is given; an interrupted notebook is run again and resumes
from what its library calls already saved (searches, trained models, datasets).

Relative paths mean what they mean in the shell the command was typed in: ``--results-dir``,
every path-like notebook parameter (a name ending in ``_dir``, ``_root``, ``_path``, ``_file``
or ``_folder``) and a relative SQLite URL (``--param database_url=...`` or
``$HEATMAPLOSS_DATABASE_URL``) are resolved against the current directory before papermill
starts a kernel (whose own working directory is ``notebooks/``).

One run at a time uses a results folder: a second ``run_all.py`` on a folder in use stops at once
and names the process that uses it.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from heatmaploss.project import files, logs, paths
from heatmaploss.project.profiles import PROFILE_NAMES, PROFILES, TINY_SUFFIX

DEFAULT_PROFILE = "quick"
#: Parameters every notebook takes; run_all.py sets them itself.
STANDARD_PARAMETERS = ("profile", "seed", "results_dir")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
#: A notebook parameter whose name ends so holds a path (resolved against the current folder).
PATH_SUFFIXES = ("_dir", "_root", "_path", "_file", "_folder")
#: The notebook parameter that holds a results-database URL.
DATABASE_PARAMETER = "database_url"
#: Kernel arguments of a quiet run (ipykernel's own "quiet" level): the kernel's log lines —
#: that it talks to papermill over local TCP without encryption, or "KeyboardInterrupt caught
#: in kernel" when jupyter_client interrupts it while shutting it down — are not the user's
#: concern; a failing cell is reported by papermill, not by this log.
QUIET_KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=CRITICAL",)


class RunAllError(Exception):
    """A problem with the command line or a notebook, reported as one line."""


def discover_notebooks(notebooks_dir: Path = paths.NOTEBOOKS_DIR) -> list[Path]:
    """Return the numbered chapter notebooks (``NN_name.ipynb``) in run order."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise RunAllError(f"no notebooks named NN_*.ipynb in {notebooks_dir}")
    return found


def notebook_parameters(path: Path) -> dict[str, dict]:
    """Parameters declared in a notebook's ``parameters`` cell (via papermill)."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def parse_param(text: str) -> tuple[str, object]:
    """Parse ``NAME=VALUE``; VALUE is a Python literal, or a plain string if it is not one."""
    if "=" not in text:
        raise RunAllError(f"--param {text!r}: expected NAME=VALUE, e.g. --param seed=3")
    name, raw = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise RunAllError(f"--param {text!r}: {name!r} is not a valid parameter name")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name, value


def check_parameters(notebook: Path, declared: dict[str, dict], given: dict[str, object]) -> None:
    """Refuse parameters a notebook does not declare or whose type does not match."""
    for name, value in given.items():
        if name not in declared:
            allowed = ", ".join(sorted(declared)) or "(none)"
            raise RunAllError(
                f"{notebook.name}: unknown parameter {name!r}; this notebook takes: {allowed}"
            )
        type_name = (declared[name].get("inferred_type_name") or "").strip()
        expected = _TYPES.get(type_name)
        if expected is None:
            continue
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise RunAllError(
                f"{notebook.name}: parameter {name}={value!r} has type "
                f"{type(value).__name__}; expected {type_name} "
                f"(default {declared[name].get('default')})"
            )


def fingerprint(notebook: Path, parameters: dict) -> str:
    """Hash of the notebook source and its parameters: what a finished run is keyed on."""
    digest = hashlib.sha256(notebook.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks whose name or number matches one of ``only``."""
    if not only:
        return notebooks
    wanted = [w for item in only for w in item.split(",") if w]
    chosen = []
    for nb in notebooks:
        if any(nb.stem == w or nb.name == w or nb.stem.startswith(f"{w}_")
               or nb.stem.split("_", 1)[0] == w.zfill(2) for w in wanted):
            chosen.append(nb)
    unmatched = [w for w in wanted if not any(
        nb.stem == w or nb.name == w or nb.stem.startswith(f"{w}_")
        or nb.stem.split("_", 1)[0] == w.zfill(2) for nb in notebooks)]
    if unmatched:
        names = ", ".join(nb.stem for nb in notebooks)
        raise RunAllError(f"--only {','.join(unmatched)}: no such notebook; available: {names}")
    return chosen


def resolve_paths(parameters: dict[str, object], base: Path) -> dict[str, object]:
    """Make path-like parameters absolute against ``base`` (the user's current folder).

    Args:
        parameters: notebook parameters.
        base: the folder relative paths are meant from.

    Returns:
        A copy in which every non-empty string parameter named ``*_dir``, ``*_root``,
        ``*_path``, ``*_file`` or ``*_folder`` is an absolute path (``~`` expanded), and a
        relative SQLite ``database_url`` points at ``base``.
    """
    out = dict(parameters)
    for name, value in parameters.items():
        if not isinstance(value, str) or not value:
            continue
        if name.endswith(PATH_SUFFIXES):
            out[name] = str((base / Path(value).expanduser()).resolve())
        elif name == DATABASE_PARAMETER:
            out[name] = paths.absolute_sqlite_url(value, base)
    return out


def check_database(results: Path, url: str | None = None) -> str:
    """Open the results database once before any notebook runs and say which one it is.

    A bad URL or a registry file that is not a database stops the run at once with the
    registry's one-line message instead of inside a notebook.

    Args:
        results: the profile's results folder (holds the default SQLite file).
        url: a ``--param database_url``, if given (else ``$HEATMAPLOSS_DATABASE_URL`` or the
            default).

    Returns:
        A line naming the database (password masked) and where its URL came from.
    """
    from heatmaploss.registry import Registry, RegistryError
    from heatmaploss.registry.engine import mask_url

    try:
        registry = Registry(url or None, results_dir=results)
    except (RegistryError, ValueError) as exc:
        raise RunAllError(str(exc)) from None
    registry.close()
    source = ("--param database_url" if url else
              "the default: the results folder" if registry.source == "results dir"
              else registry.source)
    return f"database: {mask_url(registry.url)} ({source})"


def lock_results(results: Path, stack: contextlib.ExitStack) -> None:
    """Hold the results folder's run lock until ``stack`` closes (the run ends).

    A second ``run_all.py`` on a folder that a live run uses is refused with a one-line
    message naming that process. The lock is released by the system when its process ends,
    so a crashed or killed run leaves no stale lock; the processes a run starts itself
    (notebook kernels, ``--workers`` search processes, training workers) never take it.
    """
    try:
        stack.enter_context(files.run_lock(results))
    except files.FolderInUseError as exc:
        raise RunAllError(str(exc)) from None


def describe_failure(exc: Exception, notebook: Path, output: Path) -> str:
    """One line naming the notebook, the failing cell and the error."""
    cell = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell [{cell}]" if cell is not None else "a cell"
    return (f"{notebook.name} failed in {where}: {ename}: {evalue} "
            f"(executed notebook with the traceback: {output})")


def run_notebook(notebook: Path, parameters: dict, output: Path, progress: bool,
                 verbose: bool = False) -> float:
    """Execute one notebook with papermill; return its wall time in seconds.

    Args:
        notebook: the chapter notebook.
        parameters: its parameters (paths already absolute).
        output: where the executed notebook is written.
        progress: show papermill's per-cell progress bar.
        verbose: keep the kernel's and TensorFlow's log output (else both are quiet:
            :mod:`heatmaploss.project.logs`).
    """
    import papermill

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name="python3",
        cwd=str(notebook.parent), progress_bar=progress, log_output=False,
        extra_arguments=[] if verbose else list(QUIET_KERNEL_ARGUMENTS),
    )
    return time.perf_counter() - start


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run every chapter notebook for one profile (papermill).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE,
                        help=f"one of {', '.join(PROFILE_NAMES)} (default {DEFAULT_PROFILE})")
    parser.add_argument("--tiny", action="store_true",
                        help="run the profile's every code path at toy size (profile "
                             "<profile>-tiny, VGG16 random weights; thesis only): minutes on a "
                             "CPU, numbers meaningless")
    parser.add_argument("--vgg16-weights", default="", metavar="PATH",
                        help="local copy of Keras's VGG16 no-top ImageNet weights "
                             "(vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) for machines "
                             "without internet; passed to notebooks that take `vgg16_weights`")
    parser.add_argument("--only", action="append", metavar="NB",
                        help="run only these notebooks (number or name; repeat or comma-separate)")
    parser.add_argument("--list", action="store_true",
                        help="list notebooks, their parameters and the profiles, then exit")
    parser.add_argument("--results-dir", default=str(paths.DEFAULT_RESULTS_ROOT),
                        help="root folder for outputs; each profile writes to <root>/<profile>")
    parser.add_argument("--force", action="store_true",
                        help="re-run notebooks even if they already finished with these parameters")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes per model search (Keras Tuner chief + N workers "
                             "on this machine); passed to notebooks that take `workers`")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="extra notebook parameter, passed to every notebook that declares it")
    parser.add_argument("--no-progress", action="store_true", help="hide per-cell progress bars")
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's and the notebook kernels' log output "
                             f"(sets ${logs.VERBOSE_ENV}=1 for every notebook)")
    parser.add_argument("--notebooks-dir", default=str(paths.NOTEBOOKS_DIR),
                        help="folder of NN_*.ipynb chapter notebooks (default: notebooks/)")
    return parser


def list_notebooks(notebooks: list[Path]) -> None:
    print("Profiles:")
    for name in PROFILE_NAMES:
        print(f"  {name:11s} {PROFILES[name].description}")
    print("Notebooks (in run order) and their parameters:")
    for nb in notebooks:
        print(f"  {nb.stem}")
        for name, info in notebook_parameters(nb).items():
            comment = f"  # {info['help']}" if info.get("help") else ""
            print(f"      {name}: {info.get('inferred_type_name')} = {info.get('default')}{comment}")


def main(argv: list[str] | None = None) -> int:
    with contextlib.ExitStack() as held:  # the results folder's run lock, once taken
        return _main(argv, held)


def _main(argv: list[str] | None, held: contextlib.ExitStack) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[logs.VERBOSE_ENV] = "1"  # inherited by every notebook's kernel
    here = Path.cwd()
    try:
        if args.profile not in PROFILE_NAMES:
            raise RunAllError(
                f"--profile {args.profile!r}: unknown profile; allowed: {', '.join(PROFILE_NAMES)}"
            )
        if args.tiny:
            tiny = args.profile + TINY_SUFFIX
            if tiny not in PROFILE_NAMES:
                allowed = [n[:-len(TINY_SUFFIX)] for n in PROFILE_NAMES if n.endswith(TINY_SUFFIX)]
                raise RunAllError(f"--tiny with --profile {args.profile!r}: no toy-size copy of "
                                  f"that profile; --tiny goes with --profile {', '.join(allowed)}")
            args.profile = tiny
        notebooks = discover_notebooks(Path(args.notebooks_dir))
        if args.list:
            list_notebooks(notebooks)
            return 0
        chosen = select(notebooks, args.only)
        extra = dict(parse_param(p) for p in args.param)
        for name in (*STANDARD_PARAMETERS, "workers", "vgg16_weights"):
            if name in extra:
                raise RunAllError(f"--param {name}=...: set it with --{name.replace('_', '-')}")
        optional = {}
        if args.vgg16_weights:
            weights = Path(args.vgg16_weights).expanduser().resolve()
            if not weights.is_file():
                raise RunAllError(f"--vgg16-weights {args.vgg16_weights!r}: no such file (Keras's "
                                  "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5)")
            optional["vgg16_weights"] = str(weights)
        if args.workers is not None:
            if args.workers < 1:
                raise RunAllError(f"--workers {args.workers}: must be a positive integer")
            extra["workers"] = args.workers
        results = paths.results_dir(args.profile, args.results_dir).resolve()
        try:
            dirs = paths.output_dirs(results)
        except OSError as exc:
            raise RunAllError(f"--results-dir {args.results_dir!r}: cannot create {results}: "
                              f"{exc.strerror}; choose a writable folder") from None
        if not os.access(results, os.W_OK):
            raise RunAllError(f"--results-dir {args.results_dir!r}: {results} is not writable; "
                              "choose a writable folder")
        lock_results(results, held)
        env_url = os.environ.get(paths.DATABASE_URL_ENV)
        if env_url:  # the kernels run in notebooks/: a relative SQLite path must not move
            os.environ[paths.DATABASE_URL_ENV] = paths.absolute_sqlite_url(env_url, here)
        extra = resolve_paths(extra, here)
        database = check_database(results, extra.get(DATABASE_PARAMETER))  # type: ignore[arg-type]

        plans = []
        declared_anywhere: set[str] = set()
        for nb in chosen:
            declared = notebook_parameters(nb)
            declared_anywhere.update(declared)
            missing = [p for p in STANDARD_PARAMETERS if p not in declared]
            if missing:
                raise RunAllError(f"{nb.name}: parameters cell lacks {', '.join(missing)}")
            mine = {k: v for k, v in {**extra, **optional}.items() if k in declared}
            params = {"profile": args.profile, "seed": args.seed, "results_dir": str(results),
                      **mine}
            check_parameters(nb, declared, params)
            plans.append((nb, params))
        unknown = sorted(set(extra) - declared_anywhere)
        if unknown:
            raise RunAllError(f"--param {', '.join(unknown)}: no selected notebook takes it; "
                              f"see `python run_all.py --list`")
    except RunAllError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(database)
    state_path = dirs.notebooks / ".completed.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    from tqdm.auto import tqdm

    bar = tqdm(plans, desc=f"run_all [{args.profile}]", unit="notebook", disable=args.no_progress)
    for nb, params in bar:
        bar.set_postfix_str(nb.stem)
        key = fingerprint(nb, params)
        output = dirs.notebooks / nb.name
        if not args.force and state.get(nb.stem, {}).get("fingerprint") == key and output.exists():
            tqdm.write(f"skip {nb.stem}: already completed with these parameters (--force re-runs)")
            continue
        tqdm.write(f"run  {nb.stem} -> {output}")
        # Executed while running under a hidden name, so a killed run never leaves a
        # half-executed notebook where a finished one is expected.
        running = output.with_name(f".{output.stem}.running.ipynb")
        try:
            seconds = run_notebook(nb, params, running, progress=not args.no_progress,
                                   verbose=args.verbose)
        except Exception as exc:  # papermill raises PapermillExecutionError for cell errors
            if running.exists():
                os.replace(running, output)  # keep the traceback where the user looks
            print(f"error: {describe_failure(exc, nb, output)}", file=sys.stderr)
            state.pop(nb.stem, None)
            files.write_json(state_path, state)
            return 1
        os.replace(running, output)
        state[nb.stem] = {"fingerprint": key, "seconds": round(seconds, 1),
                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        files.write_json(state_path, state)
        files.update_summary(results, {"notebooks": {nb.stem: {
            "status": "completed", "seconds": round(seconds, 1), "parameters": params,
            "executed_notebook": str(output.relative_to(results)),
        }}})
    from heatmaploss import report

    written = report.render(results)
    print(f"done: outputs in {results}; report: {written['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
