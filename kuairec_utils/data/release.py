"""Where an acquired KuaiRec 2.0 release lies in ``data/raw/`` and how it gets there safely: the
seven file names, finding an unpacked copy (``find_release_dir``) and linking it in
(``link_unpacked_copy``), the hidden staging folder, validation with ``validate_release``, the
record ``KuaiRec 2.0/.acquired.json`` (``read_manifest``) and the check that an earlier release
can be reused. ``kuairec_utils.data.download`` uses them for the downloaded archive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from kuairec_utils.config import KUAIREC_DATA_SUBDIR, RAW_DIR

log = logging.getLogger(__name__)

#: The seven csv files of a KuaiRec 2.0 release, as named in ``KuaiRec 2.0/data/``.
RELEASE_FILES = (
    "big_matrix.csv",
    "small_matrix.csv",
    "social_network.csv",
    "item_categories.csv",
    "item_daily_features.csv",
    "user_features.csv",
    "kuairec_caption_category.csv",
)
RELEASE_DIRNAME = KUAIREC_DATA_SUBDIR.parts[0]  # "KuaiRec 2.0"
DATA_DIRNAME = KUAIREC_DATA_SUBDIR.parts[1]  # "data"
MANIFEST_NAME = ".acquired.json"  # in raw_dir/KuaiRec 2.0/, beside data/
PARTIAL_PREFIX = ".kuairec-partial-"  # hidden staging folders inside raw_dir


class AcquireError(RuntimeError):
    """The release could not be obtained or is not a valid KuaiRec 2.0 release."""


class _ArchiveContentError(AcquireError):
    """The archive matched its checksum but its content is unusable (it is then deleted)."""


def find_release_dir(kuairec_dir: str | Path) -> Path:
    """The folder holding the seven csv files of an unpacked release at or under ``kuairec_dir``.

    Looks, in this order, at ``kuairec_dir`` itself, ``kuairec_dir/data``,
    ``kuairec_dir/KuaiRec 2.0/data`` and ``kuairec_dir/KuaiRec/KuaiRec 2.0/data``, and returns
    the first (resolved) that holds all seven files. Raises :class:`AcquireError` naming every
    folder it looked at and what the closest one lacks.
    """
    root = Path(kuairec_dir).expanduser()
    if not root.is_dir():
        raise AcquireError(f"kuairec_dir {str(root)!r} is not a folder (or does not exist)")
    candidates = [
        root,
        root / DATA_DIRNAME,
        root / KUAIREC_DATA_SUBDIR,
        root / "KuaiRec" / KUAIREC_DATA_SUBDIR,
    ]
    missing_by_candidate = {}
    for candidate in candidates:
        missing = [f for f in RELEASE_FILES if not (candidate / f).is_file()]
        if not missing:
            return candidate.resolve()
        missing_by_candidate[candidate] = missing
    closest = min(candidates, key=lambda c: len(missing_by_candidate[c]))
    looked = ", ".join(repr(str(c)) for c in candidates)
    detail = (
        f"; closest: {str(closest)!r} lacks {', '.join(missing_by_candidate[closest])}"
        if len(missing_by_candidate[closest]) < len(RELEASE_FILES)
        else ""
    )
    raise AcquireError(
        f"kuairec_dir {str(root)!r}: no folder holding the seven KuaiRec 2.0 csv files "
        f"({', '.join(RELEASE_FILES)}); looked in {looked}{detail}"
    )


def read_manifest(raw_dir: str | Path = RAW_DIR) -> dict[str, Any]:
    """The record written by :func:`fetch_kuairec` for the release in ``raw_dir``.

    Keys: ``source`` (``"archive"`` or ``"directory"``), ``url``/``md5``/``size_bytes`` or
    ``kuairec_dir``, ``files`` (name -> bytes), ``rows`` (as returned by ``validate_release``)
    and ``acquired_at``. Raises :class:`AcquireError` when there is none.
    """
    path = Path(raw_dir) / RELEASE_DIRNAME / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AcquireError(f"no acquired KuaiRec release recorded in {str(path)!r}: {e}") from e
    if not isinstance(manifest, dict):
        raise AcquireError(f"{str(path)!r} is not a KuaiRec acquire record")
    return manifest


def _size_or_zero(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# --- linking a user's copy -----------------------------------------------------------------------


def _link_or_copy_release(source: Path, dest: Path) -> str:
    """Hard-link the seven files of ``source`` into ``dest`` (copy where links fail)."""
    dest.mkdir(parents=True)
    copied = 0
    for name in RELEASE_FILES:
        try:
            os.link(source / name, dest / name)
        except OSError:  # other file system, links not permitted, ...
            shutil.copy2(source / name, dest / name)
            copied += 1
    return "hard-linked" if copied == 0 else f"copied {copied} and hard-linked"


def _stat_signature(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def link_unpacked_copy(raw_dir: Path, kuairec_dir: str | Path) -> Path:
    """Link (or copy) the seven files of an unpacked release at or under ``kuairec_dir`` into
    ``raw_dir/KuaiRec 2.0/data`` through a staging folder, validated and recorded; a copy
    recorded there before and unchanged since is reused as it is. Returns that folder.
    """
    release_dir = raw_dir / RELEASE_DIRNAME
    source = find_release_dir(kuairec_dir)
    wanted = {
        "source": "directory",
        "kuairec_dir": str(source),
        "source_files": {f: _stat_signature(source / f) for f in RELEASE_FILES},
    }
    if _reusable(release_dir, wanted):
        log.info("reusing %s (already linked from %s)", release_dir, source)
        return release_dir / DATA_DIRNAME
    if source == (release_dir / DATA_DIRNAME).resolve():
        # The copy already is where the pipeline reads it (unpacked into raw_dir by hand):
        # validate it there and record it; moving it would drop whatever lies beside data/.
        label = f"kuairec_dir {str(source)!r}"
        _write_manifest(release_dir, _validated_manifest(source, wanted, label, source))
        return release_dir / DATA_DIRNAME
    label = f"kuairec_dir {str(source)!r}"
    with _staging(raw_dir, label) as stage:
        how = _link_or_copy_release(source, stage / DATA_DIRNAME)
        log.info("%s the seven files of %s", how, source)
        _validate_and_install(stage, release_dir, wanted, label=label, shown_as=source)
    return release_dir / DATA_DIRNAME


# --- staging, validation, installation -----------------------------------------------------------


@contextlib.contextmanager
def _staging(raw_dir: Path, label: str) -> Iterator[Path]:
    """A fresh hidden folder inside ``raw_dir`` (same file system), removed unless moved away.

    File-system errors inside (no space left, no permission) become :class:`AcquireError`.
    """
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
        for stale in raw_dir.glob(PARTIAL_PREFIX + "*"):  # left by a killed earlier run
            shutil.rmtree(stale, ignore_errors=True)
        stage = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=raw_dir))
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become the release folder's mode
    except OSError as e:
        raise AcquireError(f"{label}: cannot write to {str(raw_dir)!r}: {e}") from e
    try:
        yield stage
    except OSError as e:
        raise AcquireError(f"{label}: file-system error while preparing the release: {e}") from e
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _validate_and_install(
    stage: Path,
    release_dir: Path,
    record: dict[str, Any],
    *,
    label: str,
    shown_as: PurePosixPath | Path,
) -> None:
    """Validate ``stage/data``, write the manifest, then rename ``stage`` to ``release_dir``."""
    _write_manifest(stage, _validated_manifest(stage / DATA_DIRNAME, record, label, shown_as))
    old = None
    if release_dir.exists() or release_dir.is_symlink():  # e.g. simulated data: replace it
        log.info("replacing the existing %s", release_dir)
        old = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=release_dir.parent)) / "old"
        os.replace(release_dir, old)
    os.replace(stage, release_dir)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def _validated_manifest(
    data_dir: Path, record: dict[str, Any], label: str, shown_as: PurePosixPath | Path
) -> dict[str, Any]:
    """``record`` plus the sizes and row counts of the files in ``data_dir``, once validated.

    ``shown_as`` replaces ``data_dir`` in error messages (the staging folder is gone by the time
    anyone reads them): the folder inside the archive, or the user's copy.
    """
    from kuairec_utils.data.kuairec import validate_release

    try:
        rows = validate_release(data_dir)
    except ValueError as e:  # KuaiRecFormatError (and any parser error it lets through)
        problem = str(e).replace(str(data_dir), str(shown_as))
        raise _ArchiveContentError(f"{label}: not a valid KuaiRec 2.0 release: {problem}") from e
    return {
        **record,
        "files": {f: (data_dir / f).stat().st_size for f in RELEASE_FILES},
        "rows": {str(k): int(v) for k, v in rows.items()},
        "acquired_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``folder/.acquired.json`` all at once (a temporary file renamed into place)."""
    tmp = folder / f"{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)


def _reusable(release_dir: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``release_dir`` holds a release acquired as ``wanted`` and still intact."""
    try:
        manifest = read_manifest(release_dir.parent)
    except AcquireError:
        return False
    if manifest.get("source") != wanted["source"]:
        return False
    if wanted["source"] == "archive":
        same = manifest.get("md5") == wanted["md5"]
    else:
        same = (
            manifest.get("kuairec_dir") == wanted["kuairec_dir"]
            and manifest.get("source_files") == wanted["source_files"]
        )
    files = manifest.get("files")
    if not same or not isinstance(files, dict) or set(files) != set(RELEASE_FILES):
        return False
    data_dir = release_dir / DATA_DIRNAME
    return all(
        _size_or_zero(data_dir / f) == n and (data_dir / f).is_file() for f, n in files.items()
    )
