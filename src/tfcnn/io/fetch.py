"""Download the study's public inputs: AtGenExpress .cel files, AtRegNet, the ATH1 map.

Every download is

* **resumable**: bytes arrive in ``NAME.part``; an interrupted transfer continues with an
  HTTP ``Range`` request (a server that ignores it sends the whole file again);
* **verified**: the size must equal the server's ``Content-Length`` / ``Content-Range``
  total, and the content must be what it claims (a gzip file is decompressed to the end,
  CRC included; a zip file is tested member by member; a table must have its header);
* **retried** a few times with a growing pause; a file that still fails is reported and
  never renamed to its final name (a corrupt ``.part`` is deleted, an interrupted one
  kept so the next run resumes it);
* **parallel**: several files at once in threads, under one rich progress bar.

GEO's sample sheet lists ``ftp://ftp.ncbi.nlm.nih.gov/...`` paths; the same paths are
served over HTTPS at ``https://ftp.ncbi.nlm.nih.gov/...``, which is what is used.
"""

from __future__ import annotations

import csv
import gzip
import http.client
import logging
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import TfcnnInputError

log = logging.getLogger(__name__)

NCBI_FTP = "ftp://ftp.ncbi.nlm.nih.gov/"
NCBI_HTTPS = "https://ftp.ncbi.nlm.nih.gov/"
#: AGRIS download of AtRegNet (as fetched by the original study's own build script).
ATREGNET_URL = "https://agris-knowledgebase.org/Downloads/AtRegNet.zip"
#: TAIR's ATH1-121501 probeset -> AGI table (the canonical source of the bundled ath1-map).
ATH1_MAP_URL = (
    "https://www.arabidopsis.org/download_files/Microarrays/Affymetrix/"
    "affy_ATH1_array_elements-2010-12-20.txt"
)
USER_AGENT = f"tfcnn/{__version__} (+https://github.com/; research data download)"
CHUNK = 1 << 16

# Verification kinds: "gzip", "zip", or "table:<column>" (text table whose header has it).
Verifier = str


class DownloadError(Exception):
    """A download attempt failed; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Download:
    """One file to fetch: from ``url`` to ``dest``, checked as ``verify``."""

    url: str
    dest: Path
    verify: Verifier = "gzip"
    label: str = ""


@dataclass
class Result:
    """What happened to one download."""

    download: Download
    status: str  # "downloaded", "present", "failed"
    attempts: int = 0
    size: int = 0
    message: str = ""
    resumed: bool = False


@dataclass(frozen=True)
class SheetRow:
    """One usable row of the AtGenExpress sample sheet."""

    line: int
    sample_id: str
    url: str


@dataclass
class SheetReport:
    """Rows of a sample sheet: usable ones in sheet order, and the ones skipped (why)."""

    rows: list[SheetRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def https_url(url: str) -> str:
    """GEO's ftp:// paths as HTTPS; http(s) URLs unchanged; anything else refused."""
    url = url.strip()
    if url.startswith(NCBI_FTP):
        return NCBI_HTTPS + url[len(NCBI_FTP) :]
    if url.startswith(("https://", "http://")):
        return url
    raise ValueError(f"not an NCBI ftp or http(s) URL: {url!r}")


_GSM = re.compile(r"^GSM\d+$")


