"""`tfcnn report`: one self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TfcnnInputError
from ..evaluation.evaluate import CONTROLS, HEADLINE, KIND_LABELS, LABELS
from ..io.atomic import check_writable, write_text
from ..io.symbols import SOURCE_NOTE as SYMBOLS_NOTE
from ..io.symbols import symbol_of
from . import figures, runner
from .protocols import METHODS, MODELS
from .study import CONTROL_MARGIN, collect, method_names

REPORT_FILE = "report.html"

CSS = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:1em auto;padding:0 .8em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}
.scroll{overflow-x:auto}
th,td{border:1px solid #ccc;padding:2px 5px;text-align:right;vertical-align:top}
td{white-space:nowrap}
th{background:#f0f0f0} td.l,th.l{text-align:left}
td.cnn,th.cnn{background:#fdf7cf;font-weight:bold}
td.warn{background:#e8e8e8}
.verdict{border-left:6px solid #333;background:#f3f3f3;padding:.5em 1em;margin:.8em 0;
font-size:15px}
.verdict p{margin:.35em 0}
.warnbox{background:#f3f3f3;border-left:5px solid #333;padding:.5em 1em;margin:.8em 0}
.note{color:#555;font-size:13px} img{max-width:100%} code,pre{background:#f6f6f6}
.caption{font-size:13px;max-width:1100px;margin:.2em 0 1.4em 0}
figure{margin:1em 0}
pre{padding:.6em;white-space:pre-wrap;word-break:break-all}
details{margin:.4em 0 1em 0} summary{cursor:pointer;text-decoration:underline}
"""
#: The mark of a cell where a control matches or beats the CNN (explained under Table 1).
MARK = "\u2020"


class _Numbers:
    """Figure and table numbers in the order they appear."""

    def __init__(self) -> None:
        self.figure = 0
        self.table = 0

    def next_figure(self) -> int:
        self.figure += 1
        return self.figure

    def next_table(self) -> int:
        self.table += 1
        return self.table


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(png: bytes, number: int, title: str, caption: str) -> str:
    """A numbered figure: the image, then 'Figure N. Title.' and its caption."""
    heading = html.escape(title, quote=False)
    return (
        f"<figure id=fig{number}>{_img(png, f'Figure {number}: {title}')}"
        f"<figcaption class=caption><b>Figure {number}. {heading}.</b> {caption}"
        "</figcaption></figure>"
    )


