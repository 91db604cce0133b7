"""`tfcnn fetch`: download the study's public inputs (AtGenExpress .cel files, AtRegNet,
the TAIR ATH1 probeset map), resumable and verified; see :mod:`tfcnn.io.fetch`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ...errors import TfcnnInputError
from ..console import as_flags, console, err_console, user_errors
from ..options import ForceOpt

if TYPE_CHECKING:
    from ...io.fetch import Download, Verifier

DestOpt = Annotated[Path, typer.Option("--dest", help="Folder to download into.")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Files downloaded at once.")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries per file after a failure.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Network timeout in seconds.")]
QuietOpt = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]

fetch_app = typer.Typer(
    help="Download the study's public inputs from GEO, AGRIS and TAIR (resumable, verified).",
    no_args_is_help=True,
)


def _report(results, what: str) -> None:
    from ...io.fetch import Result

    failed: list[Result] = [r for r in results if r.status == "failed"]
    done = sum(r.status == "downloaded" for r in results)
    present = sum(r.status == "present" for r in results)
    resumed = sum(r.resumed for r in results if r.status == "downloaded")
    console.print(
        f"{what}: {done} downloaded ({resumed} resumed), {present} already present and "
        f"verified, {len(failed)} failed"
    )
    if failed:
        table = Table(title="Failed downloads (nothing kept under the final name)")
        for col in ("file", "attempts", "reason", "url"):
            table.add_column(col, overflow="fold")
        for r in failed:
            table.add_row(
                escape(r.download.dest.name),
                str(r.attempts),
                escape(as_flags(r.message)),
                escape(r.download.url),
            )
        err_console.print(table)
        raise TfcnnInputError(
            f"{len(failed)} of {len(results)} file(s) failed; run the same command again to "
            "resume (interrupted files continue where they stopped)."
        )


def _check(workers: int, retries: int, timeout: float) -> None:
    if workers < 1 or retries < 0 or not timeout > 0:
        raise TfcnnInputError("--workers must be >= 1, --retries >= 0 and --timeout > 0.")


@fetch_app.command("atgenexpress")
@user_errors
def fetch_atgenexpress(
    dest: DestOpt,
    sheet: Annotated[
        str,
        typer.Option(
            "--sheet",
            help="Sample sheet (columns sample_id, cel_file_ftp); default: the bundled "
            "atgenexpress-samples.",
        ),
    ] = "atgenexpress-samples",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N usable rows (a trial run).")
    ] = None,
    workers: WorkersOpt = 4,
    retries: RetriesOpt = 3,
    timeout: TimeoutOpt = 60.0,
    no_progress: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Download the AtGenExpress .cel files named in the sample sheet from GEO (HTTPS)."""
    from ...io.datasets import resolve_path
    from ...io.fetch import atgenexpress_downloads, check_dest, download_all

    _check(workers, retries, timeout)
    check_dest(dest)
    items, report = atgenexpress_downloads(dest, resolve_path(sheet))
    for msg in report.skipped:
        err_console.print(f"[yellow]skipped[/] {escape(msg)}", highlight=False)
    if not report.rows:
        raise TfcnnInputError(
            f"sample sheet {sheet} has no usable row ({len(report.skipped)} skipped, listed "
            "above); each row needs a GSM sample_id and an NCBI .cel(.gz) URL in cel_file_ftp."
        )
    if limit is not None:
        if limit < 1:
            raise TfcnnInputError(f"--limit must be >= 1 (got {limit}).")
        items = items[:limit]
    console.print(
        f"{len(report.rows)} usable rows in the sample sheet, {len(report.skipped)} skipped; "
        f"fetching {len(items)} file(s) into {escape(str(dest))}"
    )
    results = download_all(
        items, workers, retries, timeout, force=force, progress=not no_progress, console=err_console
    )
    _report(results, "AtGenExpress .cel files")


@fetch_app.command("atregnet")
@user_errors
def fetch_atregnet(
    dest: DestOpt,
    url: Annotated[str, typer.Option("--url", help="Where AGRIS serves AtRegNet.zip.")] = "",
    retries: RetriesOpt = 3,
    timeout: TimeoutOpt = 60.0,
    no_progress: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Download AtRegNet.zip from AGRIS, verify it and extract its table(s)."""
    from ...io.fetch import ATREGNET_URL, extract_zip

    item = _fetch_one(
        url or ATREGNET_URL, "AtRegNet.zip", "zip", "AtRegNet", dest, retries, timeout,
        not no_progress, force,
    )  # fmt: skip
    for path in extract_zip(item.dest, dest, force=force):
        console.print(f"  {escape(str(path))}")


@fetch_app.command("ath1-map")
@user_errors
def fetch_ath1_map(
    dest: DestOpt,
    url: Annotated[
        str, typer.Option("--url", help="Where TAIR serves affy_ATH1_array_elements.")
    ] = "",
    retries: RetriesOpt = 3,
    timeout: TimeoutOpt = 60.0,
    no_progress: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Download TAIR's ATH1-121501 probeset -> AGI table (use it as --id-map)."""
    from ...io.fetch import ATH1_MAP_URL

    item = _fetch_one(
        url or ATH1_MAP_URL, "affy_ATH1_array_elements.txt", "table:array_element_name",
        "ATH1 probeset map", dest, retries, timeout, not no_progress, force,
    )  # fmt: skip
    console.print(f"  {escape(str(item.dest))}")


def _fetch_one(
    url: str,
    default_name: str,
    verify: Verifier,
    label: str,
    dest: Path,
    retries: int,
    timeout: float,
    progress: bool,
    force: bool,
) -> Download:
    """Download one file into ``dest`` (named as in ``url``), verified; report it."""
    from ...io.fetch import Download, check_dest, download_all

    _check(1, retries, timeout)
    check_dest(dest)
    item = Download(url, dest / (url.rsplit("/", 1)[-1] or default_name), verify, label)
    results = download_all(
        [item], 1, retries, timeout, force=force, progress=progress, console=err_console
    )
    _report(results, label)
    return item


def register(app: typer.Typer) -> None:
    """Add `tfcnn fetch ...` to the CLI."""
    app.add_typer(fetch_app, name="fetch")
