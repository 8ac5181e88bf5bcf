"""Get the real KuaiRec 2.0 release into ``data/raw/`` (the pipeline's ``acquire`` stage).

With ``data.source: kuairec`` in ``params.yaml`` the pipeline needs the seven csv files of the
official release (Gao et al., CIKM 2022, CC BY-SA 4.0) in ``data/raw/KuaiRec 2.0/data/``.
:func:`fetch_kuairec` puts them there in one of two ways:

- **From a copy you already have.** Set ``data.kuairec_dir`` in ``params.yaml`` (or pass
  ``--kuairec-dir DIR``) to an unpacked release: the folder holding the csv files, the
  ``KuaiRec 2.0`` folder, or a folder containing ``KuaiRec 2.0/data/`` or
  ``KuaiRec/KuaiRec 2.0/data/``. Nothing is downloaded; the seven files are hard-linked into
  ``data/raw`` (copied when that is not possible, e.g. across file systems), so do not edit
  them in place afterwards. A relative ``data.kuairec_dir`` is taken relative to the project
  root. Keep the copy outside ``data/raw``: ``dvc repro`` deletes that folder before the stage
  runs. (A copy unpacked into ``data/raw`` by hand, for use without DVC, is validated and
  recorded where it is.)
- **By downloading the official archive** (``data.url``, about 432 MB) with pooch, checking its
  md5 and size, unpacking only ``KuaiRec 2.0/data/*.csv`` and validating every table with
  :func:`kuairec_utils.data.kuairec.validate_release`.

The archive is cached outside the repository, in ``pooch.os_cache("kuairec")`` (e.g.
``~/.cache/kuairec``; set ``KUAIREC_CACHE_DIR`` or pass ``cache_dir`` / ``--cache-dir`` to move
it), because ``dvc repro`` deletes a stage's outputs (``data/raw``) before running it: a cache
inside them would never be reused, and DVC would store 432 MB more. Delete the cached archive
freely once the pipeline has run; it is only downloaded again when needed.

Nothing half-done is ever left where a later run could take it for valid: the files are unpacked
or linked into a hidden temporary folder inside ``raw_dir``, validated, and only then renamed
to ``raw_dir/KuaiRec 2.0`` in one step (an older ``KuaiRec 2.0`` folder, e.g. simulated data, is
replaced). Pooch downloads into a temporary file and keeps it only when the md5 matches; an
archive whose content turns out to be unusable is deleted from the cache.

A successful run writes ``raw_dir/KuaiRec 2.0/.acquired.json`` (where the files came from, their
sizes and row counts). A later run with the same md5 (or the same, unchanged ``kuairec_dir``)
whose files still have the recorded sizes reuses them without downloading or re-validating.

Command line (defaults from the ``data:`` section of ``params.yaml``)::

    python -m kuairec_utils.acquire --out data/raw [--kuairec-dir DIR]
                                    [--url URL --md5 MD5 [--size BYTES]] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from kuairec_utils.config import KUAIREC_DATA_SUBDIR, PROJ_ROOT, RAW_DIR, load_params

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
CACHE_ENV = "KUAIREC_CACHE_DIR"
DEFAULT_TIMEOUT_S = 60.0  # per connect / per read, not for the whole transfer
_CHUNK = 1 << 20


class AcquireError(RuntimeError):
    """The release could not be obtained or is not a valid KuaiRec 2.0 release."""


class _ArchiveContentError(AcquireError):
    """The archive matched its checksum but its content is unusable (it is then deleted)."""


def default_cache_dir() -> Path:
    """Where archives are cached: ``$KUAIREC_CACHE_DIR``, else ``pooch.os_cache("kuairec")``."""
    import pooch

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(pooch.os_cache("kuairec")).expanduser()


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


def fetch_kuairec(
    raw_dir: Path,
    *,
    url: str,
    md5: str,
    size_bytes: int | None,
    kuairec_dir: str | Path | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Put the seven csv files of the real KuaiRec 2.0 release into ``raw_dir/KuaiRec 2.0/data``.

    Args:
        raw_dir: the project's raw data folder (``data/raw``); created if missing.
        url: where to download the official zip archive from (any URL pooch handles).
        md5: the archive's md5 (hex); a download that does not match is discarded.
        size_bytes: the archive's size, checked too when not ``None``.
        kuairec_dir: an already unpacked copy to use instead of downloading (see
            :func:`find_release_dir` for the layouts accepted); ``None`` or ``""`` downloads.
        cache_dir: where to keep the downloaded archive (default :func:`default_cache_dir`).
        progress: show progress bars for the download and for unpacking large files.
        timeout: seconds to wait to connect and between received bytes (not a total).

    Returns:
        ``raw_dir / "KuaiRec 2.0" / "data"``, holding the seven validated csv files. Row counts
        are in :func:`read_manifest`'s ``rows``.

    Raises:
        AcquireError: the download failed (HTTP error, interrupted transfer, md5 or size
            mismatch), the archive is unusable (not a zip, no ``KuaiRec 2.0/data/`` folder,
            unsafe member paths, missing files) or a file fails validation. Nothing is then left
            in ``raw_dir`` or the cache that a later run could take for valid.
    """
    raw_dir = Path(raw_dir)
    release_dir = raw_dir / RELEASE_DIRNAME
    md5 = md5.strip().lower()

    if kuairec_dir is not None and str(kuairec_dir).strip():
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

    if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
        raise AcquireError(f"{url}: the archive's md5 must be 32 hex digits, got {md5!r}")
    wanted = {"source": "archive", "url": url, "md5": md5, "size_bytes": size_bytes}
    if _reusable(release_dir, wanted):
        log.info("reusing %s (already unpacked from an archive with md5 %s)", release_dir, md5)
        return release_dir / DATA_DIRNAME
    archive = _download(
        url,
        md5=md5,
        size_bytes=size_bytes,
        cache_dir=default_cache_dir() if cache_dir is None else Path(cache_dir),
        progress=progress,
        timeout=timeout,
    )
    try:
        with _staging(raw_dir, url) as stage:
            prefix = _extract(archive, stage / DATA_DIRNAME, label=url, progress=progress)
            _validate_and_install(stage, release_dir, wanted, label=url, shown_as=prefix)
    except _ArchiveContentError:
        # It matched the md5, yet is unusable: the expected md5 must be wrong. Do not keep it.
        archive.unlink(missing_ok=True)
        raise
    return release_dir / DATA_DIRNAME


