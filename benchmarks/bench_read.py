"""Benchmark ``kuairec_utils.data.kuairec.read_table`` on a full-size synthetic ``big_matrix.csv``.

Generates (once; reused while the row count matches) a ``big_matrix.csv`` of ``--rows`` rows in
the real format under ``benchmarks/out/``, then reads it with ``read_table`` in a fresh Python
process and reports the file size, the wall time of the read and the peak resident memory of the
reading process::

    .venv/bin/python benchmarks/bench_read.py              # 12,530,806 rows, as the real file
    .venv/bin/python benchmarks/bench_read.py --rows 1000000

The synthetic file mimics the real one: 7,176 users in order, 10,728 videos, times between
2020-07-05 and 2020-09-05 (Beijing), ``date`` and ``timestamp`` consistent with ``time``,
``watch_ratio = play_duration / video_duration`` and about 7.7% exact duplicate rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from kuairec_utils.data.kuairec import COLUMNS as KUAIREC_COLUMNS

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = Path(__file__).resolve().parent / "out"
REAL_ROWS = 12_530_806
N_USERS, N_VIDEOS = 7_176, 10_728
DUPLICATE_SHARE = 968_000 / REAL_ROWS
COLUMNS = KUAIREC_COLUMNS["big_matrix"]
FIRST_MS = int(np.datetime64("2020-07-05T00:00:00", "ms").astype("int64"))
LAST_MS = int(np.datetime64("2020-09-06T00:00:00", "ms").astype("int64"))
BEIJING_OFFSET_MS = 8 * 3_600_000


def synthetic_big_matrix(n_rows: int, seed: int = 0) -> pa.Table:
    """A ``big_matrix`` of ``n_rows`` rows as an arrow table, in the real file's column types."""
    rng = np.random.default_rng(seed)
    user_id = np.sort(rng.integers(0, N_USERS, n_rows)).astype("int32")
    video_id = rng.integers(0, N_VIDEOS, n_rows, dtype="int32")
    video_duration = rng.integers(3_000, 300_000, n_rows, dtype="int32")
    watch = rng.lognormal(mean=-0.3, sigma=0.8, size=n_rows)
    play_duration = np.minimum(watch * video_duration, 2**31 - 1).astype("int32")
    local_ms = rng.integers(FIRST_MS, LAST_MS, n_rows)
    local_ms.sort()  # time order within the file; users stay sorted on their own column
    duplicate = np.flatnonzero(rng.random(n_rows) < DUPLICATE_SHARE)
    duplicate = duplicate[duplicate > 0]
    for column in (user_id, video_id, video_duration, play_duration, local_ms):
        column[duplicate] = column[duplicate - 1]  # exact copies of the previous row
    local_time = local_ms.astype("datetime64[ms]")
    day = local_time.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    date = (
        (month.astype("datetime64[Y]").astype("int32") + 1970) * 10_000
        + (month.astype("int32") % 12 + 1) * 100
        + (day - month).astype("int32")
        + 1
    )
    timestamp = np.round((local_ms - BEIJING_OFFSET_MS) / 1000, 3)
    watch_ratio = play_duration / video_duration
    arrays = [user_id, video_id, play_duration, video_duration, local_time, date, timestamp]
    return pa.table([pa.array(a) for a in [*arrays, watch_ratio]], names=COLUMNS)


def write_big_matrix(path: Path, n_rows: int) -> None:
    """Write the synthetic matrix as csv: plain header, no quoting, ``\\n`` line ends."""
    table = synthetic_big_matrix(n_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        sink.write((",".join(COLUMNS) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, sink, options)
    tmp.replace(path)


def ensure_file(n_rows: int) -> tuple[Path, float | None]:
    """The benchmark folder for ``n_rows`` rows; generates the csv unless already there."""
    data_dir = OUT_DIR / f"big_matrix_{n_rows}"
    path = data_dir / "big_matrix.csv"
    if path.is_file():
        return data_dir, None
    start = time.perf_counter()
    write_big_matrix(path, n_rows)
    return data_dir, time.perf_counter() - start


# The reader runs in a fresh interpreter. Its peak RSS is VmHWM from /proc (reset by exec, unlike
# ru_maxrss, which a child inherits from the process that forked it), or ru_maxrss elsewhere.
CHILD = """
import json, resource, sys, time

def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except OSError:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024

start = time.perf_counter()
from kuairec_utils.data.kuairec import count_exact_duplicates, read_table
imported = time.perf_counter()
rss_after_import = peak_rss_mib()
df = read_table(sys.argv[1], "big_matrix")
read = time.perf_counter()
peak_rss = peak_rss_mib()
print(json.dumps({
    "import_s": imported - start,
    "read_s": read - imported,
    "rows": len(df),
    "frame_mib": df.memory_usage(deep=True).sum() / 2**20,
    "rss_after_import_mib": rss_after_import,
    "peak_rss_mib": peak_rss,
    "duplicates": count_exact_duplicates(df) if sys.argv[2] == "1" else None,
    "dtypes": {c: str(t) for c, t in df.dtypes.items()},
}))
"""


def measure(data_dir: Path, *, duplicates: bool) -> dict[str, object]:
    """Run ``read_table`` in a fresh interpreter and return its figures."""
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), "1" if duplicates else "0"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(child.stdout)
    result["process_wall_s"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> None:
    """Generate the file if needed, measure the read and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=REAL_ROWS, help="rows of big_matrix.csv")
    parser.add_argument(
        "--duplicates", action="store_true", help="also time count_exact_duplicates (slower)"
    )
    args = parser.parse_args(argv)

    data_dir, generate_s = ensure_file(args.rows)
    path = data_dir / "big_matrix.csv"
    result = measure(data_dir, duplicates=args.duplicates)
    if result["rows"] != args.rows:
        raise SystemExit(f"read {result['rows']} rows, expected {args.rows}")

    rows = [
        ("rows", f"{result['rows']:,}"),
        ("file size", f"{path.stat().st_size / 2**20:,.0f} MiB"),
        ("generate", "reused" if generate_s is None else f"{generate_s:.1f} s"),
        ("import kuairec_utils.data.kuairec", f"{result['import_s']:.1f} s"),
        ("read_table (parse + checks)", f"{result['read_s']:.1f} s"),
        ("reader process, wall", f"{result['process_wall_s']:.1f} s"),
        ("peak RSS of reader (read only)", f"{result['peak_rss_mib']:,.0f} MiB"),
        ("RSS after imports", f"{result['rss_after_import_mib']:,.0f} MiB"),
        ("DataFrame in memory", f"{result['frame_mib']:,.0f} MiB"),
    ]
    if result["duplicates"] is not None:
        rows.append(("exact duplicate rows", f"{result['duplicates']:,}"))
    width = max(len(label) for label, _ in rows)
    print(f"read_table(..., 'big_matrix') on {path.relative_to(REPO)}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
