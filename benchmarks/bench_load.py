"""Load test of the web app (`make bench`): concurrent sessions against `tfcnn serve`.

Starts `tfcnn serve` on 127.0.0.1 (a free port) with a model trained here on the bundled
nitrogen compendium (real data: the demo's tf-holdout / tf-matched protocol, seed 0),
then runs SESSIONS concurrent sessions of QUERIES queries each (default 20 x 10 of
100 regulators x 1,000 targets). The default scenario is users: sessions arrive evenly
over the first 10 s (--ramp), and each reads its result for 2-6 s (--think, --think-max;
uniform, seeded) before its next query. `--think 0 --think-max 0 --ramp 0` is the
saturation test: all sessions at once, each query sent as soon as the page of the
previous one is complete; its latency is the queue behind the other 19 sessions, and its
throughput is the server's capacity. New queries start only in the first --duration
seconds (default 90), and the load phase is cut off at 120 s whatever happens, so the
test stops by itself within 2 minutes.

Each session goes through the real server path a browser uses: it loads the page and its
assets over HTTP, then speaks Shiny's websocket protocol message for message as chromium
does (`tests/wsclient.py`, captured from the real page): typed IDs, the Predict
click, the data grid's view of the rows and the plots' client data. A query is done when
the page is complete: the summary, the table (5,000 rows) and the distribution plot.
Chromium itself is not used: measured on this machine, a chromium page used 0.46
CPU-seconds per query (page load included), more than the server's 0.37 s, so 20 pages
on the same 2 cores would measure the browsers as much as the server.

Checked for every query: the page shows "100,000 pairs scored: 100 regulator(s) x 1,000
target(s)" and a 5,000-row table; at the end each session downloads the CSV and checks
it holds every pair. Anything else (an error message, an output error, a closed
websocket, no answer within the limit, a traceback in the server's log) is an error.

Printed: throughput (queries/s, pairs/s), latency per query (p50/p95/max, to the
complete page and to the table), errors, the server's CPU use and its RSS (sampled from
/proc/<pid>/status every 0.2 s: idle, after a warm-up query, peak, end), the machine's
load and the share of CPU used by other processes; then the goal lines. The JSON goes
to .bench/load.json (--output). Exit status 1 only when the harness itself fails (the
server does not start, the model cannot be trained); unmet goals are printed as NOT met.

--quick: 3 sessions x 2 queries of 20 x 200, the model fitted for 1 epoch on 2,048 of
its training pairs; a smoke test whose numbers mean nothing.

Then the BOUNDED scenario (issue 12, #6/#7: the server-wide bound of
tfcnn.apps.webapp.limits): a second `tfcnn serve` with a SYNTHETIC model of 25,000 genes
(random profiles, 131 samples, fitted 1 epoch on 2,048 random pairs: its scores mean
nothing, only its size matters) and `--max-pairs 1000000 --max-concurrent 2
--max-pairs-in-memory 4000000`. Eight sessions each ask the largest allowed query
(40 regulators x 25,000 targets) at the same moment and keep their result open until
every session has its answer (the worst case for memory: held results count against the
bound), then all close. Printed: peak server RSS against a bound derived from the
settings, queries served, queued and refused (with the messages), RSS after all closed.
The bound: with at most K = max_pairs_in_memory / max_pairs queries held or scoring at
once, of which at most max_concurrent scoring,

    bound = base + sessions x session_1 + max_concurrent x peak_1
                 + (K - max_concurrent) x held_1

where base is the RSS with the model loaded, peak_1 / held_1 how much one lone query of
the largest size raised RSS at most / once answered and drawn (measured first, in the
same server), and session_1 what an open session costs before its query (measured when
the sessions open). `--bounded-only` runs only this scenario, `--skip-bounded` only the
first. With --quick: 2,000 genes, 3 sessions of 10 x 2,000 pairs, --max-concurrent 1,
--max-pairs-in-memory 40,000, and sessions close as soon as they are answered (so the
third is queued, not refused after the 30-s wait).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from machine import busy_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "nitrogen-tf-holdout"
HARD_STOP_S = 120.0
THINK_SEED = 20190102
GOAL_P95_S = 5.0
#: Memory is called stable when the peak RSS of the load's second half is at most this much
#: above RSS at its midpoint (both with every session still open).
STABLE_GROWTH = 0.10
STABLE_SLACK_MIB = 20.0


@dataclass
class QueryRecord:
    session: int
    index: int
    started: float  # seconds since the load phase began
    seconds: float | None  # to the complete page; None when it failed
    seconds_to_table: float | None
    error: str | None


@dataclass
class RssSampler:
    """VmRSS of a process, sampled in a thread."""

    pid: int
    interval: float = 0.2
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, MiB)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.rss_mib()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def at(self, t: float) -> float | None:
        """The last sample taken at or before monotonic time ``t``."""
        before = [rss for when, rss in self.samples if when <= t]
        return before[-1] if before else None

    def peak(self, t0: float, t1: float) -> float | None:
        inside = [rss for when, rss in self.samples if t0 <= when <= t1]
        return max(inside) if inside else None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tfcnn() -> list[str]:
    script = Path(sys.executable).with_name("tfcnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tfcnn"]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]  # nearest rank


def train_model(home: Path, epochs: int, quick: bool) -> Path:
    """The demo's tf-holdout / tf-matched model on the bundled nitrogen data, registered.

    With ``quick``, the same network fitted for 1 epoch on the first 2,048 training pairs
    only (a smoke test: it takes a second, and what it learned does not matter here).
    """
    import numpy as np

    from tfcnn import api
    from tfcnn.evaluation.metrics import probability_distribution
    from tfcnn.model import PairCNN, TrainingRecord
    from tfcnn.model.registry import register_model
    from tfcnn.study.demo import DEMO_EVIDENCE

    edges = api.load_interactions("nitrogen-edges")  # read once: positives and exclusions
    pairs = api.build_pairs(
        "nitrogen-expression",
        edges,
        evidence=list(DEMO_EVIDENCE),
        exclude=edges,
        negatives="tf-matched",
        split="tf-holdout",
        seed=0,
    )
    folder = home.parent / "model"
    if not quick:
        api.train(pairs, output=folder, seed=0, epochs=epochs)
    else:
        x, y = pairs.arrays("train")
        pick = np.random.default_rng(0).permutation(len(y))[:2048]
        model = PairCNN(seed=0, epochs=1).fit(x[pick], y[pick])
        model.record_ = TrainingRecord(
            genes=list(pairs.genes),
            samples=list(pairs.samples),
            zscores=pairs.zscores,
            data=pairs.summary(),
            training_distribution=probability_distribution(
                y[pick], model.predict_proba(x[pick])[:, 1]
            ),
        )
        model.save(folder)
    return register_model(folder, MODEL_NAME)


def regulator_pool(genes: list[str]) -> list[str]:
    """The compendium's TFs (bundled 'nitrogen-tfs') that are genes of the model."""
    import pandas as pd

    from tfcnn.io.datasets import resolve_path

    tfs = pd.read_csv(resolve_path("nitrogen-tfs"), sep="\t", header=None)[0]
    return sorted({str(t).strip().strip('"').upper() for t in tfs} & set(genes))


