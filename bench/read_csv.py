"""Reading a large numeric CSV: time and peak memory of fastnet's reader (pandas'
read_csv behind fastnet.tabular.table.read_table) against the csv-module loop it
replaced.

    python bench/read_csv.py [--rows 1000000] [--cols 50] [--repeats 3]

The file (1,000,000 rows x 50 columns of 6-digit numbers, 400 MiB) is written
once to the system's temporary folder and reused. Each measurement runs in a fresh
process, the readers interleaved; peak memory is the process's peak resident size
(ru_maxrss) less its size before reading. fastnet's result is the DataFrame the
command works on; the old reader's, a float64 array. The old reader is timed on the
first 100,000 rows and scaled to the whole file (it is linear in the rows).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

OLD_ROWS = 100_000


def write_file(path, rows, cols):
    """A header and ``rows`` rows of ``cols`` numbers: one 10,000-row block of
    random values, repeated (parsing costs the same as for distinct rows)."""
    rng = np.random.default_rng(0)
    block = rng.normal(0, 1000, (10_000, cols))
    lines = "\n".join(",".join(f"{v:.6g}" for v in r) for r in block) + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(",".join(f"c{j}" for j in range(cols - 1)) + ",target\n")
        for _ in range(rows // 10_000):
            f.write(lines)
    os.replace(path + ".tmp", path)


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(which, path):
    """Run in a child process: (seconds, peak extra MiB, rows, cols) as JSON."""
    import resource

    if which == "fastnet":
        import pandas  # noqa: F401  (imported before the baseline)

        from fastnet.tabular.table import read_table
    before = _rss_kib()
    began = time.perf_counter()
    if which == "fastnet":
        X = read_table(path).frame  # the table, as the command gets it
    else:
        X = _old_reader(path, OLD_ROWS)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps([seconds, peak / 1024, *X.shape]))


def _old_reader(path, limit):
    """The reader of fastnet 0.1 before pandas (fastnet/cli.py at 3fa37ab), cell by
    cell: float() of every cell into a preallocated array, the first ``limit`` rows."""
    import csv
    import math

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = [r for _, r in zip(range(limit), reader, strict=False)]
    body = [r for r in rows if r and any(c.strip() for c in r)]
    t = len(header) - 1
    X = np.empty((len(body), len(header) - 1))
    y = []
    for r, row in enumerate(body):
        j = 0
        for i, cell in enumerate(row):
            if i == t:
                y.append(cell.strip())
                continue
            X[r, j] = float(cell)
            if not math.isfinite(X[r, j]):
                raise ValueError(cell)
            j += 1
    return X


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--cols", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    path = os.path.join(
        tempfile.gettempdir(), f"fastnet-read-{args.rows}x{args.cols}.csv"
    )
    if not os.path.exists(path):
        print(f"writing {path} ...", flush=True)
        write_file(path, args.rows, args.cols)
    size = os.path.getsize(path) / 2**20
    data = args.rows * args.cols * 8 / 2**20
    print(f"{path}: {size:.0f} MiB on disk, {data:.0f} MiB as float64")
    results = {"fastnet": [], "old": []}
    for _ in range(args.repeats):
        for which in ("fastnet", "old"):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", which, path],
                capture_output=True,
                text=True,
                check=True,
            )
            results[which].append(json.loads(out.stdout))
    print("| reader | seconds (median, min-max) | peak extra memory | x data size |")
    print("| --- | --- | --- | --- |")
    for which, runs in results.items():
        secs = np.array([r[0] for r in runs])
        mem = np.array([r[1] for r in runs])
        scale = args.rows / runs[0][2]
        label = "fastnet (pandas read_csv)"
        if which == "old":
            label = f"csv-module loop (0.1), {runs[0][2]:,} rows x {scale:g}"
            secs, mem = secs * scale, mem * scale
        print(
            f"| {label} | {np.median(secs):.2f} ({secs.min():.2f}-{secs.max():.2f}) "
            f"| {np.median(mem):.0f} MiB | {np.median(mem) / data:.2f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3])
    else:
        main()
