"""Failed sign-in attempts per key (a user name, a client address), in a sliding window.

Guessing passwords or tokens needs many attempts; after ``attempts`` failures within
``window_s`` the key is refused until the oldest failure leaves the window. Successes clear
the key. In memory: one server process, which is how ``workbench serve``/``api`` run.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from workbench.errors import RateLimited


class Limiter:
    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = max(1, attempts)
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        while found and now - found[0] >= self.window_s:
            found.popleft()
        return found

    def check(self, *keys: str) -> None:
        """Raise :class:`RateLimited` when any of ``keys`` has used up its failures."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                if len(recent) >= self.attempts:
                    wait = int(self.window_s - (now - recent[0])) + 1
                    raise RateLimited(
                        "too many failed sign-in attempts", f"wait {wait} s and try again with valid credentials"
                    )

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