def query_ids(
    genes: list[str], tf_pool: list[str], n_reg: int, n_tgt: int, seed: int
) -> tuple[str, str]:
    """A query as a user would paste it: TFs of the compendium, then other genes."""
    rng = random.Random(seed)
    regs = rng.sample(tf_pool, n_reg)
    chosen = set(regs)
    tgts = rng.sample([g for g in genes if g not in chosen], n_tgt)
    return ", ".join(regs), "\n".join(tgts)


class Server:
    """`tfcnn serve` in a subprocess; stopped on exit."""

    def __init__(
        self, home: Path, log_path: Path, model: str = MODEL_NAME, extra: list[str] | None = None
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "TFCNN_HOME": str(home)}
        cmd = [*_tfcnn(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--model", model, *(extra or [])],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tfcnn serve exited:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tfcnn serve did not answer:\n{self.log_path.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


async def run_sessions(args, url: str, queries: list[list[tuple[str, str]]], expect) -> dict:
    """All sessions concurrently; returns the records and timing marks."""
    sys.path.insert(0, str(ROOT))  # the websocket client lives with the tests
    from tests.wsclient import ShinySession

    records: list[QueryRecord] = []
    downloads: list[dict] = []
    session_errors: list[str] = []
    t0 = time.monotonic()
    start_until = t0 + args.duration
    hard_stop = t0 + HARD_STOP_S
    summary, table_rows, csv_lines = expect

    async def one(i: int) -> None:
        think = random.Random(THINK_SEED + i)
        if args.ramp > 0:  # users arrive one after another, evenly over the ramp
            await asyncio.sleep(i * args.ramp / args.sessions)
        session = ShinySession(url, timeout=max(1.0, hard_stop - time.monotonic()))
        try:
            await session.open()
        except Exception as exc:  # noqa: BLE001 - every failure is counted, not raised
            session_errors.append(f"session {i}: could not open: {type(exc).__name__}: {exc}")
            await session.close()
            return
        try:
            done = 0
            for q, (regs, tgts) in enumerate(queries[i]):
                if q and args.think_max > 0:  # the user reads the result first
                    await asyncio.sleep(think.uniform(args.think, args.think_max))
                if time.monotonic() >= start_until:
                    break
                started = time.monotonic() - t0
                try:
                    res = await session.query(regs, tgts, timeout=hard_stop - time.monotonic())
                except Exception as exc:  # noqa: BLE001
                    why = f"{type(exc).__name__}: {exc}"
                    records.append(QueryRecord(i, q, started, None, None, why))
                    if session.closed is not None:
                        break
                    continue
                error = None
                if not res.ok:
                    error = f"the page shows an error: {res.message}"
                elif not res.message.startswith(summary) or res.table_rows != table_rows:
                    error = f"unexpected result: {res.message!r}, {res.table_rows} rows shown"
                if error:
                    records.append(QueryRecord(i, q, started, None, None, error))
                else:
                    done += 1
                    records.append(
                        QueryRecord(i, q, started, res.seconds, res.seconds_to_table, None)
                    )
            if done and time.monotonic() < hard_stop - 5:
                t = time.monotonic()
                try:
                    status, body = await session.download("download_csv")
                except Exception as exc:  # noqa: BLE001
                    status, body = f"failed ({type(exc).__name__}: {exc})", b""
                lines = body.count(b"\n")
                ok = status == 200 and lines == csv_lines
                downloads.append(
                    {
                        "session": i,
                        "status": status,
                        "lines": lines,
                        "seconds": time.monotonic() - t,
                    }
                )
                if not ok:
                    session_errors.append(
                        f"session {i}: CSV download: HTTP {status}, {lines} lines "
                        f"(expected {csv_lines})"
                    )
        finally:
            await session.close()

    tasks = [asyncio.create_task(one(i)) for i in range(args.sessions)]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, hard_stop - time.monotonic()))
    for task in pending:
        task.cancel()
    if pending:
        session_errors.append(
            f"{len(pending)} session(s) still running at the {HARD_STOP_S:.0f}-s stop"
        )
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            exc = task.exception()
            session_errors.append(f"harness: {type(exc).__name__}: {exc}")
    return {
        "records": records,
        "downloads": downloads,
        "session_errors": session_errors,
        "t0": t0,
        "t_end": time.monotonic(),
    }


