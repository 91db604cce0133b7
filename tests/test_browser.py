"""End to end in a real browser: `tfcnn serve` driven by Debian's chromium via Playwright.

The server runs as a subprocess on 127.0.0.1 (a free port) with TFCNN_HOME holding a
tiny model trained here on synthetic data. The test types IDs, runs the query, checks
the table against `tfcnn predict` for the same pairs, downloads the CSV and compares it,
checks that an unknown ID is reported on the page, that 100,000 pasted IDs are refused
with the limit and an over-long paste is cleared (the session going on), and saves a
screenshot (its path is printed; a copy goes to /tmp/tfcnn_webapp.png). The server is
always stopped.

Chromium is never downloaded by Playwright: .ci/run installs Debian's package. Without
it the test fails in CI (CI=true) and is skipped elsewhere.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.predict_helpers import train_synthetic_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_COPY = Path("/tmp/tfcnn_webapp.png")
MODEL = "synthetic-agi"


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    message = (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; "
        ".ci/run does this) to run the browser test."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tfcnn() -> list[str]:
    script = Path(sys.executable).with_name("tfcnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tfcnn"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, env, genes): `tfcnn serve` on a free port with one registered model."""
    _require_browser()
    root = tmp_path_factory.mktemp("browser")
    model_dir = train_synthetic_model(root / "data", agi=True)
    home = root / "home"
    (home / "models").mkdir(parents=True)
    shutil.copytree(model_dir, home / "models" / MODEL)
    env = {**os.environ, "TFCNN_HOME": str(home)}
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [*_tfcnn(), "serve", "--host", "127.0.0.1", "--port", str(port), "--model", MODEL],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 45
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tfcnn serve exited: {(root / 'serve.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tfcnn serve did not answer: {(root / 'serve.log').read_text()}")
            time.sleep(0.3)
        from tfcnn.model.estimator import PairCNN

        yield url, env, PairCNN.load(model_dir).record_.genes
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _paste(page, selector: str, text: str) -> None:
    """What a paste does to a text box: the new value, then input and change events."""
    page.eval_on_selector(
        selector,
        """(el, v) => {
            el.value = v;
            el.dispatchEvent(new Event('input', {bubbles: true}));
            el.dispatchEvent(new Event('change', {bubbles: true}));
        }""",
        text,
    )


def _cli_predict(env, regulators: str, targets: str) -> pd.DataFrame:
    """`tfcnn predict` for the same query (in-process, with the server's TFCNN_HOME)."""
    from typer.testing import CliRunner

    from tfcnn.apps.cli import app

    args = ["predict", "--model", MODEL, "--regulators", regulators, "--targets", targets]
    res = CliRunner().invoke(app, args, env={"TFCNN_HOME": env["TFCNN_HOME"]})
    assert res.exit_code == 0, res.output
    return pd.read_csv(io.StringIO(res.stdout), keep_default_na=False)


def test_query_in_a_real_browser(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, env, genes = served
    regulators = f"{genes[0].lower()}, {genes[1]}\nnot_a_gene"
    targets = " ".join(genes[10:13])
    expected = _cli_predict(env, regulators, targets)
    assert len(expected) == 6

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
            page.goto(url)
            expect(page.locator("#status")).to_contain_text("Type or upload regulator IDs")
            start = tmp_path / "tfcnn_webapp_start.png"
            page.screenshot(path=str(start))
            # An over-large upload is refused with a message, before it is sent.
            page.set_input_files(
                "#regulators_file",
                files=[{"name": "big.txt", "mimeType": "text/plain", "buffer": b"A" * 5_100_000}],
            )
            expect(page.locator("#upload_message")).to_contain_text("files of at most 5.0 MB")
            # 100,000 pasted IDs: refused at once with the limit; the session goes on.
            # (Pasted through the DOM: Playwright's fill types multi-line text far slower.)
            t0 = time.monotonic()
            _paste(page, "#regulators", "\n".join(f"AT{1 + i % 5}G{i:05d}" for i in range(100_000)))
            page.click("#run")
            expect(page.locator("#status_error")).to_contain_text(
                "100,000 regulator IDs given; at most 2,000 regulators are scored per query",
                timeout=15_000,
            )
            print(f"100,000 pasted IDs: refused on the page in {time.monotonic() - t0:.2f} s")
            # Text longer than the server accepts is cleared before it is sent.
            t0 = time.monotonic()
            _paste(page, "#targets", "A" * 4_000_001)
            expect(page.locator("#upload_message")).to_contain_text("at most 4,000,000 are")
            expect(page.locator("#targets")).to_have_value("")
            print(f"4,000,001 pasted characters: cleared in {time.monotonic() - t0:.2f} s")
            page.fill("#regulators", regulators + " <b>bold</b>")
            page.fill("#targets", targets)
            page.click("#run")
            expect(page.locator("#status_summary")).to_contain_text(
                "6 pairs scored: 2 regulator(s) x 3 target(s).", timeout=30_000
            )
            # The table: every pair, in the CLI's order, with the CLI's probabilities.
            rows = page.locator("#results_table tbody tr")
            expect(rows).to_have_count(6)
            headers = page.locator("#results_table thead tr").first.locator("th").all_inner_texts()
            cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(6)]
            shown = pd.DataFrame(cells, columns=[h.strip() for h in headers])
            assert list(shown.regulator) == list(expected.regulator)
            assert list(shown.target) == list(expected.target)
            np.testing.assert_allclose(
                shown.probability.astype(float), expected.probability, atol=5.1e-4
            )
            # The unknown ID is reported on the page.
            expect(page.locator("#unused_ids_list")).to_contain_text("not_a_gene")
            expect(page.locator("#unused_ids_list")).to_contain_text("unknown")
            # Typed text is shown as text, never interpreted as HTML.
            expect(page.locator("#unused_ids_list")).to_contain_text("<b>bold</b>")
            expect(page.locator("#unused_ids_list b")).to_have_count(0)
            # The CSV download is exactly what `tfcnn predict` writes.
            with page.expect_download() as info:
                page.click("#download_csv")
            downloaded = pd.read_csv(info.value.path(), keep_default_na=False)
            pd.testing.assert_frame_equal(downloaded, expected, check_exact=False, rtol=1e-9)
            # Selecting a row draws that pair's profiles.
            rows.first.click()
            expect(page.locator("#pair_plot img")).to_be_visible(timeout=30_000)
            expect(page.locator("#distribution_plot img")).to_be_visible()
            shot = tmp_path / "tfcnn_webapp.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    shutil.copyfile(shot, SCREENSHOT_COPY)
    print(f"screenshots: {start} (first view), {shot} (after a query; copy: {SCREENSHOT_COPY})")
    assert shot.stat().st_size > 10_000


def test_the_page_flags_a_shortcut_regulator_and_shows_the_honest_figure(served):
    """Issue 14: a hub TF against all genes gets its warning; the model's caveat is shown."""
    from playwright.sync_api import expect, sync_playwright

    from tfcnn.inference.predict import Predictor
    from tfcnn.model.registry import resolve_model

    url, env, genes = served
    old = os.environ.get("TFCNN_HOME")
    os.environ["TFCNN_HOME"] = env["TFCNN_HOME"]
    try:
        predictor = Predictor(resolve_model(MODEL), name=MODEL)
    finally:
        if old is None:
            os.environ.pop("TFCNN_HOME")
        else:
            os.environ["TFCNN_HOME"] = old
    tfs = sorted({predictor.model.record_.genes[i] for i in predictor.model.record_.pairs["tf"]})
    table = predictor.predict(tfs, None).table
    rates = table.groupby("regulator").regulator_base_rate.first()
    hub = rates.idxmax()
    assert rates[hub] > 0.5, "the synthetic model has no shortcut TF to show"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(url)
            expect(page.locator("#model_card")).to_contain_text("within-target AUROC")
            expect(page.locator("#model_pooled")).to_contain_text(
                "pooled figures can be earned by recognising TFs or targets alone"
            )
            page.fill("#regulators", hub)
            page.click("#run")
            expect(page.locator("#status_summary")).to_contain_text("pairs scored", timeout=30_000)
            expect(page.locator("#status_warnings")).to_contain_text(
                f"regulator {hub} scores above 0.5 with"
            )
            expect(page.locator("#status_warnings")).to_contain_text("rank its targets at best")
            headers = page.locator("#results_table thead tr").first.locator("th").all_inner_texts()
            assert "rank within regulator (percentile)" in [h.strip() for h in headers]
        finally:
            browser.close()