def read_sample_sheet(path: str | os.PathLike[str]) -> SheetReport:
    """Usable rows (GSM id + .cel URL) of a sample sheet, in order; malformed ones reported.

    Needs columns ``sample_id`` and ``cel_file_ftp``. A row is skipped when its GSM id is
    malformed, its URL is not an NCBI ftp / http(s) .cel(.gz) URL, or the GSM id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise TfcnnInputError(f"sample sheet {path} does not exist (or is not a file).")
    report = SheetReport()
    seen: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"sample_id", "cel_file_ftp"} - set(reader.fieldnames or [])
            if missing:
                raise TfcnnInputError(
                    f"{path}: sample sheet has no column(s) {sorted(missing)}; need sample_id "
                    "and cel_file_ftp (as in the bundled atgenexpress-samples)."
                )
            for row in reader:
                line = reader.line_num
                gsm = (row.get("sample_id") or "").strip()
                raw = (row.get("cel_file_ftp") or "").strip()
                if not _GSM.match(gsm):
                    report.skipped.append(f"line {line}: sample_id {gsm!r} is not a GSM id")
                    continue
                try:
                    url = https_url(raw)
                except ValueError:
                    report.skipped.append(f"line {line}: {gsm}: URL {raw!r} is not usable")
                    continue
                if not re.search(r"\.cel(\.gz)?$", url, re.IGNORECASE):
                    report.skipped.append(f"line {line}: {gsm}: {raw!r} is not a .cel file")
                    continue
                if gsm in seen:
                    report.skipped.append(
                        f"line {line}: {gsm} repeats line {seen[gsm]}; the first is kept"
                    )
                    continue
                seen[gsm] = line
                report.rows.append(SheetRow(line, gsm, url))
    except UnicodeDecodeError as exc:
        raise TfcnnInputError(f"{path} is not UTF-8 text ({exc}).") from exc
    return report


def check_dest(dest: str | os.PathLike[str]) -> Path:
    """The download folder ``dest``, refused before any download when it cannot be one.

    A file (or a path under a file) and a folder this process cannot write in are
    refused with a message naming ``dest``; a missing folder is fine (it is created).
    """
    from .atomic import check_folder

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise TfcnnInputError(
            f"`dest` {dest} is a file, not a folder; give a folder to download into (it is "
            "created if it does not exist)."
        )
    check_folder(dest, f"cannot download into `dest` {dest}", option="dest")
    return dest


# -- verification -------------------------------------------------------------------------


def verify_file(path: Path, kind: Verifier) -> None:
    """Raise DownloadError(retry=True) unless ``path`` holds what ``kind`` says."""
    if kind == "gzip":
        try:
            with gzip.open(path, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except (OSError, EOFError, zlib.error) as exc:
            raise DownloadError(f"corrupt gzip ({exc})") from exc
    elif kind == "zip":
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise DownloadError(f"corrupt zip ({exc})") from exc
        if bad is not None:
            raise DownloadError(f"corrupt zip member {bad!r}")
    elif kind.startswith("table:"):
        column = kind.split(":", 1)[1]
        with path.open("rb") as fh:
            head = fh.read(4096).split(b"\n", 1)[0].decode("latin-1")
        if column not in re.split(r"[\t,]", head.strip()):
            snippet = head[:80].strip()
            raise DownloadError(
                f"not the expected table: first line {snippet!r} has no column {column!r} "
                "(the server may have sent an HTML page instead)"
            )
    elif kind != "none":
        raise ValueError(f"unknown verification {kind!r}")


# -- one file -------------------------------------------------------------------------------

ProgressFn = Callable[[int], None]


def _attempt(
    item: Download, part: Path, timeout: float, advance: ProgressFn, report: Result
) -> None:
    """One HTTP request: append to ``part`` (resuming with Range when it has bytes)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(item.url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our .part is already as long as (or longer than) it
            part.unlink()
            advance(-offset)
            raise DownloadError("stale partial file discarded (HTTP 416)") from exc
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise DownloadError(f"HTTP {exc.code} {exc.reason}", retry=retry) from exc
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"connection failed ({exc})") from exc
    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        if offset and status == 206:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                part.unlink()
                advance(-offset)
                raise DownloadError("server answered a different range; starting over")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
            report.resumed = True
        else:
            if offset:  # server ignored Range: it sends the whole file again
                advance(-offset)
                offset = 0
            total = int(length) if length is not None else None
            mode = "wb"
        received = offset
        try:
            with part.open(mode) as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    advance(len(chunk))
        except (http.client.IncompleteRead, TimeoutError, OSError) as exc:
            raise DownloadError(f"connection dropped after {received:,} bytes ({exc})") from exc
    if total is not None and received != total:
        if received < total:
            raise DownloadError(f"connection dropped after {received:,} of {total:,} bytes")
        part.unlink()
        advance(-received)
        raise DownloadError(f"received {received:,} bytes, more than the {total:,} announced")
    report.size = received


