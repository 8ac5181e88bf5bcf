"""Get the real KuaiRec 2.0 release into ``data/raw/``: download, verify, unpack, validate.

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

The command line that chooses between this and the simulated platform is
``kuairec_utils.acquire``; where the release lands and how it is installed (finding an
unpacked copy, staging, validation, the record) is ``kuairec_utils.data.release``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from kuairec_utils.data.release import (
    DATA_DIRNAME,
    RELEASE_DIRNAME,
    RELEASE_FILES,
    AcquireError,
    _ArchiveContentError,
    _reusable,
    _size_or_zero,
    _staging,
    _validate_and_install,
    link_unpacked_copy,
)

log = logging.getLogger(__name__)

CACHE_ENV = "KUAIREC_CACHE_DIR"
DEFAULT_TIMEOUT_S = 60.0  # per connect / per read, not for the whole transfer
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Where archives are cached: ``$KUAIREC_CACHE_DIR``, else ``pooch.os_cache("kuairec")``."""
    import pooch

    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(pooch.os_cache("kuairec")).expanduser()


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
        return link_unpacked_copy(raw_dir, kuairec_dir)

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