async def warm_up(url: str, regs: str, tgts: str) -> float:
    """One query (loads the model into the server) before the measured load."""
    sys.path.insert(0, str(ROOT))  # the websocket client lives with the tests
    from tests.wsclient import ShinySession

    async with ShinySession(url, timeout=120) as s:
        res = await s.query(regs, tgts)
    if not res.ok:
        raise RuntimeError(f"warm-up query failed: {res.message}")
    return res.seconds


# -- the bounded scenario ------------------------------------------------------------------
BOUNDED_MODEL = "synthetic-25k"
#: Seconds the server needs to settle after a change (RSS sampled every 0.2 s).
BOUNDED_SETTLE_S = 2.0


@dataclass(frozen=True)
class BoundedPlan:
    """The bounded scenario's size and the server's bounds."""

    genes: int
    samples: int
    regulators: int
    sessions: int
    max_pairs: int
    max_pairs_in_memory: int
    max_concurrent: int
    hold: bool  # sessions keep their result until every session is answered

    @property
    def pairs(self) -> int:
        return self.regulators * self.genes

    @property
    def most_at_once(self) -> int:
        """K: queries of the largest size held or scoring at once, at most."""
        return self.max_pairs_in_memory // self.max_pairs

    def serve_args(self) -> list[str]:
        return [
            *("--max-pairs", str(self.max_pairs), "--max-targets", str(self.genes)),
            *("--max-concurrent", str(self.max_concurrent)),
            *("--max-pairs-in-memory", str(self.max_pairs_in_memory)),
        ]


def bounded_plan(quick: bool) -> BoundedPlan:
    if quick:
        return BoundedPlan(2_000, 16, 10, 3, 20_000, 40_000, 1, hold=False)
    return BoundedPlan(25_000, 131, 40, 8, 1_000_000, 4_000_000, 2, hold=True)


