"""`tfcnn serve`: the web app (Shiny for Python) on a local address."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..cli import console, user_errors
from ..errors import TfcnnInputError


def serve_cmd(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model selected when the page opens (name or directory)."
        ),
    ] = None,
    max_regulators: Annotated[
        int, typer.Option("--max-regulators", help="Most regulators per query.")
    ] = 2_000,
    max_targets: Annotated[int, typer.Option("--max-targets", help="Most targets per query.")] = (
        25_000
    ),
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest ID file accepted, in MB.")
    ] = 5.0,
    max_pairs: Annotated[
        int, typer.Option("--max-pairs", help="Most (regulator, target) pairs per query.")
    ] = 1_000_000,
) -> None:
    """Run the web app: paste or upload gene IDs, get predictions, download them."""
    import uvicorn

    from ..webapp.app import AppSettings, create_app

    if not 0 < port < 65536:
        raise TfcnnInputError(f"--port must be between 1 and 65535 (got {port}).")
    if min(max_regulators, max_targets, max_pairs) < 1 or max_upload_mb <= 0:
        raise TfcnnInputError(
            "--max-regulators, --max-targets, --max-pairs and --max-upload-mb must be > 0."
        )
    settings = AppSettings(
        default_model=model,
        max_regulators=max_regulators,
        max_targets=max_targets,
        max_upload_bytes=int(max_upload_mb * 1_000_000),
        max_pairs=max_pairs,
    )
    app = create_app(settings)
    console.print(
        f"tfcnn web app on [bold]http://{escape(host)}:{port}[/] (Ctrl+C to stop)", highlight=False
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add `tfcnn serve` to the CLI."""
    app.command("serve")(user_errors(serve_cmd))