# --- download ------------------------------------------------------------------------------------


def _download(
    url: str, *, md5: str, size_bytes: int | None, cache_dir: Path, progress: bool, timeout: float
) -> Path:
    """The archive in ``cache_dir``, downloaded unless a copy with the right md5 is there."""
    import pooch

    fname = PurePosixPath(urlparse(url).path).name or "KuaiRec.zip"
    try:
        downloader = _CheckedDownloader(
            url, md5=md5, size_bytes=size_bytes, progress=progress, timeout=timeout
        )
        path = Path(
            pooch.retrieve(
                url,
                known_hash=f"md5:{md5}",
                fname=fname,
                path=cache_dir,
                downloader=downloader,  # shows pooch's progress bar when ``progress``
            )
        )
    except AcquireError:
        raise
    except ValueError as e:  # pooch's own hash check (ours runs first, so unexpected)
        raise AcquireError(f"{url}: {e}") from e
    except Exception as e:  # requests errors on a cached-file check, unknown URL schemes, ...
        raise AcquireError(f"{url}: download failed: {type(e).__name__}: {e}") from e
    log.info("archive: %s", path)
    size = path.stat().st_size
    if size_bytes is not None and size != size_bytes:
        # Only reachable for an archive already in the cache whose md5 matched: trust neither.
        path.unlink(missing_ok=True)
        raise AcquireError(
            f"{url}: cached archive {str(path)!r} has {size:,} bytes, expected {size_bytes:,}; "
            "deleted it"
        )
    return path


class _CheckedDownloader:
    """Pooch's downloader for the URL, with clear errors and a size and md5 check of its own.

    Pooch calls it with a temporary file in the cache folder and deletes that file when this
    raises, so a failed download leaves nothing behind. No retries: one attempt, bounded by
    ``timeout`` seconds of silence.
    """

    def __init__(
        self, url: str, *, md5: str, size_bytes: int | None, progress: bool, timeout: float
    ) -> None:
        import pooch

        self.md5, self.size_bytes, self.timeout = md5, size_bytes, timeout
        if urlparse(url).scheme in ("http", "https"):
            # 64 KiB chunks: pooch's default (1 KiB, each flushed) is slow for 432 MB.
            self.inner = pooch.HTTPDownloader(
                progressbar=progress, chunk_size=1 << 16, timeout=timeout
            )
        else:
            self.inner = pooch.choose_downloader(url, progressbar=progress)

    def __call__(self, url: str, output_file: str, pooch_obj: Any, check_only: bool = False) -> Any:
        import requests
        import urllib3

        if check_only:
            return self.inner(url, output_file, pooch_obj, check_only=True)
        try:
            self.inner(url, output_file, pooch_obj)
        except requests.exceptions.HTTPError as e:
            status = getattr(e.response, "status_code", "?")
            reason = getattr(e.response, "reason", "")
            raise AcquireError(f"{url}: HTTP error {status} {reason}".rstrip()) from e
        except requests.exceptions.RequestException as e:
            chain = list(_exception_chain(e))
            got, total = _size_or_zero(output_file), self.size_bytes
            for item in chain:  # urllib3's IncompleteRead knows both numbers exactly
                partial, expected = getattr(item, "partial", None), getattr(item, "expected", None)
                if isinstance(partial, int) and isinstance(expected, int):
                    got, total = partial, partial + expected
            progress = f"{got:,}" + (f" of {total:,}" if total is not None else "") + " bytes"
            if any(isinstance(item, urllib3.exceptions.ConnectTimeoutError) for item in chain):
                problem = f"could not connect within {self.timeout:g} s"
            elif any(isinstance(item, urllib3.exceptions.ReadTimeoutError) for item in chain):
                problem = f"no data for {self.timeout:g} s after {progress}"
            elif isinstance(e, requests.exceptions.ChunkedEncodingError) or got > 0:
                problem = f"transfer interrupted after {progress}"
            elif isinstance(e, requests.exceptions.ConnectionError):
                problem = "could not connect"
            else:
                problem = "download failed"
            raise AcquireError(
                f"{url}: {problem}; nothing was kept ({type(e).__name__}: {e})"
            ) from e
        got = _size_or_zero(output_file)
        if self.size_bytes is not None and got != self.size_bytes:
            raise AcquireError(
                f"{url}: received {got:,} bytes, expected {self.size_bytes:,}; "
                "the download was discarded"
            )
        actual = _md5(Path(output_file))
        if actual != self.md5:
            raise AcquireError(
                f"{url}: md5 mismatch: expected {self.md5}, got {actual} ({got:,} bytes); "
                "the download was discarded"
            )
        return None


