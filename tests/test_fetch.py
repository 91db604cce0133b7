"""The downloader against a local HTTP server on 127.0.0.1 (no test touches the internet).

The server serves small synthetic gzip files generated here, and misbehaves on purpose:
one path drops the connection half-way the first time (the client must resume with an
HTTP Range request), one serves a corrupt gzip (the client must reject it), one is
missing (HTTP 404, no retry helps).
"""

from __future__ import annotations

import gzip
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tfcnn.apps.cli import app
from tfcnn.errors import TfcnnInputError
from tfcnn.io.fetch import (
    Download,
    atgenexpress_downloads,
    download_all,
    download_file,
    https_url,
    read_sample_sheet,
)


def _gzip_bytes(seed: int, size: int = 200_000) -> bytes:
    """A synthetic gzip file (random, so it does not compress below its size much)."""
    raw = np.random.default_rng(seed).integers(0, 255, size, dtype=np.uint8).tobytes()
    return gzip.compress(raw, mtime=0)


class _Server:
    """A threaded HTTP server with Range support and scripted failures."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()  # drop the connection half-way, once
        self.ignore_range: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and self.path not in server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if self.path in server.drop_once:
                    server.drop_once.discard(self.path)
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _get(server: _Server, name: str, tmp_path: Path, **kw):
    item = Download(f"{server.url}/{name}", tmp_path / name, "gzip", name)
    return item, download_file(item, retries=2, timeout=5, backoff=0, **kw)


def test_plain_download_is_verified_and_renamed(server, tmp_path: Path) -> None:
    server.files["/a.CEL.gz"] = data = _gzip_bytes(1)
    item, res = _get(server, "a.CEL.gz", tmp_path)
    assert res.status == "downloaded" and res.attempts == 1 and not res.resumed
    assert item.dest.read_bytes() == data
    assert not (tmp_path / "a.CEL.gz.part").exists()
    _, again = _get(server, "a.CEL.gz", tmp_path)  # already there and valid: not re-fetched
    assert again.status == "present" and len(server.requests) == 1


def test_dropped_connection_resumes_with_range(server, tmp_path: Path) -> None:
    server.files["/drop.CEL.gz"] = data = _gzip_bytes(2)
    server.drop_once.add("/drop.CEL.gz")
    item, res = _get(server, "drop.CEL.gz", tmp_path)
    assert res.status == "downloaded", res.message
    assert res.attempts == 2 and res.resumed
    assert item.dest.read_bytes() == data
    first, second = server.requests
    assert first == ("/drop.CEL.gz", None)
    half = len(data) // 2
    assert second == ("/drop.CEL.gz", f"bytes={half}-")


def test_server_ignoring_range_restarts_cleanly(server, tmp_path: Path) -> None:
    server.files["/norange.CEL.gz"] = data = _gzip_bytes(3)
    server.drop_once.add("/norange.CEL.gz")
    server.ignore_range.add("/norange.CEL.gz")
    item, res = _get(server, "norange.CEL.gz", tmp_path)
    assert res.status == "downloaded" and not res.resumed
    assert item.dest.read_bytes() == data


def test_corrupt_gzip_is_rejected_and_never_kept(server, tmp_path: Path) -> None:
    data = bytearray(_gzip_bytes(4))
    data[len(data) // 2] ^= 0xFF  # same size, broken deflate stream / CRC
    server.files["/bad.CEL.gz"] = bytes(data)
    item, res = _get(server, "bad.CEL.gz", tmp_path)
    assert res.status == "failed" and res.attempts == 3  # 1 + 2 retries
    assert "corrupt gzip" in res.message
    assert not item.dest.exists() and not (tmp_path / "bad.CEL.gz.part").exists()
    assert all(rng is None for _, rng in server.requests)  # never resumed from bad bytes


def test_truncated_file_fails_size_check(server, tmp_path: Path) -> None:
    server.files["/t.CEL.gz"] = _gzip_bytes(5)
    server.drop_once.add("/t.CEL.gz")
    item = Download(f"{server.url}/t.CEL.gz", tmp_path / "t.CEL.gz", "gzip")
    res = download_file(item, retries=0, timeout=5, backoff=0)
    assert res.status == "failed" and "dropped" in res.message
    assert not item.dest.exists()
    assert (tmp_path / "t.CEL.gz.part").exists()  # kept: the next run resumes it
    res = download_file(item, retries=0, timeout=5, backoff=0)
    assert res.status == "downloaded" and res.resumed


def test_missing_file_is_not_retried(server, tmp_path: Path) -> None:
    item, res = _get(server, "nope.CEL.gz", tmp_path)
    assert res.status == "failed" and res.attempts == 1 and "404" in res.message
    assert not item.dest.exists()


def test_existing_corrupt_file_needs_force(server, tmp_path: Path) -> None:
    server.files["/c.CEL.gz"] = data = _gzip_bytes(6)
    (tmp_path / "c.CEL.gz").write_bytes(b"not gzip")
    _, res = _get(server, "c.CEL.gz", tmp_path)
    assert res.status == "failed" and "pass `force`" in res.message
    assert (tmp_path / "c.CEL.gz").read_bytes() == b"not gzip"
    _, res = _get(server, "c.CEL.gz", tmp_path, force=True)
    assert res.status == "downloaded" and (tmp_path / "c.CEL.gz").read_bytes() == data


def test_download_all_in_parallel_keeps_order(server, tmp_path: Path) -> None:
    items = []
    for i in range(6):
        server.files[f"/f{i}.CEL.gz"] = _gzip_bytes(10 + i, 20_000)
        items.append(Download(f"{server.url}/f{i}.CEL.gz", tmp_path / f"f{i}.CEL.gz", "gzip"))
    server.drop_once.add("/f3.CEL.gz")
    results = download_all(items, workers=3, retries=2, timeout=5, backoff=0, progress=False)
    assert [r.download for r in results] == items
    assert all(r.status == "downloaded" for r in results)
    assert results[3].resumed


def _sheet(path: Path, base: str) -> Path:
    rows = [
        "sample_id,cel_file_ftp,source",
        f"GSM1,{base}/GSM1.CEL.gz,a",
        "GSMx,ftp://ftp.ncbi.nlm.nih.gov/geo/samples/GSMx.CEL.gz,bad id",
        "GSM2,ftp://example.org/GSM2.CEL.gz,foreign ftp",
        f"GSM3,{base}/GSM3.txt,not a cel",
        f"GSM4,{base}/GSM4.CEL.gz,b",
        f"GSM1,{base}/GSM1.CEL.gz,repeat",
        f"GSM5,{base}/GSM5.CEL.gz,corrupt",
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_sample_sheet_rows_and_https_conversion(tmp_path: Path) -> None:
    assert (
        https_url("ftp://ftp.ncbi.nlm.nih.gov/geo/samples/GSM131nnn/GSM131321/suppl/x.CEL.gz")
        == "https://ftp.ncbi.nlm.nih.gov/geo/samples/GSM131nnn/GSM131321/suppl/x.CEL.gz"
    )
    report = read_sample_sheet(_sheet(tmp_path / "s.csv", "http://h"))
    assert [r.sample_id for r in report.rows] == ["GSM1", "GSM4", "GSM5"]
    assert len(report.skipped) == 4
    assert any("line 3" in s and "GSMx" in s for s in report.skipped)
    assert any("repeats line 2" in s for s in report.skipped)
    with pytest.raises(TfcnnInputError, match="cel_file_ftp"):
        (tmp_path / "x.csv").write_text("a,b\n1,2\n")
        read_sample_sheet(tmp_path / "x.csv")


def test_bundled_sheet_maps_to_ncbi_https(tmp_path: Path) -> None:
    items, report = atgenexpress_downloads(tmp_path)
    assert len(items) == len(report.rows) > 200
    assert all(i.url.startswith("https://ftp.ncbi.nlm.nih.gov/geo/samples/") for i in items)
    assert items[0].dest == tmp_path / "GSM835815.CEL.gz"


def test_cli_fetch_atgenexpress_reports_failures(server, tmp_path: Path) -> None:
    for name in ("GSM1", "GSM4"):
        server.files[f"/{name}.CEL.gz"] = _gzip_bytes(len(name) + int(name[-1]))
    server.files["/GSM5.CEL.gz"] = b"\x1f\x8b" + b"junk" * 100
    sheet = _sheet(tmp_path / "s.csv", server.url)
    dest = tmp_path / "cel"
    args = ["fetch", "atgenexpress", "--dest", str(dest), "--sheet", str(sheet)]
    args += ["--retries", "0", "--timeout", "5", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "2 downloaded" in res.output and "1 failed" in res.output
    assert "skipped" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in dest.iterdir()) == ["GSM1.CEL.gz", "GSM4.CEL.gz"]


def test_cli_fetch_atregnet_and_ath1_map(server, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("AtRegNet.txt", "TFName\tTFLocus\nX\tAT1G01010\n")
    server.files["/AtRegNet.zip"] = buf.getvalue()
    server.files["/map.txt"] = b"array_element_name\tlocus\n244901_at\tATMG00640\n"
    server.files["/login.txt"] = b"<html><body>Please log in</body></html>\n"
    runner = CliRunner()
    base = ["--retries", "0", "--timeout", "5", "--no-progress", "--dest", str(tmp_path)]
    with_bar = [a for a in base if a != "--no-progress"]  # the rich progress bar path too
    res = runner.invoke(
        app, ["fetch", "atregnet", "--url", f"{server.url}/AtRegNet.zip", *with_bar]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "AtRegNet.txt").read_text().startswith("TFName")
    res = runner.invoke(app, ["fetch", "ath1-map", "--url", f"{server.url}/map.txt", *base])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "map.txt").exists()
    res = runner.invoke(app, ["fetch", "ath1-map", "--url", f"{server.url}/login.txt", *base])
    assert res.exit_code == 2 and "array_element_name" in res.output
    assert not (tmp_path / "login.txt").exists()
