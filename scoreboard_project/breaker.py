"""A circuit breaker per process for an external service (Redis).

Closed: calls go through; `REDIS_BREAKER_FAILURES` consecutive failures open it. Open: calls
are refused at once (no request waits on a dead server) until `REDIS_BREAKER_RESET` seconds
have passed; then one call goes through as a probe (half-open). The probe's success closes
the breaker and runs the recovery hooks (the ranking index is reconciled from the database);
its failure opens it again for another pause.

The breaker sits in the Redis connection classes (scoreboard_project.redis), so every Redis
call of the process, sync or async, goes through it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("scoreboard.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, name: str, *, failures: int, reset: float) -> None:
        self.name = name
        self.threshold = failures
        self.reset = reset
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0  # monotonic, for the pause
        self.probe_started = 0.0
        self.probe_owner: object = None
        # Wall-clock time of the last failed or refused call: every write this process could
        # not make happened before it (recovery compares it with rebuilds of other processes).
        self.last_failure_wall = 0.0
        self.lock = threading.Lock()
        self.on_recover: list[Callable[[CircuitBreaker, float], None]] = []

    def allow(self, owner: object = None) -> bool:
        """May `owner` (a connection) call the server now? In half-open, only the probe may."""
        if self.state == CLOSED:
            return True
        now = time.monotonic()
        with self.lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN and now - self.opened_at >= self.reset:
                self.state, self.probe_owner, self.probe_started = HALF_OPEN, owner, now
                logger.info("%s circuit half-open: probing", self.name)
                return True
            if self.state == HALF_OPEN:
                if owner is self.probe_owner:
                    return True
                if now - self.probe_started > max(self.reset, 5.0):
                    # The probe never reported (its caller was cancelled): let another try.
                    self.probe_owner, self.probe_started = owner, now
                    return True
            self.last_failure_wall = time.time()
            return False

    def success(self, owner: object = None) -> None:
        """The server answered: close the circuit (after an outage, run the recovery hooks)."""
        if self.state == CLOSED:
            if self.failures:
                self.failures = 0
            return
        with self.lock:
            if self.state == CLOSED:
                return
            outage_until = self.last_failure_wall
            self.state, self.failures, self.probe_owner = CLOSED, 0, None
        logger.warning("%s circuit closed: the server answers again", self.name)
        for hook in list(self.on_recover):
            try:
                hook(self, outage_until)
            except Exception:  # a hook's failure must not fail the call that probed
                logger.exception("%s recovery hook failed", self.name)

    def failure(self, owner: object = None) -> None:
        now = time.monotonic()
        with self.lock:
            self.last_failure_wall = time.time()
            self.failures += 1
            if self.state == HALF_OPEN and owner is self.probe_owner:
                self.state, self.opened_at, self.probe_owner = OPEN, now, None
                logger.warning("%s circuit probe failed: open for %.1f s more", self.name, self.reset)
            elif self.state == CLOSED and self.failures >= self.threshold:
                logger.error(
                    "%s circuit open after %d consecutive failures: calls skip it for %.1f s",
                    self.name,
                    self.failures,
                    self.reset,
                )
                self.state, self.opened_at = OPEN, now

    @property
    def is_open(self) -> bool:
        return self.state != CLOSED
