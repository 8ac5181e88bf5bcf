"""The pipeline's ``acquire`` stage: write ``data/raw/``, from the simulated platform or from the
real KuaiRec 2.0 release.

``data.source`` in ``params.yaml`` chooses. ``simulated`` (the default) runs the simulated
platform (``kuairec_utils.simulate``) with the parameters' seed and writes its release in the
KuaiRec 2.0 layout together with its ground truth. ``kuairec`` puts the seven csv files of the
official release (Gao et al., CIKM 2022, CC BY-SA 4.0) in ``data/raw/KuaiRec 2.0/data/`` with
:func:`fetch_kuairec` (``kuairec_utils.data.download``): linked from an unpacked copy
(``--kuairec-dir``, or ``data.kuairec_dir`` taken relative to the project root) or downloaded from
``data.url``, checked against ``data.md5`` and ``data.size_bytes``, unpacked and validated.
``--url`` or ``--kuairec-dir`` ask for the real release whatever ``data.source`` says. The names
of the download (``fetch_kuairec``, ``find_release_dir``, ``read_manifest``, ``AcquireError``,
``RELEASE_FILES``, ...) are importable from here too.

Command line (defaults from the ``data:`` section of ``params.yaml``)::

    python -m kuairec_utils.acquire --out data/raw [--source simulated|kuairec] [--no-progress]
                                    [--kuairec-dir DIR]
                                    [--url URL --md5 MD5 [--size BYTES]] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kuairec_utils.config import KUAIREC_DATA_SUBDIR, PROJ_ROOT, RAW_DIR, load_params
from kuairec_utils.data.download import (
    CACHE_ENV,
    DEFAULT_TIMEOUT_S,
    default_cache_dir,
    fetch_kuairec,
)
from kuairec_utils.data.release import (
    DATA_DIRNAME,
    MANIFEST_NAME,
    PARTIAL_PREFIX,
    RELEASE_DIRNAME,
    RELEASE_FILES,
    AcquireError,
    find_release_dir,
    link_unpacked_copy,
    read_manifest,
)

__all__ = [
    "CACHE_ENV",
    "DATA_DIRNAME",
    "DEFAULT_TIMEOUT_S",
    "MANIFEST_NAME",
    "PARTIAL_PREFIX",
    "RELEASE_DIRNAME",
    "RELEASE_FILES",
    "SOURCES",
    "AcquireError",
    "default_cache_dir",
    "fetch_kuairec",
    "find_release_dir",
    "link_unpacked_copy",
    "main",
    "read_manifest",
]

SOURCES = ("simulated", "kuairec")  # data.source: the simulated platform, or the real release


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the ``acquire`` stage: simulate the platform or get the real release,
    as ``data.source`` says (defaults from ``params.yaml``)."""
    all_params = load_params()
    params = all_params.get("data") or {}
    parser = argparse.ArgumentParser(
        prog="python -m kuairec_utils.acquire",
        description="Write data/raw: the simulated platform (data.source: simulated) or the real "
        "KuaiRec 2.0 release, downloaded or linked from an unpacked copy (data.source: kuairec).",
    )
    parser.add_argument("--out", type=Path, default=RAW_DIR, help="raw data folder (data/raw)")
    parser.add_argument(
        "--source", choices=SOURCES, default=None, help="default: data.source in params.yaml"
    )
    parser.add_argument(
        "--kuairec-dir",
        default=None,
        help="an unpacked copy to use instead of downloading (default: data.kuairec_dir, "
        "relative to the project root)",
    )
    parser.add_argument("--url", default=None, help="archive URL (default: data.url)")
    parser.add_argument("--md5", default=None, help="archive md5 (default: data.md5)")
    parser.add_argument(
        "--size", type=int, default=None, help="archive size in bytes (default: data.size_bytes)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"archive cache (default: {CACHE_ENV} or ~/.cache/kuairec)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    # --url or --kuairec-dir ask for the real release; otherwise data.source decides
    explicit = "kuairec" if args.url or args.kuairec_dir else None
    source = args.source or explicit or params.get("source", "simulated")
    if source not in SOURCES:
        parser.error(f"params data.source = {source!r}: must be one of {', '.join(SOURCES)}")
    if source == "simulated":
        return _simulate(all_params, args.out, progress=not args.no_progress)
    if args.url is not None and args.md5 is None:
        parser.error("--url needs --md5 (the md5 in params.yaml is for data.url)")
    url = args.url or params.get("url")
    md5 = args.md5 or params.get("md5")
    size = args.size if args.url is not None or args.size is not None else params.get("size_bytes")
    kuairec_dir = args.kuairec_dir
    if kuairec_dir is None and str(params.get("kuairec_dir") or "").strip():
        kuairec_dir = PROJ_ROOT / Path(params["kuairec_dir"]).expanduser()  # relative to project
    if not kuairec_dir and not (url and md5):
        parser.error("no data.url and data.md5 in params.yaml; pass --url and --md5")

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        data_dir = fetch_kuairec(
            args.out,
            url=str(url),
            md5=str(md5 or ""),
            size_bytes=int(size) if size else None,
            kuairec_dir=kuairec_dir,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
        )
    except AcquireError as e:
        print(f"acquire: error: {e}", file=sys.stderr)
        return 1
    manifest = read_manifest(args.out)
    print(f"KuaiRec 2.0 release in {data_dir}")
    for table, n in manifest.get("rows", {}).items():
        print(f"  {table:<32} {n:>12,} rows")
    return 0


def _simulate(params: dict[str, Any], out: Path, *, progress: bool) -> int:
    """The default data set: the simulated platform, with its ground truth."""
    from kuairec_utils.simulate import SimConfig, SimulationError, simulate

    try:
        cfg = SimConfig.from_params(params)
        summary = simulate(out, cfg, params.get("seed", 0), progress=progress)
    except SimulationError as e:
        print(f"acquire: error: {e}", file=sys.stderr)
        return 2
    print(f"simulated KuaiRec 2.0 release in {out / KUAIREC_DATA_SUBDIR}")
    for key, value in summary.items():
        print(f"  {key:<32} {value:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