def synthetic_model(home: Path, plan: BoundedPlan) -> list[str]:
    """A registered model of ``plan.genes`` SYNTHETIC genes; its gene IDs.

    Random z-scored profiles; the network is fitted for 1 epoch on 2,048 random pairs
    with random labels. Only its size matters here: what it scores means nothing.
    """
    import numpy as np

    from tfcnn.evaluation.metrics import probability_distribution
    from tfcnn.model import PairCNN, TrainingRecord
    from tfcnn.model.registry import register_model

    rng = np.random.default_rng(0)
    z = rng.standard_normal((plan.genes, plan.samples))
    z = ((z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)).astype(np.float32)
    genes = [f"synthetic_gene_{i:05d}" for i in range(plan.genes)]
    pick = rng.integers(0, plan.genes, size=(2048, 2))
    x, y = z[pick], rng.integers(0, 2, 2048)
    model = PairCNN(seed=0, epochs=1).fit(x, y)
    model.record_ = TrainingRecord(
        genes=genes,
        samples=[f"synthetic_sample_{j}" for j in range(plan.samples)],
        zscores=z,
        data={"synthetic": True, "note": "random profiles and labels (load benchmark)"},
        training_distribution=probability_distribution(y, model.predict_proba(x)[:, 1]),
    )
    folder = home.parent / "synthetic_model"
    model.save(folder)
    register_model(folder, BOUNDED_MODEL)
    return genes


async def bounded_load(url: str, plan: BoundedPlan, genes: list[str], marks: dict) -> dict:
    """Warm-up, one lone query (calibration), then every session at once; timing marks."""
    sys.path.insert(0, str(ROOT))  # the websocket client lives with the tests
    from tests.wsclient import ShinySession

    targets = "\n".join(genes)
    rng = random.Random(20190103)
    timeout = 240.0

    def regulators() -> str:
        return ", ".join(rng.sample(genes, plan.regulators))

    async with ShinySession(url, timeout=timeout) as s:  # loads the model
        warm = await s.query(genes[0], "\n".join(genes[1:11]))
    if not warm.ok:
        raise RuntimeError(f"warm-up query failed: {warm.message}")
    await asyncio.sleep(BOUNDED_SETTLE_S)
    marks["base"] = time.monotonic()
    async with ShinySession(url, timeout=timeout) as s:
        lone = await s.query(regulators(), targets, timeout=timeout)
        if not lone.ok:
            raise RuntimeError(f"the lone query failed: {lone.message}")
        marks["lone_answered"] = time.monotonic()
        await asyncio.sleep(BOUNDED_SETTLE_S)
        marks["lone_held"] = time.monotonic()
    await asyncio.sleep(BOUNDED_SETTLE_S)
    marks["before_load"] = time.monotonic()

    sessions = [ShinySession(url, timeout=timeout) for _ in range(plan.sessions)]
    await asyncio.gather(*(s.open() for s in sessions))
    await asyncio.sleep(BOUNDED_SETTLE_S / 2)
    marks["sessions_open"] = time.monotonic()
    answered = asyncio.Event()
    done = [0]

    async def one(s: ShinySession, regs: str) -> dict:
        t0 = time.monotonic()
        try:
            res = await s.query(regs, targets, timeout=timeout)
            out = {"ok": res.ok, "message": res.message, "seconds": res.seconds}
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            out = {"ok": False, "message": f"{type(exc).__name__}: {exc}", "seconds": None}
        out["answered_s"] = time.monotonic() - t0
        done[0] += 1
        if done[0] == len(sessions):
            answered.set()
        if plan.hold:
            await answered.wait()
        await s.close()
        return out

    marks["load_start"] = time.monotonic()
    results = await asyncio.gather(*(one(s, regulators()) for s in sessions))
    marks["all_closed"] = time.monotonic()
    await asyncio.sleep(2 * BOUNDED_SETTLE_S)
    marks["settled"] = time.monotonic()
    # One more lone query: if RSS stays near the figure above, what the closed sessions
    # held is being reused; if it grows by a query's worth, it was still held.
    async with ShinySession(url, timeout=timeout) as s:
        again = await s.query(regulators(), targets, timeout=timeout)
    await asyncio.sleep(2 * BOUNDED_SETTLE_S)
    marks["again_closed"] = time.monotonic()
    return {"lone_s": lone.seconds, "queries": results, "again_ok": again.ok}


