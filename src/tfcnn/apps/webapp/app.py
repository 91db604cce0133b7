"""The tfcnn web app (Shiny for Python): paste or upload IDs, get scored pairs.

Started by ``tfcnn serve``; also runnable as ``uvicorn tfcnn.apps.webapp.app:app`` (settings
from TFCNN_SERVE_* variables). All user text reaches the page through htmltools tags,
which escape it; errors become short messages (Shiny's own error text is sanitised), and
uploads larger than the cap are refused in the browser and again by the server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import weakref
from typing import Any

from htmltools import Tag, TagList, tags
from shiny import App, Inputs, Outputs, Session, reactive, render, ui

from ...errors import TfcnnInputError
from .limits import ServerBudget
from .logic import (
    COLOUR_KEY,
    MAX_TEXT_CHARS,
    XLSX_WEB_MAX_ROWS,
    AppSettings,
    DistributionPlots,
    ModelChoice,
    PredictorCache,
    QueryOutcome,
    coverage_text,
    csv_bytes,
    default_choice,
    display_table,
    env_settings,
    figures_text,
    gather_ids,
    legend_items,
    model_choices,
    no_usable_model_hint,
    offers_xlsx,
    pair_figure,
    read_upload,
    run_query,
    shortcut_flags,
    summary_text,
    training_note,
    unused_for_display,
    xlsx_bytes,
)

log = logging.getLogger(__name__)

_CSS = """
.tfcnn-error { color: #a40000; font-weight: 600; white-space: pre-wrap; }
.tfcnn-note { color: #555; font-size: 0.9em; }
.tfcnn-unused td, .tfcnn-unused th { padding: 2px 8px; font-size: 0.9em; }
.tfcnn-model-info { font-size: 0.85em; color: #333; }
.tfcnn-model-info > div { margin-bottom: 0.35em; }
.tfcnn-caveat { background: #fff8e1; border-left: 3px solid #E69F00; padding: 4px 6px; }
.tfcnn-flag { background: #fdecea; border-left: 4px solid #D55E00; padding: 6px 8px;
  margin: 6px 0; font-weight: 600; }
.tfcnn-legend dt { font-weight: 600; } .tfcnn-legend dd { margin: 0 0 4px 1em; }
.tfcnn-legend { font-size: 0.9em; }
/* Plots scale to the page: never wider than the screen (phones). */
.shiny-plot-output img, .tfcnn-plot img, svg { max-width: 100%; height: auto; }
"""

# Refuse over-large files before they are sent (the server refuses them again), and
# pasted text longer than the server accepts (the websocket would drop the session).
_UPLOAD_GUARD_JS = """
document.addEventListener('change', function (ev) {
  var el = ev.target;
  if (!el || el.type !== 'file' || !el.files) return;
  var max = __MAX_UPLOAD__;
  for (var i = 0; i < el.files.length; i++) {
    var f = el.files[i];
    if (f.size > max) {
      ev.stopImmediatePropagation();
      el.value = '';
      var box = document.getElementById('upload_message');
      if (box) {
        box.textContent = 'File "' + f.name + '" is ' + (f.size / 1e6).toFixed(1) +
          ' MB; files of at most ' + (max / 1e6).toFixed(1) + ' MB are accepted.';
      }
      return;
    }
  }
  var box2 = document.getElementById('upload_message');
  if (box2) box2.textContent = '';
}, true);
document.addEventListener('input', function (ev) {
  var el = ev.target;
  if (!el || el.tagName !== 'TEXTAREA') return;
  var maxc = __MAX_CHARS__;
  var n = el.value.length;
  var box = document.getElementById('upload_message');
  if (n <= maxc) {
    if (box && box.textContent.indexOf('The pasted text') === 0) box.textContent = '';
    return;
  }
  ev.stopImmediatePropagation();
  el.value = '';
  el.dispatchEvent(new Event('input', {bubbles: true}));
  if (box) {
    box.textContent = 'The pasted text has ' + n.toLocaleString('en') + ' characters; ' +
      'at most ' + maxc.toLocaleString('en') + ' are accepted, so it was cleared. ' +
      'Split the list, or use tfcnn predict for large runs.';
  }
}, true);
"""


def _guard_js(settings: AppSettings) -> str:
    return _UPLOAD_GUARD_JS.replace("__MAX_UPLOAD__", str(int(settings.max_upload_bytes))).replace(
        "__MAX_CHARS__", str(int(MAX_TEXT_CHARS))
    )


def build_ui(settings: AppSettings, choices: dict[str, str], selected: str | None) -> Tag:
    """The page."""
    sidebar = ui.sidebar(
        ui.input_select("model", "Model", choices=choices, selected=selected),
        ui.output_ui("model_info"),
        ui.input_text_area(
            "regulators",
            "Regulators (TFs)",
            rows=4,
            placeholder="AGI codes, ATH1 probesets or gene symbols (LFY), separated by commas, "
            "spaces or lines",
        ),
        ui.input_file("regulators_file", None, accept=[".txt", ".csv", ".tsv"]),
        ui.input_text_area(
            "targets",
            "Targets (empty = every gene of the model)",
            rows=4,
            placeholder="AGI codes, ATH1 probesets or gene symbols",
        ),
        ui.input_file("targets_file", None, accept=[".txt", ".csv", ".tsv"]),
        tags.div(id="upload_message", class_="tfcnn-error"),
        ui.input_action_link("example", "Fill in example IDs"),
        ui.input_action_button("run", "Predict", class_="btn-primary"),
        tags.p(
            f"At most {settings.max_regulators:,} regulators x {settings.max_targets:,} "
            f"targets and {settings.max_pairs:,} pairs per query; files up to "
            f"{settings.max_upload_bytes / 1e6:.1f} MB.",
            class_="tfcnn-note",
        ),
        width=360,
    )
    return ui.page_sidebar(
        sidebar,
        ui.head_content(tags.style(_CSS), tags.script(_guard_js(settings))),
        ui.output_ui("status"),
        ui.output_ui("unused_ids"),
        ui.output_ui("downloads"),
        ui.output_data_frame("results_table"),
        ui.output_ui("legend"),
        ui.output_ui("plots_panel"),
        title="tfcnn: which TFs regulate which genes?",
        fillable=False,
    )


def upload_root(session: Session) -> str | None:
    """The folder where Shiny stores this session's uploads (None: uploads are refused).

    Shiny keeps it in a private attribute (``FileUploadManager._basedir``, shiny 1.8);
    the live-server tests fail if a Shiny upgrade moves it, and until then every upload
    is refused rather than read from an unchecked path.
    """
    manager = getattr(session, "_file_upload_manager", None)
    root = getattr(manager, "_basedir", None)
    return root if isinstance(root, str) and root else None


def make_server(
    settings: AppSettings,
    cache: PredictorCache,
    choices: list[ModelChoice],
    budget: ServerBudget | None = None,
):
    """The server function for ``settings``, offering ``choices`` (the cache's models)."""
    budget = budget or ServerBudget(settings.max_concurrent, settings.max_pairs_in_memory)
    distribution_plots = DistributionPlots()  # pictures shared by every session

    def server(input: Inputs, output: Outputs, session: Session) -> None:
        current: reactive.Value[QueryOutcome | None] = reactive.value(None)
        message: reactive.Value[str | None] = reactive.value(None)

        @reactive.extended_task
        async def query_task(model_key: str, regs: list[str], tgts: list[str] | None):
            choice = next((c for c in choices if c.key == model_key), None)
            estimate = len(regs) * (len(tgts) if tgts else (choice.n_genes if choice else 0))
            estimate = min(estimate, settings.max_pairs)  # larger queries are refused anyway
            return await asyncio.to_thread(
                budget.run,
                session.id,
                estimate,
                lambda: run_query(
                    cache, model_key, regs, tgts, settings.limits, settings.max_pairs
                ),
                lambda why: QueryOutcome(error=why),
            )

        @reactive.effect
        @reactive.event(input.run)
        def _start() -> None:
            try:
                root = upload_root(session)
                regs = gather_ids(
                    input.regulators(),
                    read_upload(
                        input.regulators_file(), settings.max_upload_bytes, "regulator", root
                    ),
                    settings.max_regulators,
                    "regulator",
                )
                tgts = gather_ids(
                    input.targets(),
                    read_upload(input.targets_file(), settings.max_upload_bytes, "target", root),
                    settings.max_targets,
                    "target",
                )
            except TfcnnInputError as exc:
                message.set(str(exc))
                current.set(None)
                return
            except Exception as exc:  # noqa: BLE001 - a message, never a dead session
                log.exception("reading the query failed")
                message.set(f"internal error ({type(exc).__name__}); the details are in the log.")
                current.set(None)
                return
            message.set(None)
            query_task.invoke(input.model() or "", regs, tgts or None)

        @reactive.effect
        def _collect() -> None:
            status = query_task.status()
            if status == "success":
                current.set(query_task.result())
            elif status == "error":
                current.set(QueryOutcome(error="internal error; the details are in the log."))

        @reactive.effect
        @reactive.event(input.example)
        def _example() -> None:
            try:
                predictor = cache.get(input.model())
                regs, tgts = predictor.example_ids()
            except TfcnnInputError as exc:
                message.set(str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a message, never a dead session
                log.exception("example IDs failed")
                message.set(f"internal error ({type(exc).__name__}); the details are in the log.")
                return
            ui.update_text_area("regulators", value=", ".join(regs))
            ui.update_text_area("targets", value=", ".join(tgts))

        def prediction():
            outcome = current()
            return None if outcome is None else outcome.prediction

        @render.ui
        def model_info():
            key = input.model()
            choice = next((c for c in choices if c.key == key), None)
            if choice is None:
                text = (
                    "Unknown model: choose one of the models listed."
                    if any(c.usable for c in choices)
                    else no_usable_model_hint(choices)
                    or "No model registered yet: run 'make demo' and start 'tfcnn serve' in "
                    "the same folder, or 'tfcnn serve --model DIR'."
                )
                return tags.p(text, class_="tfcnn-error")
            unusable = None
            if not choice.usable:
                others = [c.key for c in choices if c.usable]
                pick = (
                    f"or pick {', '.join(others)}"
                    if others
                    else "or first run 'make demo' and start 'tfcnn serve' in the same folder"
                )
                unusable = tags.div(
                    "This model carries no expression matrix, so the web app cannot score "
                    f"with it: use 'tfcnn predict --model {choice.key} --expression FILE' "
                    f"with a matrix of its {choice.n_samples} samples, {pick}.",
                    class_="tfcnn-error",
                )
            figures = figures_text(choice)
            return tags.div(
                tags.div(choice.description),
                tags.div(
                    f"{choice.origin}; "
                    + (
                        f"scores its {choice.n_genes:,} genes x {choice.n_samples} samples only"
                        if choice.usable
                        else f"no expression matrix (expects {choice.n_samples} samples)"
                    ),
                    id="model_coverage",
                ),
                tags.div(
                    tags.div(tags.strong("Does it read the pair? "), figures["verdict"]),
                    tags.div(tags.strong("Within-target figure: "), figures["honest"]),
                    id="model_card",
                ),
                tags.div(
                    tags.strong("Headline figure: "),
                    figures["headline"],
                    tags.div(figures["caveat"], class_="tfcnn-caveat", id="model_caveat"),
                    id="model_pooled",
                ),
                unusable,
                class_="tfcnn-model-info",
            )

        @render.ui
        def status():
            if query_task.status() == "running":
                return tags.p("Scoring...", class_="tfcnn-note", id="status_running")
            if message() is not None:
                return tags.p(message(), class_="tfcnn-error", id="status_error")
            outcome = current()
            if outcome is None:
                choice = next((c for c in choices if c.key == input.model()), None)
                covered = f"{coverage_text(choice)} " if choice is not None else ""
                return tags.p(
                    f"{covered}Type or upload regulator IDs (and optionally targets), then "
                    "press Predict. 'Fill in example IDs' shows the format.",
                    class_="tfcnn-note",
                    id="status_start",
                )
            if outcome.error is not None:
                return tags.p(outcome.error, class_="tfcnn-error", id="status_error")
            p = outcome.prediction
            flags = shortcut_flags(p)
            memorised = training_note(p)
            # The shortcut warnings are shown as flags; the other notes as they are.
            notes = [tags.li(n) for n in p.notes if not n.startswith("WARNING: regulator")]
            scored_by = next((c for c in choices if c.key == p.model_name), None)
            return TagList(
                tags.p(summary_text(p), id="status_summary"),
                tags.p(
                    tags.strong("Does this model read the pair? "),
                    figures_text(scored_by)["verdict"],
                    " See the model panel for its figures.",
                    class_="tfcnn-note",
                    id="status_model",
                )
                if scored_by is not None
                else None,
                tags.div(*(tags.p(f) for f in flags), class_="tfcnn-flag", id="shortcut_flag")
                if flags
                else None,
                tags.p(memorised, class_="tfcnn-caveat", id="training_note") if memorised else None,
                tags.details(tags.summary("Notes on this query"), tags.ul(*notes))
                if notes
                else None,
            )

        @render.ui
        def unused_ids():
            p = prediction()
            if p is None or not p.issues:
                return None
            shown, more = unused_for_display(p)
            rows = [
                tags.tr(tags.td(i.role), tags.td(i.query_id), tags.td(i.problem), tags.td(i.detail))
                for i in shown
            ]
            where = "the XLSX download" if offers_xlsx(p) else "'tfcnn predict -o file.xlsx'"
            note = (
                tags.p(f"... and {more:,} more; {where} lists them all.", class_="tfcnn-note")
                if more
                else None
            )
            return tags.div(
                tags.strong(f"{len(p.issues):,} ID(s) not used as typed"),
                tags.table(
                    tags.tr(*(tags.th(h) for h in ("role", "ID", "problem", "detail"))),
                    *rows,
                    class_="tfcnn-unused",
                ),
                note,
                id="unused_ids_list",
            )

        @render.ui
        def downloads():
            p = prediction()
            if p is None:
                return None
            if offers_xlsx(p):
                xlsx = ui.download_button("download_xlsx", "Download XLSX")
            else:
                xlsx = tags.span(
                    f"XLSX is offered for tables of at most {XLSX_WEB_MAX_ROWS:,} rows; "
                    "download the CSV.",
                    class_="tfcnn-note",
                )
            return tags.div(ui.download_button("download_csv", "Download CSV"), " ", xlsx)

        # Downloads hold this session's own result only, built from memory (no file on
        # the server), off the event loop so other sessions are not held up.
        @render.download_button(filename="tfcnn_predictions.csv", media_type="text/csv")
        async def download_csv():
            p = prediction()
            if p is not None:
                yield await asyncio.to_thread(csv_bytes, p)

        @render.download_button(
            filename="tfcnn_predictions.xlsx",
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        async def download_xlsx():
            p = prediction()
            if p is not None and offers_xlsx(p):
                yield await asyncio.to_thread(xlsx_bytes, p)

        @render.ui
        def plots_panel():
            # Shown once there are results, so the first view is not two empty boxes; the
            # pair card only once a row is selected (no empty card waiting for a click).
            if prediction() is None:
                return None
            return TagList(
                tags.p(COLOUR_KEY, class_="tfcnn-note", id="colour_key"),
                ui.card(
                    ui.card_header(
                        "This query's probabilities over the model's training distribution"
                    ),
                    ui.output_plot("distribution_plot", height="300px"),
                ),
                ui.output_ui("pair_card"),
            )

        @render.ui
        def legend():
            p = prediction()
            if p is None:
                return None
            items = legend_items(display_table(p.table, rows=1))
            return tags.details(
                tags.summary("What the columns mean"),
                tags.dl(*(x for c, m in items for x in (tags.dt(c), tags.dd(m)))),
                class_="tfcnn-legend",
                id="column_legend",
                open=True,
            )

        @render.data_frame
        def results_table():
            p = prediction()
            if p is None:
                return None
            view = display_table(p.table)
            height = f"{min(440, 100 + 30 * len(view))}px"  # no empty band under short tables
            return render.DataGrid(view, filters=True, selection_mode="row", height=height)

        @render.plot(alt="Query probabilities over the model's training distribution")
        def distribution_plot():
            p = prediction()
            if p is None:
                return None
            predictor = cache.get(p.model_name)  # the model that scored it
            ratio = session.clientdata.pixelratio()
            return distribution_plots.figure(p, predictor.distribution, plot_size(), ratio)

        def plot_size() -> tuple[float | None, float | None]:
            """The current plot output's size on the page, in pixels (phones: narrow)."""
            return session.clientdata.output_width(), session.clientdata.output_height()

        def selected_pair() -> tuple[Any, Any, Any] | None:
            p = prediction()
            if p is None:
                return None
            try:
                rows = results_table.data_view(selected=True)
            except Exception:  # noqa: BLE001 - no table yet
                return None
            if rows is None or len(rows) == 0:
                return None
            r = p.table.iloc[int(rows.index[0])]  # the page's row i is the table's row i
            return r["regulator"], r["target"], float(r["probability"])

        @render.ui
        def pair_card():
            if selected_pair() is None:
                return tags.p(
                    "Select a row of the table to see the pair's two profiles.",
                    class_="tfcnn-note",
                    id="pair_hint",
                )
            return ui.card(
                ui.card_header("Selected pair: the two profiles the model reads"),
                ui.output_plot("pair_plot", height="420px"),
            )

        @render.plot(alt="The selected pair's z-scored profiles")
        def pair_plot():
            sel = selected_pair()
            if sel is None:
                return None
            fig, _ = pair_figure(cache.get(prediction().model_name), *sel, size=plot_size())
            return fig  # a failed explanation is noted in the figure itself

        def _ended() -> None:
            release_data_frame(results_table)
            budget.release(session.id)
            # A session's result sits in reference cycles (Shiny's reactive graph): free
            # it now, or RSS exceeds the server's bound until the collector runs by itself.
            gc.collect()

        session.on_ended(_ended)

    return server


def release_data_frame(renderer: Any) -> int:
    """Let a closed session's data frame (and with it the session) be freed.

    shiny 1.8 caches each ``render.data_frame``'s reactive calcs in class-level
    ``WeakKeyDictionary`` objects keyed by the renderer. The calcs refer back to the
    renderer and its session, so the entries never expire: every session that showed a
    table stayed in memory with its result for the life of the server (measured: +17 MiB
    per closed session for a 100 x 1,000 query). Called when a session ends; returns the
    number of cache entries removed.
    """
    removed = 0
    for klass in type(renderer).__mro__:
        for attr in vars(klass).values():
            for cell in getattr(attr, "__closure__", None) or ():
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if isinstance(value, weakref.WeakKeyDictionary):
                    removed += value.pop(renderer, None) is not None
    vars(renderer).pop("_reactive_calc_method", None)
    return removed


def create_app(
    settings: AppSettings | None = None, choices: list[ModelChoice] | None = None
) -> Any:
    """The ASGI app: the Shiny app wrapped in an upload-size guard.

    ``choices``: the models offered (default: :func:`model_choices` for the settings).
    """
    settings = settings or AppSettings()
    if choices is None:
        choices = model_choices(settings.default_model)
    cache = PredictorCache(choices, settings.max_models)
    server = make_server(settings, cache, choices)
    labels = {c.key: c.label for c in choices}
    selected = default_choice(choices, settings.default_model)
    shiny_app = App(build_ui(settings, labels, selected), server)
    shiny_app.sanitize_errors = True
    shiny_app.sanitize_error_msg = "Something went wrong; the details are in the server's log."
    return UploadLimit(shiny_app, settings.max_upload_bytes)


class UploadLimit:
    """ASGI middleware: refuse upload requests whose body exceeds ``max_bytes`` (413).

    A declared length over the limit is refused at once. Otherwise the body (at most
    ``max_bytes``) is read first and handed to the app only when it fits, so a chunked
    or mis-declared upload is refused the same way, with nothing written.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or ("/upload/" not in scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _reject(send, self.max_bytes)
            return
        parts: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg.get("type") != "http.request":
                return  # the client went away
            parts.append(msg.get("body", b""))
            seen += len(parts[-1])
            if seen > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
            if not msg.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(parts), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


async def _reject(send, max_bytes: int) -> None:
    body = json.dumps({"error": f"file larger than {max_bytes} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _lazy_app():
    try:
        return create_app(env_settings())
    except TfcnnInputError as exc:  # pragma: no cover - reported by uvicorn's loader
        raise SystemExit(f"error: {exc}") from None


def __getattr__(name: str) -> Any:
    # `uvicorn tfcnn.apps.webapp.app:app` builds the app on demand, not on import.
    if name == "app":
        return _lazy_app()
    raise AttributeError(name)