def download_file(
    item: Download,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    force: bool = False,
    advance: ProgressFn | None = None,
) -> Result:
    """Fetch one file to ``item.dest`` (resuming, verifying, retrying); never raises."""
    advance = advance or (lambda n: None)
    result = Result(item, "failed")
    dest = item.dest
    if dest.exists() and not force:
        try:
            verify_file(dest, item.verify)
        except DownloadError as exc:
            result.message = f"{dest} exists but fails verification ({exc}); pass `force`"
            return result
        result.status, result.size = "present", dest.stat().st_size
        return result
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists():  # left by an interrupted run: count it, it will be resumed
        advance(part.stat().st_size)
    for attempt in range(1, retries + 2):
        result.attempts = attempt
        try:
            _attempt(item, part, timeout, advance, result)
            try:
                verify_file(part, item.verify)
            except DownloadError:
                advance(-part.stat().st_size)
                part.unlink()  # corrupt: never resume from it
                raise
            os.replace(part, dest)
            result.status, result.message = "downloaded", ""
            return result
        except DownloadError as exc:
            result.message = str(exc)
            log.info("%s: attempt %d failed: %s", item.url, attempt, exc)
            if not exc.retry or attempt > retries:
                break
            time.sleep(backoff * attempt)
    return result


def download_all(
    items: list[Download],
    workers: int = 4,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    force: bool = False,
    progress: bool = True,
    console=None,
) -> list[Result]:
    """Fetch ``items`` with ``workers`` threads under one progress bar; results in order."""
    if workers < 1:
        raise TfcnnInputError(f"`workers` must be at least 1 (got {workers}).")
    if retries < 0:
        raise TfcnnInputError(f"`retries` must be 0 or more (got {retries}).")
    for folder in sorted({item.dest.parent for item in items}):
        check_dest(folder)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    lock = threading.Lock()
    results: list[Result | None] = [None] * len(items)
    if not progress:

        def run_quiet(i: int) -> None:
            results[i] = download_file(items[i], retries, timeout, backoff, force)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_quiet, range(len(items))))
        return [r for r in results if r is not None]

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True)) as bar:
        files = bar.add_task("downloading", total=len(items))
        bytes_seen = [0]

        def advance(n: int) -> None:
            with lock:
                bytes_seen[0] += n
                bar.update(files, description=f"downloading ({bytes_seen[0] / 1e6:.1f} MB)")

        def run(i: int) -> None:
            results[i] = download_file(items[i], retries, timeout, backoff, force, advance)
            bar.advance(files)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, range(len(items))))
    return [r for r in results if r is not None]


# -- the three datasets ----------------------------------------------------------------------


def atgenexpress_downloads(
    dest: str | os.PathLike[str], sheet: str | os.PathLike[str] | None = None
) -> tuple[list[Download], SheetReport]:
    """One download per usable sample-sheet row: ``DEST/GSMxxxx.CEL.gz`` (sheet order)."""
    from .datasets import resolve_path

    sheet_path = Path(sheet) if sheet is not None else resolve_path("atgenexpress-samples")
    report = read_sample_sheet(sheet_path)
    items = []
    for row in report.rows:
        name = row.url.rsplit("/", 1)[-1]
        verify = "gzip" if name.lower().endswith(".gz") else "none"
        items.append(Download(row.url, Path(dest) / name, verify, row.sample_id))
    return items, report


def extract_zip(path: Path, dest: Path, force: bool = False) -> list[Path]:
    """Extract a verified zip's regular files into ``dest`` (flat; no paths outside it)."""
    from .atomic import atomic_path

    out = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = Path(info.filename).name
            if not name or name.startswith("."):
                continue
            target = dest / name
            if target.exists() and not force:
                out.append(target)
                continue
            with atomic_path(target, force=force) as tmp, zf.open(info) as src:
                with tmp.open("wb") as fh:
                    shutil.copyfileobj(src, fh)
            out.append(target)
    return out