def _ms(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "n/a"
    sd = s.get("sd")
    return f"{s['mean']:.3f} ± {sd:.3f}" if sd is not None else f"{s['mean']:.3f}"


def _count(s: dict[str, Any]) -> str:
    """A count over replicates: '17,994' when constant, else 'mean ± sd' to whole pairs."""
    if s.get("mean") is None:
        return "n/a"
    sd = s.get("sd") or 0.0
    return f"{s['mean']:,.0f}" if sd == 0 else f"{s['mean']:,.0f} ± {sd:,.0f}"


def _e(x: Any) -> str:
    return html.escape(str(x))


_AGI = re.compile(r"\bAT[1-5CM]G\d{5}\b", re.IGNORECASE)


def _gene(agi: str) -> str:
    """'AT5G61850 (LFY)': an AGI code with its symbol (bundled AtRegNet names) if known."""
    symbol = symbol_of(agi) if _AGI.fullmatch(agi) else ""
    return f"{agi} ({symbol})" if symbol else agi


def _with_symbols(text: str) -> str:
    """Every AGI code in ``text`` followed by its gene symbol where one is known."""
    return _AGI.sub(lambda m: _gene(m.group()), text)


def _ci(ci: dict[str, Any] | None, signed: bool = False) -> str:
    """'0.512 (0.49-0.53)' or, ``signed``, '+0.012 (-0.01 to +0.03)'."""
    if not ci or ci.get("low") is None:
        return "n/a"
    value = ci.get("auroc", ci.get("difference"))
    if signed:
        return f"{value:+.3f} ({ci['low']:+.3f} to {ci['high']:+.3f})"
    return f"{value:.3f} ({ci['low']:.3f}-{ci['high']:.3f})"


def _marked(cnn: float | None, value: float | None) -> bool:
    return cnn is not None and value is not None and value >= cnn - CONTROL_MARGIN


#: The learned pair models' method names (their rows and columns are shaded).
LEARNED = frozenset(MODELS.values())


def _shown(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The methods of the tables and Figure 1: every baseline and control, and the
    learned models that ran."""
    present = {name for r in rows for name in r["combined"]["methods"]}
    label = dict(METHODS)
    return [(name, label[name]) for name in method_names(present)]


def _model_evaluations(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(method, evaluation with model_ci and versus_best_control) of each learned model of
    a protocol row: the CNN first."""
    c = row["combined"]
    return [("cnn", c), *(c.get("models") or {}).items()]


def _lead_table(rows: list[dict[str, Any]], number: int) -> str:
    """Table 1: per protocol and learned model, its within-target, within-TF and pooled
    AUROC (95% CI), the best control within targets and the model's margin over it."""
    head = (
        "<tr><th class=l>split</th><th class=l>negatives</th><th class=l>replicates</th>"
        "<th>test pairs</th><th>test TFs</th><th class=l>model</th>"
        "<th class=cnn>within-target AUROC (95% CI)</th>"
        "<th>within-TF AUROC (95% CI)</th><th>pooled AUROC (95% CI)</th>"
        "<th class=l>best control within targets</th>"
        "<th>model minus best control, within targets (95% CI)</th></tr>"
    )
    body = []
    label = dict(METHODS)
    for r, name, c in ((row, n, ev) for row in rows for n, ev in _model_evaluations(row)):
        ci = c["model_ci"]
        v = c["versus_best_control"].get(HEADLINE) or {}
        no_margin = v.get("low") is not None and v["low"] <= 0
        control = (
            f"{LABELS.get(v['control'], v['control'])} {v['control_auroc']:.3f}"
            if v.get("control_auroc") is not None
            else "n/a"
        )
        body.append(
            f"<tr><td class=l>{_e(r['split'])}</td><td class=l>{_e(r['negatives'])}</td>"
            f"<td class=l>{r['replicates']} {_e(r['replicate_kind'])}</td>"
            f"<td>{r['test_pairs_total']:,}</td><td>{r['test_tfs_total']:,}</td>"
            f"<td class=l>{_e(label[name])}</td>"
            f"<td class=cnn>{_ci(ci[HEADLINE])}</td><td>{_ci(ci['within_tf'])}</td>"
            f"<td>{_ci(ci['pooled'])}</td><td class=l>{_e(control)}</td>"
            + (
                f"<td class=warn>{MARK} {_ci(v, signed=True)}</td>"
                if no_margin
                else f"<td>{_ci(v, signed=True)}</td>"
            )
            + "</tr>"
        )
    return (
        f"<h3>Table {number}. The learned models under each protocol, with 95% confidence "
        "intervals</h3>"
        f"<div class=scroll><table>{head}{''.join(body)}</table></div>"
    )


def _methods_table(rows: list[dict[str, Any]], kind: str) -> str:
    """Every method's AUROC of one kind on all test pairs of each protocol; a control's
    cell is marked where it comes within CONTROL_MARGIN of the CNN or above."""
    shown = _shown(rows)
    head = "".join(
        f"<th{' class=cnn' if name in LEARNED else ''}>{_e(label)}</th>" for name, label in shown
    )
    out = [
        f"<div class=scroll><table><tr><th class=l>split</th><th class=l>negatives</th>{head}</tr>"
    ]
    for r in rows:
        combined = r["combined"]["methods"]
        cnn = (combined.get("cnn") or {}).get(f"{kind}_auroc")
        cells = []
        for name, _ in shown:
            value = (combined.get(name) or {}).get(f"{kind}_auroc")
            text = "n/a" if value is None else f"{value:.3f}"
            sd = (r["methods"].get(name) or {}).get(f"{kind}_auroc", {}).get("sd")
            if sd is not None and value is not None:
                text += f" <span class=note>±{sd:.3f}</span>"
            if name in LEARNED:
                cells.append(f"<td class=cnn>{text}</td>")
            elif name in CONTROLS and _marked(cnn, value):
                cells.append(f"<td class=warn>{MARK} {text}</td>")
            else:
                cells.append(f"<td>{text}</td>")
        out.append(
            f"<tr><td class=l>{_e(r['split'])}</td><td class=l>{_e(r['negatives'])}</td>"
            + "".join(cells)
            + "</tr>"
        )
    out.append("</table></div>")
    return "\n".join(out)


def _auprc_table(rows: list[dict[str, Any]]) -> str:
    """Per-replicate AUPRC (mean ± sd), within targets and pooled, with chance noted."""
    shown = _shown(rows)
    head = "".join(f"<th>{_e(label)}</th>" for _, label in shown)
    out = [
        "<div class=scroll><table><tr><th class=l>split</th><th class=l>negatives</th>"
        f"<th class=l>AUPRC</th>{head}</tr>"
    ]
    for r in rows:
        for kind in ("within_target", "pooled"):
            cells = "".join(
                f"<td>{_ms((r['methods'].get(name) or {}).get(f'{kind}_auprc') or {})}</td>"
                for name, _ in shown
            )
            out.append(
                f"<tr><td class=l>{_e(r['split'])}</td><td class=l>{_e(r['negatives'])}</td>"
                f"<td class=l>{KIND_LABELS[kind]}</td>{cells}</tr>"
            )
    out.append("</table></div>")
    return "\n".join(out)


def _rows_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain table; text cells left-aligned, numbers right-aligned."""

    def is_text(v: Any) -> bool:
        if v is None or isinstance(v, bool | int | float) or v == "n/a":
            return isinstance(v, bool)
        return not str(v).replace(",", "").replace(" ± ", "").replace(".", "").isdigit()

    def cell(v: Any, left: bool) -> str:
        td = "<td class=l>" if left else "<td>"
        if v is None or (isinstance(v, float) and v != v):
            return f"{td}n/a</td>"
        if isinstance(v, bool):
            return f"{td}{'yes' if v else 'no'}</td>"
        if isinstance(v, int):
            return f"{td}{v:,}</td>"
        if isinstance(v, float):
            return f"{td}{v:.3f}</td>"
        return f"{td}{_e(v)}</td>"

    text_columns = {k for k, _ in columns if any(is_text(r.get(k)) for r in rows)}
    head = "".join(
        f"<th{' class=l' if k in text_columns else ''}>{_e(label)}</th>" for k, label in columns
    )
    body = "".join(
        "<tr>" + "".join(cell(r.get(k), k in text_columns) for k, _ in columns) + "</tr>"
        for r in rows
    )
    return f"<div class=scroll><table><tr>{head}</tr>{body}</table></div>"


def _verdict(lines: list[str], goal: str | None = None) -> str:
    """The verdict box: its lines, then issue 15's goal sentence (when its protocol ran)."""
    if not lines and not goal:
        return ""
    return (
        "<div class=verdict><b>Verdict</b>"
        + "".join(f"<p>{_e(line)}</p>" for line in lines)
        + (f"<p><b>{_e(goal)}</b></p>" if goal else "")
        + "</div>"
    )


def _ceiling_line(ceiling: dict[str, Any] | None) -> str:
    if not ceiling or not ceiling.get("overall"):
        return (
            "<p><b>Ceiling of the labels:</b> not measured (the interactions carry fewer than "
            "two evidence types sharing a TF). On the bundled nitrogen data independent "
            "binding assays agree at AUROC 0.50-0.65 (issue 14; "
            "<code>tfcnn.evaluation.ceiling.assay_agreement</code> measures it).</p>"
        )
    o = ceiling["overall"]
    spans = "; ".join(
        f"{_e(p['predictor'])} -> {_e(p['truth'])} {p['low']:.2f}-{p['high']:.2f} ({p['tfs']} TFs)"
        for p in ceiling["pairs"]
    )
    return (
        "<p><b>Ceiling of the labels.</b> One assay's calls scored as a predictor of "
        "another's, same TF, over all genes: median AUROC "
        f"{o['median']:.2f} (interquartile range {o['q25']:.2f}-{o['q75']:.2f}, "
        f"{o['comparisons']} TF x assay comparisons; grey band in Figure 1). A within-target "
        "AUROC in this range is as informative as a second binding experiment; far above it "
        "under TF hold-out is more likely a leak than a discovery.</p>"
        f"<p class=note>Per assay pair (range over TFs): {spans}. Measured by "
        f"<code>{_e(ceiling.get('measured_by', ''))}</code>.</p>"
    )


def _figure1_caption(rows: list[dict[str, Any]], ceiling: dict[str, Any] | None) -> str:
    """What Figure 1 shows and what to conclude, from the numbers."""
    conclude = _figure1_conclusion(rows)
    band = (
        " Grey band: how well independent binding assays agree (the labels' ceiling)."
        if ceiling and ceiling.get("overall")
        else ""
    )
    learned = [label for name, label in _shown(rows) if name in LEARNED]
    return (
        f"Test AUROC of the learned models ({', '.join(learned)}: shaded rows, bold) and "
        "every baseline and control (rows), "
        "per split (columns) and negatives strategy (colours). Top: within-target AUROC, "
        "pairs compared only with pairs of the same target: no target-level shortcut can "
        "raise it, and no TF-level one either where the negatives pair the same TFs as the "
        "positives (tf-matched, degree-matched). Bottom: pooled AUROC, the figure papers "
        "usually report. Large "
        "dots: all replicates' test pairs together (learned models with their 95% CI, TFs "
        "resampled); small dots: single replicates. Dashed line: chance (0.5)." + band + conclude
    )


def _span(values: list[float]) -> str:
    return (
        f"{min(values):.2f}"
        if max(values) - min(values) < 0.005
        else (f"{min(values):.2f}-{max(values):.2f}")
    )


def _figure1_conclusion(rows: list[dict[str, Any]]) -> str:
    """What Figure 1 says, from its numbers: matched negatives first, random ones after."""

    def within(r: dict[str, Any], name: str) -> float | None:
        return (r["combined"]["methods"].get(name) or {}).get(f"{HEADLINE}_auroc")

    out = []
    matched = [r for r in rows if r["negatives"] != "random" and within(r, "cnn") is not None]
    if matched:
        values = [float(within(r, "cnn") or 0.0) for r in matched]
        open_ci = sum(
            1
            for r in matched
            if ((r["combined"]["versus_best_control"].get(HEADLINE) or {}).get("low") or 0) <= 0
        )
        out.append(
            f"with negatives that pair the positives' own TFs, the CNN's within-target AUROC "
            f"is {_span(values)} (chance 0.5), and its margin over the best control has a 95% "
            f"CI that includes 0 in {open_ci} of these {len(matched)} protocols."
        )
    rand = [r for r in rows if r["negatives"] == "random" and within(r, "tf_only") is not None]
    if rand:
        tf_only = [float(within(r, "tf_only") or 0.0) for r in rand]
        cnn = [float(within(r, "cnn") or 0.0) for r in rand]
        out.append(
            "With random negatives, most negatives' 'TFs' are not TFs, so recognising a TF "
            f"profile pays even within targets: the TF-only control scores {_span(tf_only)} "
            f"there, the CNN {_span(cnn)}."
        )
    if not out:
        return ""
    text = " ".join(out)
    return f" <b>What to conclude:</b> {text[0].upper()}{text[1:]}"


def build_report(results: str | os.PathLike[str], summary: dict[str, Any] | None = None) -> str:
    """The report's HTML for a results folder (from its finished runs, or ``summary``:
    what :func:`.study.collect` returned for it)."""
    results = Path(results)
    s = summary if summary is not None else collect(results)
    settings = s["settings"]
    d = s["data_summary"]
    n = _Numbers()
    parts: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tfcnn study report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>tfcnn study report</h1>",
        _verdict(s.get("verdict") or [], s.get("goal")),
        f"<p class=note>tfcnn {_e(__version__)}; generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from {_e(results.resolve())}. "
        f"Gene symbols beside AGI codes: {_e(SYMBOLS_NOTE)}.</p>",
    ]
    if s["missing_runs"]:
        parts.append(
            f"<div class=warnbox>{s['missing_runs']} runs of this study are not finished; the "
            "numbers below use the finished ones only. Rerun the study command to complete it."
            "</div>"
        )
    seen_errors = set()
    for err in s["protocol_errors"]:
        key = (err["split"], err["negatives"], err["error"])
        if key not in seen_errors:
            seen_errors.add(key)
            parts.append(
                f"<div class=warnbox>Protocol split {_e(err['split'])} with "
                f"{_e(err['negatives'])} negatives could not run on this dataset: "
                f"{_e(err['error'])}</div>"
            )
    if s["protocols"]:
        parts += _protocol_section(s, n)
    parts += _data_section(d)
    if s["protocols"]:
        parts += _protocol_details(s, n)
    parts += _tuning_section(s.get("tuning", {}), n)
    if s["protocols"]:
        parts += _training_section(results, s, n)
    if "explain" in s:
        parts.append(_explain_section(results, n))
    commands = settings.get("commands") or []
    parts += [
        "<h2>Rerun</h2>",
        "<p>These commands recreate this folder (finished runs are reused; the same seeds give "
        "the same numbers on the same machine):</p>",
        "<pre>" + _e("\n".join(commands) or "(no command recorded)") + "</pre>",
        f"<pre>tfcnn report {_e(results)} --force</pre>",
        "<p class=note>Every run's config and metrics: runs/&lt;hash&gt;/config.json and "
        "metrics.json; test-pair scores of every method: runs/&lt;hash&gt;/test_scores.tsv.gz; "
        "all numbers above: study.json.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _protocol_section(s: dict[str, Any], n: _Numbers) -> list[str]:
    """Figure 1, Table 1, the warnings in one sentence, the ceiling line."""
    rows = s["protocols"]
    settings = s["settings"]
    p = settings["protocols"]
    fig = n.next_figure()
    warning = s.get("warning_summary")
    out = [
        _figure(
            figures.protocols_figure(rows, s.get("ceiling"), _shown(rows)),
            fig,
            "Which AUROC survives closing the shortcuts",
            _figure1_caption(rows, s.get("ceiling")),
        ),
        _lead_table(rows, n.next_table()),
        f"<p class=note>Each protocol: {p['replicates']} replicates (tf-holdout: "
        f"{p['replicates']} folds grouped by TF; otherwise seeds {settings['seed']}.."
        f"{settings['seed'] + p['replicates'] - 1}, redrawing negatives and split); the CNN "
        f"is the published architecture trained {p['epochs']} epochs"
        + _two_tower_words(p, rows)
        + ". Figures are computed on "
        "all replicates' test pairs together (pairs of different replicates never compared); "
        "95% CIs from a bootstrap that resamples TFs. Test TFs: distinct TFs with a positive "
        "test pair over all replicates.</p>",
    ]
    if warning:
        detail = "".join(f"<li>{_e(w)}</li>" for w in s["warnings"])
        out.append(
            f"<p><b>Warnings.</b> {_e(warning)} {MARK} marks those cells here and in Tables "
            f"{n.table + 1}-{n.table + 2}."
            + (
                f"<details><summary>the {len(s['warnings'])} warnings in full</summary>"
                f"<ul class=note>{detail}</ul></details>"
                if detail
                else ""
            )
            + "</p>"
        )
    out.append(_ceiling_line(s.get("ceiling")))
    return out


def _two_tower_words(p: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """How the study's two-tower models were trained (empty when none was): settings,
    the epochs whose weights were kept, and the runs that could not use the ranking loss."""
    if "two-tower" not in (p.get("models") or []):
        return ""
    tt = p.get("two_tower") or {}
    runs = [run for r in rows for run in r.get("two_tower") or []]
    kept = sorted(e for run in runs for e in run["best_epochs"])
    bce = sum(1 for run in runs if run.get("note"))
    return (
        f"; the two-tower model (issue 15, docs/pair_model.md) on the same pairs and seed, "
        f"{tt.get('n_seeds', 3)} seeds ensembled, each early-stopped on the validation TFs "
        f"(all validation pairs under a random split) after at most "
        f"{tt.get('max_epochs', p['epochs'])} epochs"
        + (
            f" (weights kept from epoch {kept[len(kept) // 2]} in the median, {kept[0]}-{kept[-1]})"
            if kept
            else ""
        )
        + (
            f"; in {bce} of {len(runs)} runs no negative shared a TF or target with a "
            "positive, so the ranking loss could not train and bce was used"
            if bce
            else ""
        )
    )


def _data_section(d: dict[str, Any]) -> list[str]:
    top = d["top_regulator"]
    per_tf = list(d["positives_per_tf"].items())
    spec = d["data"]
    pool = d.get("negative_pool") or {}
    policy = pool.get("policy") or "-"
    evidence = ", ".join(pool.get("excluded_evidence") or [])
    return [
        "<h2>Data</h2>",
        "<table>",
        f"<tr><th class=l>expression</th><td class=l>{_e(spec['expression'])}</td></tr>",
        f"<tr><th class=l>known pairs</th><td class=l>{_e(spec['interactions'])}"
        + (f" (evidence: {_e(', '.join(spec['evidence']))})" if spec["evidence"] else "")
        + "</td></tr>",
        f"<tr><th class=l>negatives policy</th><td class=l>{_e(policy)}"
        + (f" (evidence kept out: {_e(evidence)})" if evidence else "")
        + (f"; also excluded: {_e(spec['exclude'])}" if spec.get("exclude") else "")
        + "</td></tr>",
        f"<tr><th class=l>genes x samples</th><td class=l>{d['n_genes']:,} x {d['n_samples']}"
        "</td></tr>",
        f"<tr><th class=l>positives</th><td class=l>{d['positives']['kept']:,} from "
        f"{d['n_regulators']} TFs onto {d['distinct_targets']:,} distinct targets "
        f"(of {d['positives']['input_pairs']:,} known pairs)</td></tr>",
        "<tr><th class=l>positives per TF</th><td class=l>median "
        f"{d['median_positives_per_tf']:.0f},"
        f" largest {_e(_gene(top['id']))}: {top['positives']:,} ({top['share']:.1%} of "
        "positives)"
        "</td></tr></table>",
        "<p class=note>Negatives exclude only pairs with the positives' own evidence, so "
        "that no negative is chosen for being \u201cnever bound in any assay\u201d (that "
        "would let binding evidence alone separate the classes). Positives per TF (largest "
        "15): "
        + ", ".join(f"{_e(_gene(k))} {v:,}" for k, v in per_tf[:15])
        + (f", and {len(per_tf) - 15} more TFs" if len(per_tf) > 15 else "")
        + ".</p>",
    ]


def _protocol_details(s: dict[str, Any], n: _Numbers) -> list[str]:
    rows = s["protocols"]
    return [
        "<h2>Every method under every protocol</h2>",
        f"<h3>Table {n.next_table()}. Within-target AUROC (all test pairs; ± sd over "
        "replicates)</h3>",
        _methods_table(rows, HEADLINE),
        f"<h3>Table {n.next_table()}. Pooled AUROC (the study's metric)</h3>",
        _methods_table(rows, "pooled"),
        f"<p class=note>{MARK}: a control (it never sees the TF-target relation) within "
        f"{CONTROL_MARGIN} AUROC of the CNN or above it.</p>",
        f"<h3>Table {n.next_table()}. Within-TF AUROC</h3>",
        _methods_table(rows, "within_tf"),
        f"<h3>Table {n.next_table()}. AUPRC (mean ± sd over replicates; chance is what a random "
        "ranking gets: 0.5 pooled with balanced negatives, higher within small targets, e.g. "
        "0.75 for one positive and one negative; within targets for the learned models only)"
        "</h3>",
        _auprc_table(rows),
        f"<h3>Table {n.next_table()}. What each protocol kept</h3>",
        _rows_table(
            [
                {
                    "split": r["split"],
                    "negatives": r["negatives"],
                    "positives kept": _count(r["positives_kept"]),
                    "training pairs": _count(r["n_train"]),
                    "test pairs": _count(r["n_test"]),
                    "discarded (pair-disjoint)": _count(r["discarded_pair_disjoint"]),
                    "left out (degree-matched balance)": _count(r["degree_dropped"]),
                }
                for r in rows
            ],
            [
                (k, k)
                for k in (
                    "split",
                    "negatives",
                    "positives kept",
                    "training pairs",
                    "test pairs",
                    "discarded (pair-disjoint)",
                    "left out (degree-matched balance)",
                )
            ],
        ),
        METHOD_NOTES,
    ]


def _tuning_section(tun: dict[str, Any], n: _Numbers) -> list[str]:
    out: list[str] = []
    if "grid" in tun and tun["grid"]["rows"]:
        g = tun["grid"]
        accs = [r["val_accuracy"] for r in g["rows"] if r["val_accuracy"] is not None]
        n_val = g["n_validation"] or 0
        mean = sum(accs) / len(accs) if accs else 0.5
        se = (mean * (1 - mean) / n_val) ** 0.5 if n_val else None
        spread = f"{min(accs):.3f}-{max(accs):.3f}" if accs else "n/a"
        caption = (
            f"Validation accuracy of {len(g['rows'])} of {g['n_configs']} configurations "
            "(filters of conv 1 across, conv 2 up; one panel per dense size; dot size and "
            f"colour = accuracy, {spread}). Each trained {g['settings']['epochs']} epochs, one "
            f"seed, on a seeded subsample of {g['n_train']:,} of the "
            f"{g['n_train_available']:,} training pairs, validated on {n_val:,} pairs."
            + (
                f" <b>What to conclude:</b> one seed on {n_val:,} validation pairs has a "
                f"standard error of about {se:.2f} in accuracy, so differences of that size "
                "between dots are noise."
                if se
                else ""
            )
            + " Tuning ran under the study's protocol (random split, random negatives), "
            "where recognising TFs alone scores high: the best configuration here is the "
            "best at that shortcut, not at reading regulation."
        )
        out += [
            "<h2>Tuning</h2>",
            _figure(
                figures.grid_figure(g["rows"]),
                n.next_figure(),
                "Architecture grid (the study's Figure 2)",
                caption,
            ),
            f"<h3>Table {n.next_table()}. Top 10 grid configurations by validation accuracy</h3>",
            _rows_table(
                g["rows"][:10],
                [
                    ("filters_1", "filters conv 1"),
                    ("filters_2", "filters conv 2"),
                    ("units", "dense units"),
                    ("val_accuracy", "val acc"),
                    ("val_loss", "val loss"),
                    ("val_auroc", "val AUROC"),
                ],
            ),
        ]
    if "regularisation" in tun and tun["regularisation"]["rows"]:
        g = tun["regularisation"]
        out += [
            f"<h3>Table {n.next_table()}. Regularisation scan (the study's Table 1): top 5 "
            "by validation accuracy</h3>",
            f"<p class=note>{len(g['rows'])} of {g['n_configs']} configurations finished, "
            f"each on a seeded subsample of {g['n_train']:,} training pairs, one seed, under "
            "the study's protocol (random split, random negatives).</p>",
            _rows_table(
                g["rows"][:5],
                [
                    ("val_accuracy", "val acc"),
                    ("val_loss", "val loss"),
                    ("norm_1", "norm 1"),
                    ("norm_2", "norm 2"),
                    ("dropout_used", "dropout used"),
                    ("rate", "rate"),
                    ("batch_size", "batch size"),
                    ("epochs", "epochs"),
                    ("val_auroc", "val AUROC"),
                ],
            ),
        ]
    return out


#: The protocols drawn in Figures 3-4: the study's, and the strictest ones run.
CURVE_PROTOCOLS = (
    ("random", "random"),
    ("tf-holdout", "degree-matched"),
    ("tf-holdout", "tf-matched"),
    ("pair-disjoint", "degree-matched"),
)


def _training_section(results: Path, s: dict[str, Any], n: _Numbers) -> list[str]:
    """Figures 3-4: training curves (first replicate) and test probabilities (all)."""
    chosen: list[dict[str, Any]] = []
    for split, neg in CURVE_PROTOCOLS:
        row = next(
            (r for r in s["protocols"] if (r["split"], r["negatives"]) == (split, neg)), None
        )
        if row is not None and row["runs"] and len(chosen) < 3:
            chosen.append(row)
    if not chosen:
        return []
    histories = []
    for row in chosen:
        m = json.loads(
            (results / runner.RUNS_DIR / row["runs"][0] / runner.METRICS_FILE).read_text()
        )
        histories.append((f"{row['split']} split, {row['negatives']} negatives", m["history"]))
    names = "; ".join(t for t, _ in histories)
    return [
        "<h2>Training and predicted probabilities</h2>",
        _figure(
            figures.curves_figure(histories),
            n.next_figure(),
            "Training curves (the study's Figure 3)",
            f"Accuracy (top) and loss (bottom) per epoch on training and validation pairs, "
            f"first replicate of each protocol ({_e(names)}). Each row shares its y-axis; "
            "dashed lines: chance (accuracy 0.5, loss ln 2 = 0.693). <b>What to conclude:</b> "
            "validation accuracy that stays near the chance line has learnt nothing that "
            "carries over to new pairs, however the training curve rises.",
        ),
        _figure(
            figures.distribution_figure(
                [
                    (f"{r['split']} split, {r['negatives']} negatives", r["cnn_test_distribution"])
                    for r in chosen
                ]
            ),
            n.next_figure(),
            "The CNN's predicted probabilities on test pairs (the study's Figure 4)",
            "Counts of test pairs (all replicates; log scale) per predicted probability, "
            "positives and negatives as outlines. The study drew this on its training pairs, "
            "which shows memorisation, not prediction. <b>What to conclude:</b> where the two "
            "outlines overlap, the score does not separate regulated from other pairs.",
        ),
    ]


def _elbow(explained: list[float]) -> int | None:
    """The component k after which the explained variance drops clearly (the drop from
    k to k+1 at least twice every later one), or None: no elbow."""
    ev = [float(v) for v in explained]
    drops = [a - b for a, b in zip(ev, ev[1:], strict=False)]
    for k in range(len(drops) - 1):
        if drops[k] > 0 and all(drops[k] >= 2 * d for d in drops[k + 1 :]):
            return k + 1
    return None


def _explain_section(results: Path, n: _Numbers) -> str:
    """Figure 5: what the model looks at, with the facts that say how much it means."""
    path = results / "explain" / "explain.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        figs = meta["figures"]
        assert isinstance(figs, list)
    except (OSError, json.JSONDecodeError, KeyError, AssertionError) as exc:
        raise TfcnnInputError(
            f"{path} is not a valid explanation index ({exc}); expected "
            '{"figures": [{"file": ..., "caption": ...}]}.'
        ) from exc
    number = n.next_figure()
    out = ["<h2>What the model looks at (explanations)</h2>"]
    source = meta.get("source") or {}
    if source:
        out.append(
            f"<p>Explained: model <code>{_e(source.get('model', '?'))}</code>, the positive "
            f"pairs of the {_e(source.get('split', '?'))} split of "
            f"<code>{_e(source.get('pairs', '?'))}</code>"
            + (
                ", with as many negatives of that split as the control"
                if (meta.get("control") or {}).get("negatives")
                else ""
            )
            + ".</p>"
        )
    out += _explain_facts(meta)
    for i, f in enumerate(figs):
        png = (results / "explain" / str(f["file"])).resolve()
        if not png.is_relative_to((results / "explain").resolve()) or not png.is_file():
            raise TfcnnInputError(f"{path}: figure {f['file']!r} is missing or outside explain/.")
        caption = _with_symbols(str(f.get("caption", "")))
        if f["file"] == "scree.png":
            caption = _scree_caption(meta)
        label = f"{number}{chr(ord('a') + i)}" if len(figs) > 1 else str(number)
        out.append(
            f"<figure>{_img(png.read_bytes(), f'Figure {label}')}<figcaption class=caption>"
            f"<b>Figure {label}.</b> {_e(caption)}</figcaption></figure>"
        )
    out.append(
        "<p class=note>Sample groups in the bundled nitrogen compendium: SS_* are "
        "steady-state conditions, TS_* time-series samples (consecutive columns of one "
        "series). A window that spans two series joins samples that were never measured "
        "together; the explanation figures do not mark series boundaries yet.</p>"
    )
    return "\n".join(out)


def _scree_caption(meta: dict[str, Any]) -> str:
    ev = meta.get("explained_variance") or []
    k = (meta.get("method") or {}).get("k")
    shares = ", ".join(f"PC{i + 1} {v:.0%}" for i, v in enumerate(ev[:4]))
    elbow = _elbow(ev)
    where = (
        f"the variance drops clearly after component {elbow}"
        if elbow
        else f"there is no elbow, so k = {k} clusters is a choice, not a finding"
    )
    return (
        "PCA scree of the resampled windows (TF and target concatenated): share of variance "
        f"per component ({shares}); {where}."
    )


def _explain_facts(meta: dict[str, Any]) -> list[str]:
    """The clusters' mean-profile r beside the median per-pair r, and the negatives control."""
    out = []
    clusters = meta.get("clusters") or []
    if clusters:
        out.append(
            _rows_table(
                [
                    {
                        "cluster": c.get("cluster"),
                        "pairs": c.get("n_pairs"),
                        "r of the mean profiles": c.get("mean_profile_r"),
                        "median per-pair r (in window)": c.get("median_pair_r"),
                        "share of pairs with r > 0": c.get("fraction_pairs_r_positive"),
                    }
                    for c in clusters
                ],
                [
                    (k, k)
                    for k in (
                        "cluster",
                        "pairs",
                        "r of the mean profiles",
                        "median per-pair r (in window)",
                        "share of pairs with r > 0",
                    )
                ],
            )
        )
        out.append(
            "<p class=note>The r of a cluster's mean profiles averages away each pair's "
            "noise and is always larger than what a single pair shows: read the median "
            "per-pair r.</p>"
        )
    control = meta.get("control") or {}
    pos, neg = control.get("positives"), control.get("negatives")
    if pos and neg:
        out.append(
            "<p><b>Control:</b> inside the model's windows, the TF-target correlation of "
            f"positive pairs has median r {pos['median_r']:.2f} ({pos['fraction_r_positive']:.0%}"
            f" positive, {pos['n']:,} pairs); of negative pairs {neg['median_r']:.2f} "
            f"({neg['fraction_r_positive']:.0%} positive, {neg['n']:,} pairs). A window finds "
            "about this much correlation without any regulation.</p>"
        )
    elif pos:
        out.append(
            f"<p>Inside the windows, positives' median r is {pos['median_r']:.2f}; no "
            "negatives were explained, so there is no control for it.</p>"
        )
    return out


METHOD_NOTES = """
<h3>What the columns are</h3>
<ul class=note>
<li><b>CNN</b>: the published pair CNN trained on the replicate's training split.</li>
<li><b>two-tower model</b> (when run): a tower per profile and an interaction head
(tfcnn.model.two_tower.TwoTower, ranking loss, a seed ensemble), trained on the same split
with the same seed, early-stopped on the validation TFs.</li>
<li><b>Pearson r, Spearman rho, |Pearson r|</b>: correlation of the TF's and target's profiles
(no training).</li>
<li><b>logistic regr. on correlations</b>: logistic regression on (r, rho, |r|, |rho|), fit on
the training pairs.</li>
<li><b>GENIE3-style trees</b>: for every gene, scikit-learn ExtraTreesRegressor (max_features
sqrt, seeded) predicts its profile from the profiles of the TFs with known targets; a pair's
score is the TF's feature importance. Unsupervised (labels unused), computed once per dataset.
Pairs whose regulator is not such a TF score 0: with random negatives this rewards recognising
TFs, like the artefact the CNN can exploit.</li>
<li><b>TF-neighbour transfer</b> (in runs of this version on): no training; a pair's score is
the TF's mean Pearson r with the target's known regulators in the training split minus its
mean r with the target's known non-regulators. It reads the pair relation only (TFs with
similar profiles share targets), so it is the yardstick for a pair model under TF hold-out:
a model that does no better has learned no more than this. It is exactly 0.5 where test
targets have no known regulator in training (pair-disjoint splits).</li>
<li><b>TF-only / target-only control</b>: a small MLP (scikit-learn, 32 hidden units, seeded)
on the TF's profile alone / the target's profile alone, fit on the training pairs.</li>
<li><b>target-frequency control</b>: how often the target was a positive's target in
training; it ignores expression.</li>
</ul>
<p class=note>Controls cannot read the TF/target relation. When one matches the CNN, the CNN's
number measures recognisable genes (which TFs have many targets, which genes are hub targets),
not regulation.</p>
"""


def write_report(
    results: str | os.PathLike[str],
    force: bool = False,
    output: str | None = None,
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write ``RESULTS/report.html`` (or ``output``); refuses to replace it without force.

    ``summary``: what :func:`.study.collect` returned for ``results`` (not recomputed)."""
    path = Path(output) if output else Path(results) / REPORT_FILE
    check_writable(path, force)  # before the (slower) evaluation
    text = build_report(results, summary)
    return write_text(path, text, force=force)
