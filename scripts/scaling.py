"""Scaling study: one batch of files on 1, 2, ... workers, with the process pool and a local Dask cluster.

The same as ``voxguard bench scale`` (``voxguard.cli_bench.bench_scale_cmd``); see
docs/performance.md, "Scaling", for the measured figures and the command that produced them::

    OMP_NUM_THREADS=1 python scripts/scaling.py --files 40 --workers 1,2 --repeats 3 --out scaling.md
"""

from __future__ import annotations

import os

# One BLAS thread per process, as the voxguard CLI sets it (must happen before numpy is imported).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import typer  # noqa: E402

from voxguard.cli_bench import bench_scale_cmd  # noqa: E402

if __name__ == "__main__":  # the guard matters: worker processes are spawned and re-import this file
    typer.run(bench_scale_cmd)
