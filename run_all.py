#!/usr/bin/env python
"""Regenerate every figure and statistic: run the notebooks in order with papermill.

    python run_all.py                      # default profile (quick)
    python run_all.py --profile smoke      # seconds to minutes, what CI runs
    python run_all.py --profile thesis     # full scale, one GPU
    python run_all.py --profile thesis --tiny   # the thesis profile's code paths at toy size
    python run_all.py --list               # notebooks, their parameters, profiles
    python run_all.py --only 02 --force    # one chapter, even if already done
    python run_all.py --param acdc_root=/data/ACDC/database

Outputs go to ``<results-dir>/<profile>/``: executed notebooks in ``notebooks/``, figures in
``figures/`` (PNG + PDF), statistics in ``stats/``, the index of all statistics in
``summary.json`` and the reproduction report in ``report.md`` / ``report.html``.

A notebook that finished for the same parameters and the same notebook source is skipped on
the next run unless ``--force`` is given; an interrupted notebook is run again and resumes
from what its library calls already saved (searches, trained models, datasets).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from heatmaploss.project import files, paths
from heatmaploss.project.profiles import PROFILE_NAMES, PROFILES, TINY_SUFFIX

DEFAULT_PROFILE = "quick"
#: Parameters every notebook takes; run_all.py sets them itself.
STANDARD_PARAMETERS = ("profile", "seed", "results_dir")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


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


def check_database(results: Path) -> None:
    """Open the results database once before any notebook runs, so that a bad
    ``$HEATMAPLOSS_DATABASE_URL`` or a registry file that is not a database stops the run at
    once with the registry's one-line message instead of inside a notebook."""
    from heatmaploss.registry import Registry, RegistryError

    try:
        Registry(results_dir=results).close()
    except (RegistryError, ValueError) as exc:
        raise RunAllError(str(exc)) from None


def describe_failure(exc: Exception, notebook: Path, output: Path) -> str:
    """One line naming the notebook, the failing cell and the error."""
    cell = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell [{cell}]" if cell is not None else "a cell"
    return (f"{notebook.name} failed in {where}: {ename}: {evalue} "
            f"(executed notebook with the traceback: {output})")


def run_notebook(notebook: Path, parameters: dict, output: Path, progress: bool) -> float:
    """Execute one notebook with papermill; return its wall time in seconds."""
    import papermill

    env_defaults = {"TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    for key, value in env_defaults.items():
        os.environ.setdefault(key, value)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name="python3",
        cwd=str(notebook.parent), progress_bar=progress, log_output=False,
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
    args = build_parser().parse_args(argv)
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
        check_database(results)

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
            seconds = run_notebook(nb, params, running, progress=not args.no_progress)
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