def _exception_chain(exc: BaseException) -> Iterator[object]:
    """``exc``, its causes and contexts, and the exceptions in their ``args`` (requests nests)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseException):
            todo += [*item.args, item.__cause__, item.__context__]


def _size_or_zero(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- unpacking -----------------------------------------------------------------------------------


def _extract(archive: Path, dest: Path, *, label: str, progress: bool) -> PurePosixPath:
    """Unpack the seven csv files under the archive's ``KuaiRec 2.0/data/`` into ``dest``.

    Returns that folder's path inside the archive.
    """
    from tqdm.auto import tqdm

    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise _ArchiveContentError(f"{label}: not a zip archive ({archive.name}: {e})") from e
    with zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_path(info.filename, label)
        prefix = _data_prefix([info.filename for info in infos], label)
        members = {
            PurePosixPath(info.filename).name: info
            for info in infos
            if not info.is_dir() and PurePosixPath(info.filename).parent == prefix
        }
        missing = [f for f in RELEASE_FILES if f not in members]
        if missing:
            raise _ArchiveContentError(
                f"{label}: {prefix}/ in the archive lacks {', '.join(missing)}"
            )
        dest.mkdir(parents=True)
        for name in RELEASE_FILES:
            info = members[name]
            try:
                with (
                    zf.open(info) as src,
                    open(dest / name, "wb") as dst,
                    tqdm(
                        total=info.file_size,
                        unit="B",
                        unit_scale=True,
                        desc=f"unzip {name}",
                        disable=not progress or info.file_size < 8 * _CHUNK,
                        leave=False,
                    ) as bar,
                ):
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
                        bar.update(len(chunk))
            except NotImplementedError as e:  # e.g. Deflate64: the archive itself may be fine
                raise AcquireError(
                    f"{label}: cannot unpack {info.filename} with Python's zipfile ({e}); unpack "
                    f"{str(archive)!r} with another tool and pass it as kuairec_dir"
                ) from e
            except (zipfile.BadZipFile, zlib.error, EOFError) as e:
                raise _ArchiveContentError(
                    f"{label}: corrupt zip member {info.filename}: {e}"
                ) from e
    return prefix


def _check_member_path(name: str, label: str) -> None:
    """Reject members that would land outside the target folder (zip-slip)."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise _ArchiveContentError(f"{label}: unsafe member path {name!r} in the archive")


def _data_prefix(names: Sequence[str], label: str) -> PurePosixPath:
    """The archive's ``.../KuaiRec 2.0/data`` folder (macOS ``__MACOSX/`` copies ignored)."""
    prefixes = set()
    for name in names:
        parts = PurePosixPath(name).parts
        if not parts or parts[0] == "__MACOSX":
            continue
        for i in range(len(parts) - 1):
            if parts[i] == RELEASE_DIRNAME and parts[i + 1] == DATA_DIRNAME:
                prefixes.add(PurePosixPath(*parts[: i + 2]))
                break
    if not prefixes:
        top = sorted({PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts})
        raise _ArchiveContentError(
            f"{label}: no '{RELEASE_DIRNAME}/{DATA_DIRNAME}/' folder in the archive "
            f"(top-level entries: {', '.join(top[:10]) or 'none'})"
        )
    if len(prefixes) > 1:
        raise _ArchiveContentError(
            f"{label}: several '{RELEASE_DIRNAME}/{DATA_DIRNAME}/' folders in the archive: "
            + ", ".join(sorted(map(str, prefixes)))
        )
    return prefixes.pop()


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


# --- command line --------------------------------------------------------------------------------


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
