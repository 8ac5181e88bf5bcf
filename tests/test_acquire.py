"""End-to-end tests of ``kuairec_utils.acquire`` against a real HTTP server on 127.0.0.1.

The server (started per test module) serves a tiny but valid release zipped like the official
archive (and under ``KuaiRec/KuaiRec 2.0/data/`` with ``__MACOSX`` litter), plus broken
variants: a corrupt archive (same size, bytes flipped: an md5 mismatch, or with its own md5 a
bad zip member), a file that is not a zip, a zip whose ``big_matrix.csv`` fails validation, a zip
without ``KuaiRec 2.0/data/``, zip-slip and absolute member paths, a 404, a transfer that stops
half way and one that goes silent. Every failure must leave nothing in ``raw_dir`` or the cache
that a later run could take for valid. The whole module runs in about 4 s.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kuairec_fixtures import drop_column, write_tiny_release

from kuairec_utils.acquire import (
    MANIFEST_NAME,
    RELEASE_FILES,
    AcquireError,
    fetch_kuairec,
    find_release_dir,
    main,
    read_manifest,
)
from kuairec_utils.config import KUAIREC_DATA_SUBDIR

TIMEOUT_S = 5.0  # the server answers at once; this only bounds a hung test
STALL_TIMEOUT_S = 0.5  # the client's timeout in the test of a server that goes silent


# --- archives ------------------------------------------------------------------------------------


def _zip(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` (member name -> content), with directory entries like a real one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        safe = [n for n in files if not n.startswith("/") and ".." not in n]
        dirs = sorted({n.rsplit("/", 1)[0] + "/" for n in safe if "/" in n})
        for d in dirs:
            zf.writestr(d, b"")
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _release_files(data_dir: Path, prefix: str) -> dict[str, bytes]:
    return {prefix + f: (data_dir / f).read_bytes() for f in RELEASE_FILES}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class Archives:
    """The bytes served at each path, and the tiny release they were made from."""

    source: Path  # the tiny release's data folder
    bodies: dict[str, bytes] = field(default_factory=dict)

    def md5(self, name: str) -> str:
        return _md5(self.bodies[name])

    def size(self, name: str) -> int:
        return len(self.bodies[name])


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Archives:
    root = tmp_path_factory.mktemp("release")
    source = write_tiny_release(root / KUAIREC_DATA_SUBDIR)
    good = _zip(_release_files(source, "KuaiRec 2.0/data/"))

    corrupt = bytearray(good)
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 64):  # same size, another md5
        corrupt[i] ^= 0xFF

    bad_dir = tmp_path_factory.mktemp("bad") / "data"
    write_tiny_release(bad_dir)
    drop_column(bad_dir / "big_matrix.csv", "watch_ratio")

    nested = _release_files(source, "KuaiRec/KuaiRec 2.0/data/")
    nested["__MACOSX/KuaiRec/KuaiRec 2.0/data/._big_matrix.csv"] = b"\x00\x05\x16\x07junk"
    nested["KuaiRec/KuaiRec 2.0/loaddata.py"] = b"print('not unpacked')\n"

    slip = _release_files(source, "KuaiRec 2.0/data/")
    slip["KuaiRec 2.0/data/../../evil.csv"] = b"owned\n"
    absolute = _release_files(source, "KuaiRec 2.0/data/")
    absolute["/tmp/evil.csv"] = b"owned\n"

    return Archives(
        source,
        {
            "good.zip": good,
            "corrupt.zip": bytes(corrupt),
            "not_a_zip.zip": os.urandom(4096),
            "invalid.zip": _zip(_release_files(bad_dir, "KuaiRec 2.0/data/")),
            "nested.zip": _zip(nested),
            "no_data.zip": _zip(_release_files(source, "KuaiRec 2.0/other/")),
            "slip.zip": _zip(slip),
            "absolute.zip": _zip(absolute),
            "interrupted.zip": good,
            "stalled.zip": good,
        },
    )


# --- the HTTP server -----------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    requests: list[str]

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(scope="module")
def server(archives: Archives) -> Iterator[Server]:
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            body = archives.bodies.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path == "/stalled.zip":
                self.wfile.write(body[:100])
                self.wfile.flush()
                time.sleep(2 * STALL_TIMEOUT_S)  # silent past the client's timeout
                self.close_connection = True
                return
            if self.path == "/interrupted.zip":
                self.wfile.write(body[: len(body) // 2])  # then the connection closes
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_server(server: Server) -> Server:
    server.requests.clear()
    return server


# --- helpers -------------------------------------------------------------------------------------


def _listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder`` (hidden ones too), relative; [] if it is missing."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _fetch(server: Server, archives: Archives, name: str, raw_dir: Path, cache: Path, **kw):
    kw.setdefault("md5", archives.md5(name))
    kw.setdefault("size_bytes", archives.size(name))
    kw.setdefault("timeout", TIMEOUT_S)
    return fetch_kuairec(raw_dir, url=server.url(name), cache_dir=cache, progress=False, **kw)


def _expected_rows(data_dir: Path) -> dict[str, int]:
    from kuairec_utils.data.kuairec import validate_release

    return {str(k): int(v) for k, v in validate_release(data_dir).items()}


def _assert_release(raw_dir: Path, archives: Archives) -> None:
    data_dir = raw_dir / KUAIREC_DATA_SUBDIR
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(RELEASE_FILES)
    for name in RELEASE_FILES:
        assert (data_dir / name).read_bytes() == (archives.source / name).read_bytes()
    assert read_manifest(raw_dir)["rows"] == _expected_rows(archives.source)


# --- downloading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good.zip", "nested.zip"])
def test_archive_is_downloaded_verified_and_unpacked(
    name: str, http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    data_dir = _fetch(http_server, archives, name, raw_dir, cache)

    assert data_dir == raw_dir / KUAIREC_DATA_SUBDIR
    _assert_release(raw_dir, archives)
    # Only the data folder is unpacked (no loaddata.py, no __MACOSX), and no staging is left.
    assert _listing(raw_dir) == sorted(
        ["KuaiRec 2.0", f"KuaiRec 2.0/{MANIFEST_NAME}", "KuaiRec 2.0/data"]
        + [f"KuaiRec 2.0/data/{f}" for f in RELEASE_FILES]
    )
    assert _listing(cache) == [name]
    umask = os.umask(0)
    os.umask(umask)
    assert (raw_dir / "KuaiRec 2.0").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's
    manifest = read_manifest(raw_dir)
    assert manifest["source"] == "archive"
    assert manifest["md5"] == archives.md5(name)
    assert http_server.requests == [f"/{name}"]


def test_second_fetch_reuses_the_release_without_downloading(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    _fetch(http_server, archives, "good.zip", raw_dir, cache)
    http_server.requests.clear()
    before = (raw_dir / KUAIREC_DATA_SUBDIR / "big_matrix.csv").stat().st_ino

    start = time.perf_counter()
    _fetch(http_server, archives, "good.zip", raw_dir, cache)
    assert time.perf_counter() - start < 1.0
    assert http_server.requests == []
    assert (raw_dir / KUAIREC_DATA_SUBDIR / "big_matrix.csv").stat().st_ino == before  # untouched

    # A damaged release is not reused: it is unpacked again from the cached archive (no request).
    (raw_dir / KUAIREC_DATA_SUBDIR / "small_matrix.csv").write_bytes(b"user_id\n")
    _fetch(http_server, archives, "good.zip", raw_dir, cache)
    _assert_release(raw_dir, archives)
    assert http_server.requests == []


def test_cached_archive_is_not_downloaded_again(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    _fetch(http_server, archives, "good.zip", tmp_path / "raw1", cache)
    _fetch(http_server, archives, "good.zip", tmp_path / "raw2", cache)
    _assert_release(tmp_path / "raw2", archives)
    assert http_server.requests == ["/good.zip"]


def test_existing_folder_is_replaced_by_the_release(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    old = raw_dir / KUAIREC_DATA_SUBDIR
    old.mkdir(parents=True)
    (old / "big_matrix.csv").write_text("simulated\n")
    (old / "stale.csv").write_text("simulated\n")

    _fetch(http_server, archives, "good.zip", raw_dir, cache)
    _assert_release(raw_dir, archives)
    assert not any(p.name.startswith(".kuairec-partial") for p in raw_dir.iterdir())


def test_wrong_md5_leaves_nothing(http_server: Server, archives: Archives, tmp_path: Path) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    with pytest.raises(AcquireError, match="md5 mismatch") as err:
        _fetch(http_server, archives, "corrupt.zip", raw_dir, cache, md5=archives.md5("good.zip"))
    message = str(err.value)
    assert archives.md5("good.zip") in message and archives.md5("corrupt.zip") in message
    assert http_server.url("corrupt.zip") in message
    assert _listing(raw_dir) == []
    assert _listing(cache) == []


def test_wrong_size_leaves_nothing(http_server: Server, archives: Archives, tmp_path: Path) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    size = archives.size("good.zip")
    with pytest.raises(AcquireError, match=f"received {size:,} bytes, expected {size + 1:,};"):
        _fetch(http_server, archives, "good.zip", raw_dir, cache, size_bytes=size + 1)
    assert _listing(raw_dir) == []
    assert _listing(cache) == []


def test_interrupted_transfer_leaves_nothing(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    size = archives.size("interrupted.zip")
    with pytest.raises(AcquireError, match="transfer interrupted after") as err:
        _fetch(http_server, archives, "interrupted.zip", raw_dir, cache)
    assert f"after {size // 2:,} of {size:,} bytes" in str(err.value)
    assert _listing(raw_dir) == []
    assert _listing(cache) == []


def test_stalled_transfer_times_out_and_leaves_nothing(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    size = archives.size("stalled.zip")
    start = time.perf_counter()
    with pytest.raises(
        AcquireError, match=rf"no data for {STALL_TIMEOUT_S:g} s after [\d,]+ of {size:,} bytes"
    ):
        _fetch(http_server, archives, "stalled.zip", raw_dir, cache, timeout=STALL_TIMEOUT_S)
    assert time.perf_counter() - start < 2 * STALL_TIMEOUT_S + 1
    assert _listing(raw_dir) == []
    assert _listing(cache) == []


def test_http_error_is_reported(http_server: Server, archives: Archives, tmp_path: Path) -> None:
    with pytest.raises(AcquireError, match="HTTP error 404"):
        fetch_kuairec(
            tmp_path / "raw",
            url=http_server.url("missing.zip"),
            md5="0" * 32,
            size_bytes=None,
            cache_dir=tmp_path / "cache",
            progress=False,
            timeout=TIMEOUT_S,
        )
    assert _listing(tmp_path / "raw") == []
    assert _listing(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("not_a_zip.zip", "not a zip archive"),
        ("corrupt.zip", "corrupt zip member KuaiRec 2.0/data/"),  # its own md5: past the check
        ("no_data.zip", "no 'KuaiRec 2.0/data/' folder"),
        ("slip.zip", r"unsafe member path 'KuaiRec 2\.0/data/\.\./\.\./evil\.csv'"),
        ("absolute.zip", "unsafe member path '/tmp/evil.csv'"),
        ("invalid.zip", r"not a valid KuaiRec 2\.0 release: KuaiRec 2\.0/data/big_matrix\.csv"),
    ],
)
def test_unusable_archive_with_right_md5_leaves_nothing(
    name: str, pattern: str, http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    with pytest.raises(AcquireError, match=pattern):
        _fetch(http_server, archives, name, raw_dir, cache)
    assert _listing(raw_dir) == []
    assert _listing(cache) == []  # it matched the md5 but is useless: deleted
    assert not (tmp_path / "evil.csv").exists()


def test_failed_fetch_keeps_an_earlier_release(
    http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    raw_dir, cache = tmp_path / "raw", tmp_path / "cache"
    _fetch(http_server, archives, "good.zip", raw_dir, cache)
    with pytest.raises(AcquireError):
        _fetch(http_server, archives, "invalid.zip", raw_dir, cache)
    _assert_release(raw_dir, archives)
    assert read_manifest(raw_dir)["md5"] == archives.md5("good.zip")


# --- an unpacked copy ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["data", "release", "kuairec", "parent"])
def test_kuairec_dir_is_used_without_any_request(
    layout: str, http_server: Server, archives: Archives, tmp_path: Path
) -> None:
    copy_root = tmp_path / "mine"
    data = copy_root / "KuaiRec" / KUAIREC_DATA_SUBDIR
    write_tiny_release(data)
    pointed = {
        "data": data,  # the folder holding the csv files
        "release": data.parent,  # "KuaiRec 2.0"
        "kuairec": copy_root / "KuaiRec",  # holds "KuaiRec 2.0/data"
        "parent": copy_root,  # holds "KuaiRec/KuaiRec 2.0/data"
    }[layout]
    raw_dir = tmp_path / "raw"

    result = fetch_kuairec(
        raw_dir,
        url=http_server.url("good.zip"),
        md5=archives.md5("good.zip"),
        size_bytes=archives.size("good.zip"),
        kuairec_dir=pointed,
        cache_dir=tmp_path / "cache",
        progress=False,
    )

    assert http_server.requests == []
    assert not (tmp_path / "cache").exists()
    assert result == raw_dir / KUAIREC_DATA_SUBDIR
    for name in RELEASE_FILES:
        assert (result / name).read_bytes() == (data / name).read_bytes()
        assert (result / name).stat().st_ino == (data / name).stat().st_ino  # hard-linked
    assert read_manifest(raw_dir)["kuairec_dir"] == str(data.resolve())
    assert read_manifest(raw_dir)["rows"] == _expected_rows(data)
    assert sorted(p.name for p in data.iterdir()) == sorted(RELEASE_FILES)  # source untouched

    start = time.perf_counter()  # the same, unchanged copy again: reused
    manifest_before = (raw_dir / "KuaiRec 2.0" / MANIFEST_NAME).read_text()
    fetch_kuairec(raw_dir, url="", md5="", size_bytes=None, kuairec_dir=pointed, progress=False)
    assert time.perf_counter() - start < 1.0
    assert (raw_dir / "KuaiRec 2.0" / MANIFEST_NAME).read_text() == manifest_before


def test_kuairec_dir_already_in_raw_dir_is_validated_in_place(tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    data = write_tiny_release(raw_dir / KUAIREC_DATA_SUBDIR)
    (raw_dir / "KuaiRec 2.0" / "loaddata.py").write_text("# shipped with the release\n")
    inodes = {f: (data / f).stat().st_ino for f in RELEASE_FILES}

    assert (
        fetch_kuairec(raw_dir, url="", md5="", size_bytes=None, kuairec_dir=raw_dir, progress=False)
        == data
    )
    assert {f: (data / f).stat().st_ino for f in RELEASE_FILES} == inodes  # nothing moved
    assert (raw_dir / "KuaiRec 2.0" / "loaddata.py").exists()
    assert read_manifest(raw_dir)["rows"] == _expected_rows(data)


def test_kuairec_dir_without_the_files_says_where_it_looked(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    write_tiny_release(mine / KUAIREC_DATA_SUBDIR)
    (mine / KUAIREC_DATA_SUBDIR / "social_network.csv").unlink()
    with pytest.raises(AcquireError) as err:
        find_release_dir(mine)
    message = str(err.value)
    assert str(mine / KUAIREC_DATA_SUBDIR) in message
    assert str(mine / "KuaiRec" / KUAIREC_DATA_SUBDIR) in message
    assert "lacks social_network.csv" in message

    with pytest.raises(AcquireError, match="is not a folder"):
        find_release_dir(tmp_path / "nowhere")


def test_invalid_kuairec_dir_leaves_nothing(tmp_path: Path) -> None:
    mine = write_tiny_release(tmp_path / "mine")
    drop_column(mine / "big_matrix.csv", "watch_ratio")
    raw_dir = tmp_path / "raw"
    with pytest.raises(AcquireError, match=f"{mine.resolve()}/big_matrix.csv"):
        fetch_kuairec(raw_dir, url="", md5="", size_bytes=None, kuairec_dir=mine, progress=False)
    assert _listing(raw_dir) == []


def test_release_files_are_the_readers_tables() -> None:
    from kuairec_utils.data.kuairec import TABLES

    assert sorted(RELEASE_FILES) == sorted(f"{t}.csv" for t in TABLES)


# --- command line --------------------------------------------------------------------------------


def test_cli_downloads_and_prints_row_counts(
    http_server: Server, archives: Archives, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_dir = tmp_path / "raw"

    def argv(md5: str) -> list[str]:
        return [
            *("--out", str(raw_dir), "--url", http_server.url("good.zip"), "--md5", md5),
            *("--size", str(archives.size("good.zip")), "--cache-dir", str(tmp_path / "cache")),
            "--no-progress",
        ]

    assert main(argv(archives.md5("good.zip"))) == 0
    out = capsys.readouterr().out
    assert str(raw_dir / KUAIREC_DATA_SUBDIR) in out
    for table, n in _expected_rows(archives.source).items():
        assert table in out and f"{n:,} rows" in out

    assert main(argv("0" * 32)) == 1  # a failure: a message and exit status 1, no traceback
    assert "md5 mismatch" in capsys.readouterr().err


def test_cli_with_kuairec_dir(
    http_server: Server, archives: Archives, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path / "raw"), "--kuairec-dir", str(archives.source.parent)]) == 0
    assert str(tmp_path / "raw" / KUAIREC_DATA_SUBDIR) in capsys.readouterr().out
    assert http_server.requests == []
