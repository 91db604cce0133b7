"""`tfcnn serve`: the web app (Shiny for Python) on a local address."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.markup import escape

from ...errors import TfcnnInputError
from ..console import console, err_console, user_errors


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
    max_concurrent: Annotated[
        int,
        typer.Option(
            "--max-concurrent", min=1, max=64, help="Queries scored at once, server-wide."
        ),
    ] = 2,
    max_pairs_in_memory: Annotated[
        int,
        typer.Option(
            "--max-pairs-in-memory",
            min=1,
            help="Result pairs all sessions may hold at once (about 100 bytes each); queries "
            "beyond it wait, then are refused with a message.",
        ),
    ] = 4_000_000,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Listen on an address other machines can reach. The app has no login: "
            "anyone who reaches the port can query its models.",
        ),
    ] = False,
) -> None:
    """Run the web app: paste or upload gene IDs, get predictions, download them."""
    from ...extras import require_extra

    require_extra("web", "tfcnn serve")  # first: the web extra is optional
    import uvicorn

    from ..webapp.app import AppSettings, create_app
    from ..webapp.logic import model_choices, no_usable_model_hint

    if not 0 < port < 65536:
        raise TfcnnInputError(f"--port must be between 1 and 65535 (got {port}).")
    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise TfcnnInputError(
            f"--host {host} can be reached from other machines, and the web app has no login: "
            "anyone who reaches the port can use it. Keep the default 127.0.0.1 (put a "
            "reverse proxy with authentication in front to share it), or pass --allow-remote "
            "if that is what you want."
        )
    if min(max_regulators, max_targets, max_pairs) < 1:
        raise TfcnnInputError("--max-regulators, --max-targets and --max-pairs must be > 0.")
    if not (math.isfinite(max_upload_mb) and 0 < max_upload_mb <= 1_000):
        raise TfcnnInputError(
            f"--max-upload-mb must be a number in (0, 1000] (got {max_upload_mb})."
        )
    settings = AppSettings(
        default_model=model,
        max_regulators=max_regulators,
        max_targets=max_targets,
        max_upload_bytes=int(max_upload_mb * 1_000_000),
        max_pairs=max_pairs,
        max_concurrent=max_concurrent,
        max_pairs_in_memory=max(max_pairs_in_memory, max_pairs),
    )
    check_port_free(host, port)  # before any work, and before the URL is printed
    choices = model_choices(model)
    app = create_app(settings, choices)
    hint = no_usable_model_hint(choices)
    if hint:
        err_console.print(
            f"[bold yellow]warning:[/] {escape(hint)}", highlight=False, soft_wrap=True
        )
    if remote:
        err_console.print(
            f"[bold yellow]warning:[/] listening on {escape(host)}, reachable from other "
            "machines; the app has no login.",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"tfcnn web app on [bold]http://{escape(host)}:{port}[/] (Ctrl+C to stop)", highlight=False
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def check_port_free(host: str, port: int) -> None:
    """Refuse (before any URL is printed) a port another server already listens on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TfcnnInputError(f"--host {host}: cannot resolve it ({exc.strerror or exc}).") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TfcnnInputError(
                f"port {port} on {host} is in use ({exc.strerror or exc}): another server (an "
                "earlier tfcnn serve?) listens there. Stop it, or choose another --port."
            ) from exc


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is this machine's loopback."""
    import ipaddress
    import socket

    name = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


def register(app: typer.Typer) -> None:
    """Add `tfcnn serve` to the CLI."""
    app.command("serve")(user_errors(serve_cmd))
