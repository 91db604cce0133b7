"""`tfcnn report`: one self-contained HTML page (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TfcnnInputError
from ..io.atomic import write_text
from . import figures, runner
from .protocols import CONTROLS, METHODS
from .study import CONTROL_MARGIN, collect

REPORT_FILE = "report.html"

CSS = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:1em auto;padding:0 .8em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}
.scroll{overflow-x:auto}
th,td{border:1px solid #ccc;padding:2px 4px;text-align:right}
td{white-space:nowrap}
th{background:#f0f0f0} td.l,th.l{text-align:left}
td.warn{background:#ffd6d6;font-weight:bold} td.cnn{background:#e6f0ff}
.warnbox{background:#fff3f3;border-left:5px solid #c00;padding:.5em 1em;margin:.8em 0}
.note{color:#555;font-size:13px} img{max-width:100%} code,pre{background:#f6f6f6}
pre{padding:.6em;white-space:pre-wrap;word-break:break-all}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _ms(s: dict[str, Any]) -> str:
    if s.get("mean") is None:
        return "n/a"
    sd = s.get("sd")
    return f"{s['mean']:.3f}±{sd:.3f}" if sd is not None else f"{s['mean']:.3f}"


def _count(s: dict[str, Any]) -> str:
    """A count over replicates: '17,994' when constant, else 'mean ± sd' to whole pairs."""
    if s.get("mean") is None:
        return "n/a"
    sd = s.get("sd") or 0.0
    return f"{s['mean']:,.0f}" if sd == 0 else f"{s['mean']:,.0f} ± {sd:,.0f}"


def _e(x: Any) -> str:
    return html.escape(str(x))


def _protocol_table(rows: list[dict[str, Any]], metric: str) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in METHODS)
    out = [
        "<div class=scroll><table><tr><th class=l>split</th><th class=l>negatives</th>"
        "<th>replicates</th>"
        f"<th>test pairs</th><th>test TFs</th>{head}</tr>"
    ]
    for r in rows:
        cnn = r["methods"]["cnn"]["auroc"]["mean"]
        cells = []
        for name, _ in METHODS:
            s = r["methods"][name][metric]
            cls = ""
            if name == "cnn":
                cls = " class=cnn"
            elif (
                metric == "auroc"
                and name in CONTROLS
                and s["mean"] is not None
                and cnn is not None
                and s["mean"] >= cnn - CONTROL_MARGIN
            ):
                cls = " class=warn"
            cells.append(f"<td{cls}>{_ms(s)}</td>")
        out.append(
            f"<tr><td class=l>{_e(r['split'])}</td><td class=l>{_e(r['negatives'])}</td>"
            f"<td>{r['replicates']} {_e(r['replicate_kind'])}</td>"
            f"<td>{r['n_test']['mean']:,.0f}</td><td>{r['test_tfs']['mean']:.1f}</td>"
            + "".join(cells)
            + "</tr>"
        )
    out.append("</table></div>")
    return "\n".join(out)


def _rows_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.4f}"
        return _e(v)

    head = "".join(f"<th>{_e(label)}</th>" for _, label in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(r.get(k))}</td>" for k, _ in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(results: str | os.PathLike[str]) -> str:
    """The report's HTML for a results folder (from its finished runs)."""
    results = Path(results)
    s = collect(results)
    settings = s["settings"]
    d = s["data_summary"]
    parts: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tfcnn study report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>tfcnn study report</h1>",
        f"<p class=note>tfcnn {_e(__version__)}; generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from {_e(results.resolve())}.</p>",
    ]
    if s["missing_runs"]:
        parts.append(
            f"<div class=warnbox>{s['missing_runs']} runs of this study are not finished; the "
            "numbers below use the finished ones only. Rerun the study command to complete it."
            "</div>"
        )
    # -- data
    top = d["top_regulator"]
    per_tf = list(d["positives_per_tf"].items())
    spec = d["data"]
    parts += [
        "<h2>Data</h2>",
        "<table>",
        f"<tr><th class=l>expression</th><td class=l>{_e(spec['expression'])}</td></tr>",
        f"<tr><th class=l>known pairs</th><td class=l>{_e(spec['interactions'])}"
        + (f" (evidence: {_e(', '.join(spec['evidence']))})" if spec["evidence"] else "")
        + "</td></tr>",
        f"<tr><th class=l>never used as negatives</th><td class=l>{_e(spec['exclude'] or '-')}"
        "</td></tr>",
        f"<tr><th class=l>genes x samples</th><td class=l>{d['n_genes']:,} x {d['n_samples']}"
        "</td></tr>",
        f"<tr><th class=l>positives</th><td class=l>{d['positives']['kept']:,} from "
        f"{d['n_regulators']} TFs onto {d['distinct_targets']:,} distinct targets "
        f"(of {d['positives']['input_pairs']:,} known pairs)</td></tr>",
        "<tr><th class=l>positives per TF</th><td class=l>median "
        f"{d['median_positives_per_tf']:.0f},"
        f" largest {_e(top['id'])}: {top['positives']:,} ({top['share']:.1%} of positives)"
        "</td></tr></table>",
        "<p class=note>Positives per TF (largest 15): "
        + ", ".join(f"{_e(k)} {v:,}" for k, v in per_tf[:15])
        + (f", and {len(per_tf) - 15} more TFs" if len(per_tf) > 15 else "")
        + ".</p>",
    ]
    # -- protocols
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
        p = settings["protocols"]
        parts += [
            "<h2>Evaluation protocols x baselines (test AUROC, mean ± sd)</h2>",
            f"<p>Each protocol: {p['replicates']} replicates (tf-holdout: grouped {p['replicates']}"
            f"-fold by TF; otherwise seeds {settings['seed']}.."
            f"{settings['seed'] + p['replicates'] - 1},"
            f" redrawing negatives and split), CNN trained {p['epochs']} epochs with the published "
            "architecture. All methods are scored on the same test pairs of each replicate. "
            "Red cells: a control within "
            f"{CONTROL_MARGIN} AUROC of the CNN, or above it.</p>",
            _protocol_table(s["protocols"], "auroc"),
        ]
        if s["warnings"]:
            parts.append(
                "<div class=warnbox><b>Warnings: controls that match the CNN</b><ul>"
                + "".join(f"<li>{_e(w)}</li>" for w in s["warnings"])
                + "</ul></div>"
            )
        else:
            parts.append(
                "<p>No control (TF-only, target-only, target-frequency) came within "
                f"{CONTROL_MARGIN} AUROC of the CNN under any protocol.</p>"
            )
        parts += [
            "<h3>In short: the CNN against the best expression baseline and the best control</h3>",
            _headline(s["protocols"]),
            _img(figures.protocols_figure(s["protocols"]), "AUROC per protocol and method"),
            "<h3>Test AUPRC (mean ± sd)</h3>",
            _protocol_table(s["protocols"], "auprc"),
            "<h3>What each protocol kept</h3>",
            _rows_table(
                [
                    {
                        "split": r["split"],
                        "negatives": r["negatives"],
                        "positives kept": _count(r["positives_kept"]),
                        "training pairs": _count(r["n_train"]),
                        "test pairs": _count(r["n_test"]),
                        "discarded (pair-disjoint)": _count(r["discarded_pair_disjoint"]),
                        "degree-matched shortfall": _count(r["degree_shortfall"]),
                    }
                    for r in s["protocols"]
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
                        "degree-matched shortfall",
                    )
                ],
            ),
            METHOD_NOTES,
        ]
        # -- figures 3 and 4
        parts.append("<h2>Training curves and probability distributions (Figures 3-4)</h2>")
        for split, neg in (("random", "random"), ("tf-holdout", "tf-matched")):
            row = next(
                (r for r in s["protocols"] if r["split"] == split and r["negatives"] == neg), None
            )
            if row is None or not row["runs"]:
                continue
            m = json.loads(
                (results / runner.RUNS_DIR / row["runs"][0] / runner.METRICS_FILE).read_text()
            )
            title = f"split {split}, negatives {neg}, first replicate (run {row['runs'][0]})"
            parts += [
                f"<h3>{_e(title)}</h3>",
                _img(figures.curves_figure(m["history"], title), "training curves"),
                _img(figures.distribution_figure(m["train_distribution"], title), "probabilities"),
            ]
    # -- tuning
    tun = s.get("tuning", {})
    if "grid" in tun and tun["grid"]["rows"]:
        g = tun["grid"]
        parts += [
            "<h2>Architecture grid (Figure 2)</h2>",
            f"<p>{len(g['rows'])} of {g['n_configs']} configurations finished; each trained "
            f"{g['settings']['epochs']} epochs on a seeded subsample of {g['n_train']:,} of the "
            f"{g['n_train_available']:,} training pairs (random split, random negatives: the "
            f"study's protocol), validated on {g['n_validation']:,} pairs; metrics at the last "
            "epoch.</p>",
            _img(figures.grid_figure(g["rows"]), "grid"),
            "<p>Top 10 by validation accuracy:</p>",
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
        parts += [
            "<h2>Regularisation scan (Table 1)</h2>",
            f"<p>{len(g['rows'])} of {g['n_configs']} configurations finished, each on a seeded "
            f"subsample of {g['n_train']:,} training pairs (study's protocol). Top 5 by "
            "validation accuracy:</p>",
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
    # -- explanations (written by tfcnn's explain command)
    if "explain" in s:
        parts.append(_explain_section(results))
    # -- commands
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


def _headline(rows: list[dict[str, Any]]) -> str:
    """Per protocol: CNN AUROC, best non-control baseline, best control, and the margin."""
    labels = dict(METHODS)
    out = []
    for r in rows:
        means = {k: v["auroc"]["mean"] for k, v in r["methods"].items()}
        cnn = means["cnn"]
        base = [(v, k) for k, v in means.items() if v is not None and k != "cnn"]
        ctrl = [(v, k) for v, k in base if k in CONTROLS]
        expr = [(v, k) for v, k in base if k not in CONTROLS]
        bv, bk = max(expr) if expr else (None, None)
        cv, ck = max(ctrl) if ctrl else (None, None)
        out.append(
            {
                "split": r["split"],
                "negatives": r["negatives"],
                "CNN AUROC": f"{cnn:.3f}" if cnn is not None else "n/a",
                "best baseline": f"{labels[bk]} {bv:.3f}" if bk else "n/a",
                "best control": f"{labels[ck]} {cv:.3f}" if ck else "n/a",
                "CNN minus best control": f"{cnn - cv:+.3f}" if ck and cnn is not None else "n/a",
            }
        )
    cols = [
        "split",
        "negatives",
        "CNN AUROC",
        "best baseline",
        "best control",
        "CNN minus best control",
    ]
    return _rows_table(out, [(c, c) for c in cols])


def _explain_section(results: Path) -> str:
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
    out = ["<h2>What the model looks at (explanations)</h2>"]
    for f in figs:
        png = (results / "explain" / str(f["file"])).resolve()
        if not png.is_relative_to((results / "explain").resolve()) or not png.is_file():
            raise TfcnnInputError(f"{path}: figure {f['file']!r} is missing or outside explain/.")
        out.append(_img(png.read_bytes(), str(f.get("caption", ""))))
        out.append(f"<p class=note>{_e(f.get('caption', ''))}</p>")
    return "\n".join(out)


METHOD_NOTES = """
<h3>What the columns are</h3>
<ul class=note>
<li><b>CNN</b>: the published pair CNN trained on the replicate's training split.</li>
<li><b>Pearson r, Spearman rho, |Pearson r|</b>: correlation of the TF's and target's profiles
(no training).</li>
<li><b>logistic regr. on correlations</b>: logistic regression on (r, rho, |r|, |rho|), fit on
the training pairs.</li>
<li><b>GENIE3-style trees</b>: for every gene, scikit-learn ExtraTreesRegressor (max_features
sqrt, seeded) predicts its profile from the profiles of the TFs with known targets; a pair's
score is the TF's feature importance. Unsupervised (labels unused), computed once per dataset.
Pairs whose regulator is not such a TF score 0: with random negatives this rewards recognising
TFs, like the artefact the CNN can exploit.</li>
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
    results: str | os.PathLike[str], force: bool = False, output: str | None = None
) -> Path:
    """Write ``RESULTS/report.html`` (or ``output``); refuses to replace it without force."""
    path = Path(output) if output else Path(results) / REPORT_FILE
    text = build_report(results)
    return write_text(path, text, force=force)
