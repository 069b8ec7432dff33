#!/usr/bin/env python
"""Synthetic MRI generator speed: images per second (images + segmentation).

    python benchmarks/generator.py                       # both experiments, 2,500 per class
    python benchmarks/generator.py --repeats 7 --json results/bench_generator.json

Three ways are timed, interleaved in each repeat so that a busy machine slows all alike:

* ``generate``  — ``synthetic.generate(exp, n_per_class, seed)``: whole set in memory
  (includes first-touching the output arrays).
* ``stream``    — ``synthetic.iter_batches(..., chunk_size)``: chunks, as a test set is read.
* ``per-image`` — a straightforward per-image drawing (dense distance masks, noise for every
  pixel, the way the thesis's generator works), on fewer images, as the baseline.

Wall-clock and CPU (process) time are both reported; on a shared machine the CPU rate is the
steadier number. The load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


from heatmaploss import synthetic
from heatmaploss.project import files
from heatmaploss.synthetic import geometry as synthetic_geometry
from heatmaploss.synthetic import Tissue


def per_image_baseline(experiment: int, n_images: int, seed: int) -> None:
    """Draw ``n_images`` one at a time with dense masks (the obvious implementation)."""
    data = synthetic.generate(experiment, max(1, n_images // 4), seed)  # geometry only
    lay = synthetic_geometry.layout(data.geometry, experiment)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:105, 0:135]
    for i in range(len(data)):
        seg = np.zeros((105, 135), np.uint8)
        image = np.zeros((105, 135), np.uint8)
        noise = {t: rng.normal(m, 2.0, size=(105, 135))
                 for t, m in ((Tissue.FAT, 229.5), (Tissue.LV_CAVITY, 204.0),
                              (Tissue.LV_MYOCARDIUM, 51.0))}
        for centre, radius, tissue, source in (
                (lay["lv_centre_col"][i], lay["lv_outer"][i], Tissue.LV_MYOCARDIUM, Tissue.LV_MYOCARDIUM),
                (lay["rv_centre_col"][i], lay["rv_outer"][i], Tissue.RV_MYOCARDIUM, Tissue.LV_MYOCARDIUM),
                (lay["lv_centre_col"][i], lay["lv_inner"][i], Tissue.LV_CAVITY, Tissue.LV_CAVITY),
                (lay["rv_centre_col"][i], lay["rv_inner"][i], Tissue.RV_CAVITY, Tissue.LV_CAVITY)):
            mask = (rows - lay["centre_row"][i]) ** 2 + (cols - centre) ** 2 < radius ** 2
            seg[mask] = tissue
            image[mask] = noise[source][mask]
        top = max(int(lay["fat_top"][i]), 0)
        fat = (slice(top, top + 4), slice(max(int(lay["fat_start"][i]), 0), max(int(lay["fat_stop"][i]), 0)))
        seg[fat] = Tissue.FAT
        image[fat] = noise[Tissue.FAT][fat]


def _time(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-per-class", type=int, default=2500, help="images per class (default 2500)")
    parser.add_argument("--baseline-images", type=int, default=400,
                        help="images drawn by the per-image baseline per repeat (default 400)")
    parser.add_argument("--chunk-size", type=int, default=1000, help="stream chunk size (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--experiments", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    n = 4 * args.n_per_class
    ways = {
        "generate": (n, lambda e, r: synthetic.generate(e, args.n_per_class, seed=r)),
        "stream": (n, lambda e, r: sum(len(c) for c in synthetic.iter_batches(
            e, args.n_per_class, r, args.chunk_size))),
        "per-image": (args.baseline_images, lambda e, r: per_image_baseline(e, args.baseline_images, r)),
    }
    synthetic.generate(1, 64, seed=0)  # warm up imports and tables
    rows = []
    for experiment in args.experiments:
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
        for repeat in range(args.repeats):
            for name, (_, fn) in ways.items():
                times[name].append(_time(lambda: fn(experiment, repeat)))
        for name, (count, _) in ways.items():
            wall = np.array([t[0] for t in times[name]])
            cpu = np.array([t[1] for t in times[name]])
            rows.append({"experiment": experiment, "way": name, "images": count,
                         "repeats": args.repeats,
                         "wall_images_per_s_median": count / float(np.median(wall)),
                         "wall_images_per_s_best": count / float(wall.min()),
                         "cpu_images_per_s_median": count / float(np.median(cpu))})
    load = os.getloadavg()
    print(f"synthetic generator, {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{'exp':>3}  {'way':<10} {'images':>7}  {'wall/s median':>13}  {'wall/s best':>11}  {'cpu/s median':>12}")
    for r in rows:
        print(f"{r['experiment']:>3}  {r['way']:<10} {r['images']:>7}  {r['wall_images_per_s_median']:>13,.0f}  "
              f"{r['wall_images_per_s_best']:>11,.0f}  {r['cpu_images_per_s_median']:>12,.0f}")
    for experiment in args.experiments:
        by = {r["way"]: r for r in rows if r["experiment"] == experiment}
        ratio = by["generate"]["wall_images_per_s_median"] / by["per-image"]["wall_images_per_s_median"]
        print(f"experiment {experiment}: generate is {ratio:.1f}x the per-image baseline (wall, median)")
    result = {"cpu_count": os.cpu_count(), "load_average": load, "rows": rows}
    if args.json:
        files.write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