def run_bounded(quick: bool, tmp: Path) -> dict | None:
    """The bounded scenario (see the module docstring); None when the harness failed."""
    plan = bounded_plan(quick)
    print(
        f"-- bounded scenario: {plan.sessions} sessions at once, each {plan.regulators} "
        f"regulators x {plan.genes:,} targets ({plan.pairs:,} pairs), results "
        f"{'held until every session is answered' if plan.hold else 'released on answer'}"
    )
    print(
        f"server: tfcnn serve --max-pairs {plan.max_pairs:,} --max-concurrent "
        f"{plan.max_concurrent} --max-pairs-in-memory {plan.max_pairs_in_memory:,}"
    )
    load_start = os.getloadavg()
    home = tmp / "bounded" / "home"
    os.environ["TFCNN_HOME"] = str(home)  # the model registry the server reads
    t = time.perf_counter()
    try:
        genes = synthetic_model(home, plan)
    except Exception as exc:  # noqa: BLE001
        print(f"HARNESS FAILURE: could not make the synthetic model: {type(exc).__name__}: {exc}")
        return None
    print(
        f"model: {BOUNDED_MODEL}, SYNTHETIC ({plan.genes:,} genes x {plan.samples} samples, "
        f"random), made in {time.perf_counter() - t:.1f} s"
    )
    server = Server(home, tmp / "bounded" / "serve.log", BOUNDED_MODEL, plan.serve_args())
    marks: dict[str, float] = {}
    try:
        server.wait_ready()
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        time.sleep(0.5)
        marks["idle"] = time.monotonic()
        out = asyncio.run(bounded_load(server.url, plan, genes, marks))
        sampler.stop()
        log_text = server.log_path.read_text(errors="replace")
    except Exception as exc:  # noqa: BLE001
        print(f"HARNESS FAILURE: bounded scenario: {type(exc).__name__}: {exc}")
        print(server.log_path.read_text(errors="replace")[-3000:])
        return None
    finally:
        server.stop()
    load_end = os.getloadavg()

    base = sampler.at(marks["base"]) or 0.0
    lone_peak = sampler.peak(marks["base"], marks["lone_held"]) or base
    lone_held = sampler.at(marks["lone_held"]) or base
    peak_1, held_1 = max(0.0, lone_peak - base), max(0.0, lone_held - base)
    before_open = sampler.at(marks["before_load"]) or base
    opened = sampler.at(marks["sessions_open"]) or before_open
    session_1 = max(0.0, opened - before_open) / plan.sessions
    k = plan.most_at_once
    scoring = min(plan.max_concurrent, k)
    bound = base + plan.sessions * session_1 + scoring * peak_1 + (k - scoring) * held_1
    peak = sampler.peak(marks["load_start"], marks["settled"]) or 0.0
    closed = sampler.at(marks["settled"])
    again = sampler.at(marks["again_closed"])
    queries = out["queries"]
    served = [q for q in queries if q["ok"]]
    refused = [q for q in queries if not q["ok"]]
    # Every session clicks at the same moment and at most max_concurrent score at once, so
    # all served queries beyond max_concurrent waited for a slot (the answer times show it).
    queued = max(0, len(served) - plan.max_concurrent)
    messages: dict[str, int] = {}
    for q in refused:
        messages[q["message"]] = messages.get(q["message"], 0) + 1
    tracebacks = log_text.count("Traceback")

    print(
        f"RSS: idle {sampler.at(marks['idle']) or 0:.0f} MiB; base (model loaded) {base:.0f} MiB; "
        f"one lone query: +{peak_1:.0f} MiB while scoring (peak_1), +{held_1:.0f} MiB held "
        f"(held_1), {out['lone_s']:.1f} s"
    )
    print(
        f"an open session before its query: +{session_1:.1f} MiB (session_1, from opening "
        f"all {plan.sessions})"
    )
    print(
        f"bound = base + {plan.sessions} x session_1 + {scoring} x peak_1 + {k - scoring} x "
        f"held_1 = {base:.0f} + {plan.sessions} x {session_1:.1f} + {scoring} x {peak_1:.0f} + "
        f"{k - scoring} x {held_1:.0f} = {bound:.0f} MiB (K = {plan.max_pairs_in_memory:,} / "
        f"{plan.max_pairs:,} = {k} queries held or scoring at once, {plan.max_concurrent} "
        "scoring)"
    )
    print(
        f"peak server RSS during the {plan.sessions} sessions: {peak:.0f} MiB "
        f"({'within' if peak <= bound else 'ABOVE'} the bound of {bound:.0f} MiB)"
        f"{'  [--quick: numbers mean nothing]' if quick else ''}"
    )
    print(
        f"queries: {len(served)} served, of which {queued} queued (at most "
        f"{plan.max_concurrent} score at once and all clicked together), {len(refused)} "
        "refused"
    )
    print(
        "  answered after (s): "
        + ", ".join(f"{q['answered_s']:.1f}{'' if q['ok'] else ' refused'}" for q in queries)
    )
    for message, count in messages.items():
        print(f"  refused x{count}: {message}")
    print(
        f"RSS after all sessions closed: {closed or 0:.0f} MiB (base {base:.0f} MiB); "
        f"tracebacks in the server's log: {tracebacks}"
    )
    print(
        f"then one more lone query, closed: RSS {again or 0:.0f} MiB "
        f"({(again or 0) - (closed or 0):+.0f} MiB; near 0: what the closed sessions held was "
        "reused; about +held_1: it was still held, e.g. waiting for Python's cyclic garbage "
        "collector)"
        f"{'' if out['again_ok'] else '  (that query FAILED)'}"
    )
    print(
        f"load average (1 min): {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end "
        f"({os.cpu_count()} CPUs)"
    )
    return {
        "synthetic_model": {"genes": plan.genes, "samples": plan.samples},
        "sessions": plan.sessions,
        "regulators": plan.regulators,
        "pairs_per_query": plan.pairs,
        "results_held_until_all_answered": plan.hold,
        "settings": {
            "max_pairs": plan.max_pairs,
            "max_concurrent": plan.max_concurrent,
            "max_pairs_in_memory": plan.max_pairs_in_memory,
        },
        "rss_mib": {
            "idle": sampler.at(marks["idle"]),
            "base": base,
            "lone_peak_increase": peak_1,
            "lone_held_increase": held_1,
            "session_open_increase": session_1,
            "bound": bound,
            "peak": peak,
            "after_all_closed": closed,
            "after_one_more_query_closed": again,
        },
        "within_bound": peak <= bound,
        "lone_query_s": out["lone_s"],
        "served": len(served),
        "queued": queued,
        "refused": len(refused),
        "refusal_messages": messages,
        "queries": queries,
        "server_tracebacks": tracebacks,
        "load_average_start": load_start[0],
        "load_average_end": load_end[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 x 2 small queries (smoke test)")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None, help="queries per session")
    parser.add_argument("--regulators", type=int, default=None)
    parser.add_argument("--targets", type=int, default=None)
    parser.add_argument(
        "--think",
        type=float,
        default=None,
        help="least seconds between a session's queries (default 2; --quick 0)",
    )
    parser.add_argument(
        "--think-max",
        type=float,
        default=None,
        help="most seconds between queries: each pause is uniform in [think, think-max] "
        "(default 6; --quick 0). --think 0 --think-max 0 --ramp 0: a saturation test",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which the sessions start, evenly (default 10; --quick 0)",
    )
    parser.add_argument(
        "--duration", type=float, default=90.0, help="no new query after this many seconds"
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of the model")
    parser.add_argument("--output", default=str(ROOT / ".bench" / "load.json"))
    parser.add_argument("--bounded-only", action="store_true", help="run only the bounded scenario")
    parser.add_argument("--skip-bounded", action="store_true", help="run only the users scenario")
    args = parser.parse_args(argv)
    if args.bounded_only:
        bounded = _bounded(args.quick)
        if bounded is None:
            return 1
        _write_json(Path(args.output), {"meta": {"quick": args.quick}, "bounded": bounded})
        return 0
    defaults = (3, 2, 20, 200, 1) if args.quick else (20, 10, 100, 1_000, 30)
    for name, value in zip(
        ("sessions", "queries", "regulators", "targets", "epochs"), defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name, normal in (("think", 2.0), ("think_max", 6.0), ("ramp", 10.0)):
        if getattr(args, name) is None:
            setattr(args, name, 0.0 if args.quick else normal)
    args.think_max = max(args.think, args.think_max)
    args.duration = min(args.duration, HARD_STOP_S)
    n_pairs = args.regulators * args.targets

    load_before = os.getloadavg()
    print(
        f"tfcnn web app load test: {args.sessions} sessions x {args.queries} queries of "
        f"{args.regulators:,} regulators x {args.targets:,} targets ({n_pairs:,} pairs each)"
        f"{'  [--quick: numbers mean nothing]' if args.quick else ''}"
    )
    if args.think_max > 0 or args.ramp > 0:
        print(
            f"scenario: users arrive evenly over {args.ramp:.0f} s; each reads a result for "
            f"{args.think:g}-{args.think_max:g} s (uniform, seeded) before the next query"
        )
    else:
        print("scenario: saturation (all sessions at once, each query right after the last)")
    print(f"machine: {os.cpu_count()} CPUs; load average {load_before[0]:.2f} (1 min) at start")

    tmp = Path(tempfile.mkdtemp(prefix="tfcnn_load_"))
    home = tmp / "home"
    server = None
    try:
        t = time.perf_counter()
        os.environ["TFCNN_HOME"] = str(home)
        try:
            model_dir = train_model(home, args.epochs, args.quick)
        except Exception as exc:  # noqa: BLE001
            print(f"HARNESS FAILURE: could not train the model: {type(exc).__name__}: {exc}")
            return 1
        meta = json.loads((model_dir / "model.json").read_text())
        genes = meta["genes"]
        print(
            f"model: {MODEL_NAME}, trained here on the bundled nitrogen compendium "
            f"({len(genes):,} genes x {len(meta['samples'])} samples; tf-holdout / tf-matched, "
            f"{'1 epoch on 2,048 pairs' if args.quick else f'{args.epochs} epochs'}, seed 0) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        settle = 0.2 if args.quick else 0.5  # seconds for the server's RSS to settle
        t = time.perf_counter()
        server = Server(home, tmp / "serve.log")
        try:
            server.wait_ready()
        except RuntimeError as exc:
            print(f"HARNESS FAILURE: {exc}")
            return 1
        print(f"tfcnn serve answered after {time.perf_counter() - t:.1f} s")
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        time.sleep(settle)
        t_idle = time.monotonic()
        rng = random.Random(20190101)
        seeds = [[rng.randrange(2**31) for _ in range(args.queries)] for _ in range(args.sessions)]
        pool = regulator_pool(genes)
        queries = [
            [query_ids(genes, pool, args.regulators, args.targets, s) for s in row] for row in seeds
        ]
        first = query_ids(genes, pool, args.regulators, args.targets, 1)
        try:
            warm_s = asyncio.run(warm_up(server.url, *first))
        except Exception as exc:  # noqa: BLE001
            print(f"HARNESS FAILURE: warm-up query: {type(exc).__name__}: {exc}")
            print(server.log_path.read_text()[-3000:])
            return 1
        time.sleep(settle)
        t_warm = time.monotonic()
        expect = (
            f"{n_pairs:,} pairs scored: {args.regulators:,} regulator(s) x "
            f"{args.targets:,} target(s)",
            min(n_pairs, 5_000),
            n_pairs + 1,
        )
        cpu0, busy0 = _cpu_seconds(server.proc.pid), busy_cpu_seconds()
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        result = asyncio.run(run_sessions(args, server.url, queries, expect))
        cpu1, busy1 = _cpu_seconds(server.proc.pid), busy_cpu_seconds()
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(4 * settle)  # sessions closed: let the server release them
        t_end = time.monotonic()
        sampler.stop()
        load_after = os.getloadavg()
        server.stop()
        log_text = server.log_path.read_text(errors="replace")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    records: list[QueryRecord] = result["records"]
    wall = result["t_end"] - result["t0"]
    ok = [r for r in records if r.error is None]
    failed = [r for r in records if r.error is not None]
    tracebacks = log_text.count("Traceback")
    errors = len(failed) + len(result["session_errors"]) + tracebacks
    lat = [r.seconds for r in ok]
    lat_table = [r.seconds_to_table for r in ok]
    planned = args.sessions * args.queries
    server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    client_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    other_share = None
    if busy0 is not None and busy1 is not None and server_cpu is not None:
        other = (busy1 - busy0) - server_cpu - client_cpu
        other_share = max(0.0, other / (wall * (os.cpu_count() or 1)))
    mid = result["t0"] + wall / 2
    rss = {
        "idle_mib": sampler.at(t_idle),
        "after_warm_up_mib": sampler.at(t_warm),
        "peak_mib": sampler.peak(t_idle, t_end),
        "load_first_half_peak_mib": sampler.peak(result["t0"], mid),
        "load_second_half_peak_mib": sampler.peak(mid, result["t_end"]),
        "load_end_mib": sampler.at(result["t_end"]),
        "end_mib": sampler.at(t_end),
    }
    stable = None
    first, second = rss["load_first_half_peak_mib"], rss["load_second_half_peak_mib"]
    if first and second:
        stable = second <= first * (1 + STABLE_GROWTH) + STABLE_SLACK_MIB
    p50, p95 = _percentile(lat, 50), _percentile(lat, 95)

    def fmt(x, unit="s", digits=2):
        return "n/a" if x is None else f"{x:.{digits}f} {unit}"

    print(f"warm-up query (loads the model): {warm_s:.2f} s")
    print(
        f"load phase: {wall:.1f} s; queries done {len(ok)} of {planned} planned "
        f"({len(failed)} failed, {planned - len(records)} not started before the "
        f"{args.duration:.0f}-s mark)"
    )
    print(
        f"throughput: {len(ok) / wall:.2f} queries/s, {len(ok) * n_pairs / wall:,.0f} pairs/s "
        "(complete pages)"
    )
    print(
        f"latency per query, click to complete page: p50 {fmt(p50)}, p95 {fmt(p95)}, "
        f"max {fmt(max(lat) if lat else None)}"
    )
    print(
        f"latency per query, click to summary + table: p50 {fmt(_percentile(lat_table, 50))}, "
        f"p95 {fmt(_percentile(lat_table, 95))}"
    )
    if result["downloads"]:
        dl = [d["seconds"] for d in result["downloads"]]
        print(f"CSV downloads: {len(dl)}, all rows checked; median {statistics.median(dl):.2f} s")
    if server_cpu is not None:
        print(
            f"server CPU: {server_cpu:.1f} s over {wall:.1f} s ({server_cpu / wall:.2f} cores); "
            f"per query {server_cpu / max(1, len(ok)):.2f} s; this client: {client_cpu:.1f} s"
        )
    if other_share is not None:
        warn = (
            "  WARNING: other processes shared the CPU; latencies inflated"
            if other_share > 0.1
            else ""
        )
        print(f"other processes used {other_share:.0%} of the machine's CPU during the load{warn}")
    print(f"load average at the end: {load_after[0]:.2f} (1 min)")
    for line in (
        result["session_errors"] + [f"query {r.session}.{r.index}: {r.error}" for r in failed]
    )[:10]:
        print(f"  error: {line}")
    if tracebacks:
        print(f"  error: {tracebacks} traceback(s) in the server's log")

    print("-- goals")
    print(f"errors: {errors} (goal 0){'' if errors == 0 else '  NOT met'}")
    if p95 is None:
        print(f"p95: n/a, no query completed (goal < {GOAL_P95_S:.0f} s)  NOT met")
    else:
        verdict = "met" if p95 < GOAL_P95_S else "NOT met"
        print(f"p95: {p95:.2f} s (goal < {GOAL_P95_S:.0f} s)  {verdict}")
    print(
        f"memory (server RSS): start {fmt(rss['idle_mib'], 'MiB', 0)} (idle), "
        f"{fmt(rss['after_warm_up_mib'], 'MiB', 0)} after warm-up, peak "
        f"{fmt(rss['peak_mib'], 'MiB', 0)}, end {fmt(rss['end_mib'], 'MiB', 0)} "
        "(sessions closed)"
    )
    if stable is not None:
        print(
            f"memory stable: {'yes' if stable else 'NO'} (peak RSS {first:.0f} MiB in the first "
            f"half of the load, {second:.0f} MiB in the second; stable = at most "
            f"+{STABLE_GROWTH:.0%} + {STABLE_SLACK_MIB:.0f} MiB)"
            f"{'' if stable else '  NOT met'}"
        )
    if len(records) < planned:
        print(
            f"planned load: NOT completed ({len(records)} of {planned} queries started within "
            f"{args.duration:.0f} s)"
        )

    bounded = None
    if not args.skip_bounded:
        bounded = _bounded(args.quick)
        if bounded is None:
            return 1
    payload = {
        "meta": {
            "quick": args.quick,
            "sessions": args.sessions,
            "queries_per_session": args.queries,
            "regulators": args.regulators,
            "targets": args.targets,
            "think_s": [args.think, args.think_max],
            "ramp_s": args.ramp,
            "duration_s": args.duration,
            "model": f"{MODEL_NAME} (bundled nitrogen compendium, {args.epochs} epochs)",
            "client": "tests/wsclient.py (Shiny websocket protocol, as chromium speaks it)",
            "cpus": os.cpu_count(),
            "load_average_start": load_before[0],
            "load_average_end": load_after[0],
            "other_processes_cpu_share": other_share,
        },
        "queries_planned": planned,
        "queries_done": len(ok),
        "queries_failed": len(failed),
        "errors": errors,
        "error_messages": result["session_errors"] + [r.error for r in failed],
        "load_phase_s": wall,
        "queries_per_s": len(ok) / wall,
        "pairs_per_s": len(ok) * n_pairs / wall,
        "latency_s": {"p50": p50, "p95": p95, "max": max(lat) if lat else None},
        "latency_to_table_s": {
            "p50": _percentile(lat_table, 50),
            "p95": _percentile(lat_table, 95),
        },
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "rss": rss,
        "memory_stable": stable,
        "rss_samples_mib": [  # one per second: (seconds since the server answered, MiB)
            (round(when - t_idle, 1), round(mib))
            for k, (when, mib) in enumerate(sampler.samples)
            if k % 5 == 0
        ],
        "records": [asdict(r) for r in records],
        "bounded": bounded,
    }
    _write_json(Path(args.output), payload)
    return 0


def _bounded(quick: bool) -> dict | None:
    """The bounded scenario in a temporary folder of its own (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="tfcnn_load_bounded_"))
    try:
        return run_bounded(quick, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_json(out: Path, payload: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(json.dumps(payload, indent=1))
    tmp_out.replace(out)
    print(f"results: {out}")


if __name__ == "__main__":
    sys.exit(main())
