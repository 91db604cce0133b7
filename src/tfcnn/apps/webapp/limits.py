"""Server-wide bounds of the web app: queries scored at once, and result pairs held.

Per-query limits (regulators, targets, pairs) keep one query small, but not many of them
at once: eight sessions each asking for the largest allowed query took a server to
8.4 GB. :class:`ServerBudget` bounds the whole server. A query first reserves its size
(an upper bound on its pairs); it runs when fewer than ``max_concurrent`` queries are
scoring and the pairs held by all sessions' results plus those reserved stay within
``max_pairs_in_memory``. Otherwise it waits (at most ``wait_seconds``), then is refused
with a message, never queued without end. A session's result counts until the session
asks another query or closes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

#: Queries scored at once by default (one per core of a small server).
DEFAULT_MAX_CONCURRENT = 2
#: Result pairs held by the server at once by default (a table costs about 100 bytes a
#: pair; scoring briefly needs a few times more).
DEFAULT_MAX_PAIRS_IN_MEMORY = 4_000_000
DEFAULT_WAIT_SECONDS = 30.0


class _Outcome(Protocol):
    error: str | None

    @property
    def n_pairs(self) -> int: ...


@dataclass
class ServerBudget:
    """Counts of what the server is doing, shared by every session (thread-safe)."""

    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_pairs_in_memory: int = DEFAULT_MAX_PAIRS_IN_MEMORY
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    _lock: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _scoring: int = 0
    _reserved: int = 0
    _held: dict[str, int] = field(default_factory=dict)

    @property
    def held_pairs(self) -> int:
        """Pairs in the results sessions hold now."""
        with self._lock:
            return sum(self._held.values())

    def release(self, session: str) -> None:
        """Forget a session's result (it closed, or asked another query)."""
        with self._lock:
            self._held.pop(session, None)
            self._lock.notify_all()

    def run(
        self,
        session: str,
        estimate: int,
        query: Callable[[], _Outcome],
        refuse: Callable[[str], _Outcome],
    ) -> _Outcome:
        """Run ``query`` (of at most ``estimate`` pairs) within the bounds, or ``refuse(why)``."""
        if estimate > self.max_pairs_in_memory:
            return refuse(
                f"this query may have up to {estimate:,} pairs, more than this server holds at "
                f"once ({self.max_pairs_in_memory:,}); give fewer regulators or targets, or use "
                "'tfcnn predict'."
            )
        deadline = time.monotonic() + self.wait_seconds
        with self._lock:
            self._held.pop(session, None)  # the new result replaces the old one
            while not self._fits(estimate):
                left = deadline - time.monotonic()
                if left <= 0:
                    return refuse(
                        "the server is busy with other queries; try again in a minute "
                        "(or use 'tfcnn predict' on your own machine)."
                    )
                self._lock.wait(left)
            self._scoring += 1
            self._reserved += estimate
        outcome = None
        try:
            outcome = query()
            return outcome
        finally:
            with self._lock:
                self._scoring -= 1
                self._reserved -= estimate
                if outcome is not None and outcome.error is None:
                    self._held[session] = outcome.n_pairs
                self._lock.notify_all()

    def _fits(self, estimate: int) -> bool:
        held = sum(self._held.values())
        return (
            self._scoring < self.max_concurrent
            and held + self._reserved + estimate <= self.max_pairs_in_memory
        )
