"""Server-wide bounds of the web app (tfcnn.apps.webapp.limits), without a server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tfcnn.apps.webapp.limits import ServerBudget


@dataclass
class Outcome:
    error: str | None = None
    n_pairs: int = 0


def refuse(why: str) -> Outcome:
    return Outcome(error=why)


def test_at_most_max_concurrent_queries_score_at_once() -> None:
    budget = ServerBudget(max_concurrent=2, max_pairs_in_memory=10**9, wait_seconds=10)
    running, peak, lock = [0], [0], threading.Lock()

    def query() -> Outcome:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Outcome(n_pairs=1)

    threads = [
        threading.Thread(target=budget.run, args=(f"s{i}", 10, query, refuse)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    assert budget.held_pairs == 8  # each session holds its one-pair result


def test_held_results_bound_the_next_queries_until_sessions_release_them() -> None:
    budget = ServerBudget(max_concurrent=4, max_pairs_in_memory=1_000, wait_seconds=0.1)
    assert budget.run("a", 600, lambda: Outcome(n_pairs=600), refuse).error is None
    busy = budget.run("b", 600, lambda: Outcome(n_pairs=600), refuse)
    assert busy.error is not None and "busy" in busy.error
    # The same session asking again replaces its own result: no deadlock on itself.
    assert budget.run("a", 600, lambda: Outcome(n_pairs=600), refuse).error is None
    budget.release("a")  # session closed
    assert budget.held_pairs == 0
    assert budget.run("b", 600, lambda: Outcome(n_pairs=600), refuse).error is None
    too_big = budget.run("c", 5_000, lambda: Outcome(n_pairs=1), refuse)
    assert "more than this server holds at once (1,000)" in too_big.error


def test_a_failing_query_releases_its_slot_and_reservation() -> None:
    budget = ServerBudget(max_concurrent=1, max_pairs_in_memory=100, wait_seconds=0.1)

    def boom() -> Outcome:
        raise RuntimeError("synthetic failure")

    try:
        budget.run("a", 100, boom, refuse)
    except RuntimeError:
        pass
    assert budget.run("b", 100, lambda: Outcome(n_pairs=5), refuse).error is None
    assert budget.run("c", 1, lambda: Outcome(error="bad ids"), refuse).error == "bad ids"
    assert budget.held_pairs == 5  # an error holds nothing
