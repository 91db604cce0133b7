"""A browser-like client of the web app, speaking Shiny's websocket protocol.

Used by the load test (``benchmarks/bench_load.py``) and the server-level tests; the app
itself never imports it. A :class:`ShinySession` does what a browser tab does, message
for message (captured from chromium driving the page):

1. loads the page and the scripts and style sheets it links (HTTP GET);
2. opens ``/websocket/`` and sends ``init`` with the form's inputs and the client data
   of the page's outputs (all visible);
3. for a query, sends the typed IDs (``update``), then a click of Predict;
4. when the results arrive, sends what the data grid sends once drawn (its view of the
   rows) and, the first time, the client data of the outputs inserted with the results
   (plot sizes), so the server draws the distribution plot exactly as for a browser;
5. downloads through the link the server gives (``session/<id>/download/<name>``).

A query is done when the page would be complete: the summary (or an error) and the
distribution plot. Only the ``websockets`` package is needed (a dependency of shiny).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

#: Outputs on the page when it opens (their client data is sent with ``init``).
PAGE_OUTPUTS = ("status", "unused_ids", "downloads", "results_table", "plots_panel", "model_info")
_PLOT_OUTPUTS = {"distribution_plot": 300, "pair_plot": 460}
_INSERTED_OUTPUTS = ("download_csv", "download_xlsx", "pair_note")
_FONT = {
    "families": ["Open Sans", "-apple-system", "Segoe UI", "Roboto", "Arial", "sans-serif"],
    "size": "16px",
}
_ASSET = re.compile(r'(?:src|href)="(lib/[^"]+)"')


class ShinyProtocolError(RuntimeError):
    """The server closed the session, sent an output error, or did not answer in time."""


@dataclass
class QueryResult:
    """What a page shows after one press of Predict."""

    ok: bool
    message: str  # the summary line, or the error shown on the page
    seconds: float  # from the click to the complete page (summary, table and plot)
    seconds_to_table: float  # from the click to the summary and table
    table_rows: int  # rows of the data grid sent to the page
    unused_html: str | None  # the 'IDs not used' block, as sent
    download_paths: dict[str, str] = field(default_factory=dict)


def _text(html: str) -> str:
    """Visible text of a small HTML fragment (tags dropped, entities decoded)."""
    import html as _html

    return _html.unescape(re.sub(r"<[^>]+>", "", html)).strip()


def _selected_option(html: str, select_id: str) -> str:
    """The value a <select> starts with, as the browser reads it (first option by default)."""
    import html as _html

    block = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    if block is None:
        return ""
    options = re.findall(r"<option([^>]*)>", block.group(1))
    values = [re.search(r'value="([^"]*)"', o) for o in options]
    chosen = [v for o, v in zip(options, values, strict=True) if v and "selected" in o]
    first = chosen[0] if chosen else next((v for v in values if v), None)
    return _html.unescape(first.group(1)) if first else ""


class ShinySession:
    """One tab of the app. Use as ``async with ShinySession(url) as s: await s.query(...)``."""

    def __init__(self, base_url: str, timeout: float = 60.0, fetch_assets: bool = True) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.fetch_assets = fetch_assets
        self.session_id: str | None = None
        self.values: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.input_messages: list[dict[str, Any]] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self._tag = 0
        self.closed: str | None = None
        self.bytes_received = 0
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Condition()
        self._clicks: dict[str, int] = {}
        self._plots_bound = False
        self._model: str | None = None

    # -- connection ------------------------------------------------------------------------
    async def __aenter__(self) -> ShinySession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Load the page, connect, send ``init``; wait for the first outputs."""
        page = await asyncio.to_thread(self._get, self.base_url)
        html = page.decode("utf-8", "replace")
        if self.fetch_assets:
            for asset in sorted(set(_ASSET.findall(html))):
                await asyncio.to_thread(self._get, self.base_url + asset)
        self._model = _selected_option(html, "model")
        parts = urllib.parse.urlsplit(self.base_url)
        ws_url = f"ws://{parts.hostname}:{parts.port}{parts.path}websocket/"
        self._ws = await connect(ws_url, max_size=None, compression=None, open_timeout=30)
        self._reader = asyncio.create_task(self._read())
        data: dict[str, Any] = {
            "regulators_file:shiny.file": None,
            "targets_file:shiny.file": None,
            "example:shiny.action": 0,
            "run:shiny.action": 0,
            "model": self._model,
            "regulators": "",
            "targets": "",
        }
        data.update({f".clientdata_output_{o}_hidden": False for o in PAGE_OUTPUTS})
        data.update(
            {
                ".clientdata_pixelratio": 1,
                ".clientdata_url_protocol": "http:",
                ".clientdata_url_hostname": parts.hostname,
                ".clientdata_url_port": str(parts.port),
                ".clientdata_url_pathname": parts.path or "/",
                ".clientdata_url_search": "",
                ".clientdata_url_hash_initial": "",
                ".clientdata_url_hash": "",
                ".clientdata_singletons": "",
            }
        )
        await self._send({"method": "init", "data": data})
        await self.wait_for(lambda: self.session_id is not None and "status" in self.values)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await self._reader
            except Exception:  # noqa: BLE001 - closing anyway
                pass

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.timeout) as r:
            return r.read()

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closed is not None:
            raise ShinyProtocolError(f"session closed: {self.closed}")
        await self._ws.send(json.dumps(message))

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self.bytes_received += len(raw)
                msg = json.loads(raw)
                async with self._changed:
                    self._apply(msg)
                    self._changed.notify_all()
        except ConnectionClosed as exc:
            reason = f"websocket closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            self.closed = reason
        finally:
            if self.closed is None:
                self.closed = "websocket closed"
            async with self._changed:
                self._changed.notify_all()

    def _apply(self, msg: dict[str, Any]) -> None:
        if "config" in msg:
            self.session_id = msg["config"]["sessionId"]
        for name, value in (msg.get("values") or {}).items():
            self.values[name] = value
            self.errors.pop(name, None)
            self.versions[name] = self.versions.get(name, 0) + 1
        for name, value in (msg.get("errors") or {}).items():
            self.errors[name] = value
            self.versions[name] = self.versions.get(name, 0) + 1
        self.input_messages += msg.get("inputMessages") or []
        if isinstance(msg.get("response"), dict):
            self.responses[msg["response"].get("tag")] = msg["response"]

    async def wait_for(self, predicate, timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds; error if the session closes or time runs out."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        async with self._changed:
            while not predicate():
                if self.closed is not None:
                    raise ShinyProtocolError(f"session closed: {self.closed}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ShinyProtocolError("no answer from the server in time")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    pass

    # -- what a user does --------------------------------------------------------------------
    async def set_inputs(self, **values: Any) -> None:
        await self._send({"method": "update", "data": values})

    async def click(self, button: str) -> None:
        self._clicks[button] = self._clicks.get(button, 0) + 1
        await self._send(
            {"method": "update", "data": {f"{button}:shiny.action": self._clicks[button]}}
        )

    async def upload(self, input_id: str, name: str, content: bytes, mime="text/plain") -> int:
        """Upload one file as the browser's file input does; returns the HTTP status."""
        info = [{"name": name, "size": len(content), "type": mime}]
        job = await self._request("uploadInit", [info])
        url = self.base_url + job["uploadUrl"]
        req = urllib.request.Request(url, data=content, method="POST")
        req.add_header("Content-Type", "application/octet-stream")

        def post() -> int:
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code

        status = await asyncio.to_thread(post)
        if status == 200:
            await self._request("uploadEnd", [job["jobId"], input_id])
        return status

    async def _request(self, method: str, args: list[Any]) -> Any:
        """A request/response message (file uploads use them)."""
        self._tag += 1
        tag = self._tag
        await self._send({"method": method, "args": args, "tag": tag})
        await self.wait_for(lambda: tag in self.responses)
        answer = self.responses.pop(tag)
        if answer.get("error"):
            raise ShinyProtocolError(f"{method}: {answer['error']}")
        return answer.get("value")

    async def download(self, name: str) -> tuple[int, bytes]:
        """(HTTP status, body) of a download link the page shows."""
        path = self.values.get(name)
        if not isinstance(path, str):
            raise ShinyProtocolError(f"the page shows no {name} link")
        return await asyncio.to_thread(self.get, path)

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of a GET relative to the app's address."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    async def query(
        self, regulators: str, targets: str = "", timeout: float | None = None
    ) -> QueryResult:
        """Type the IDs, press Predict, and wait for the complete page."""
        await self.set_inputs(regulators=regulators, targets=targets)
        before = dict(self.versions)

        def newer(name: str) -> bool:
            return self.versions.get(name, 0) > before.get(name, 0)

        def settled() -> bool:
            if self.errors.get("status") is not None and newer("status"):
                return True
            html = (self.values.get("status") or {}).get("html", "")
            return newer("status") and ('id="status_summary"' in html or "status_error" in html)

        t0 = time.monotonic()
        await self.click("run")
        await self.wait_for(settled, timeout)
        t_table = time.monotonic() - t0
        if "status" in self.errors:
            raise ShinyProtocolError(f"output error in status: {self.errors['status']}")
        html = self.values["status"]["html"]
        if "status_error" in html:
            return QueryResult(False, _text(html), t_table, t_table, 0, self._unused())
        await self.wait_for(lambda: newer("results_table") and newer("plots_panel"), timeout)
        table = self.values.get("results_table") or {}
        rows = len(((table.get("payload") or table).get("data")) or [])
        await self._after_results(rows)
        await self.wait_for(lambda: newer("distribution_plot"), timeout)
        for name in ("results_table", "distribution_plot"):
            if name in self.errors:
                raise ShinyProtocolError(f"output error in {name}: {self.errors[name]}")
        links = {k: self.values[k] for k in ("download_csv", "download_xlsx") if k in self.values}
        return QueryResult(
            True,
            _text(html),
            time.monotonic() - t0,
            t_table,
            rows,
            self._unused(),
            links,
        )

    def _unused(self) -> str | None:
        value = self.values.get("unused_ids")
        return value.get("html") if isinstance(value, dict) else None

    async def _after_results(self, rows: int) -> None:
        """What the browser sends once the results are drawn (grid view; new outputs)."""
        view = list(range(rows))
        await self.set_inputs(
            results_table_cell_selection={"type": "row", "rows": []},
            results_table_sort=[],
            results_table_column_sort=[],
            results_table_filter=[],
            results_table_column_filter=[],
            results_table_data_view_rows=view,
            results_table_data_view_indices=view,
            results_table_selected_rows=[],
        )
        if self._plots_bound:
            return  # the same client data again: the browser does not resend it
        data: dict[str, Any] = {f".clientdata_output_{o}_hidden": False for o in _INSERTED_OUTPUTS}
        for plot, height in _PLOT_OUTPUTS.items():
            p = f".clientdata_output_{plot}_"
            data.update(
                {
                    p + "hidden": False,
                    p + "width": 958,
                    p + "height": height,
                    p + "bg": "rgb(255, 255, 255)",
                    p + "fg": "rgb(29, 31, 33)",
                    p + "accent": "rgb(0, 123, 194)",
                    p + "font": _FONT,
                }
            )
        await self.set_inputs(**data)
        self._plots_bound = True
