"""Thread-safe stop and pause switches that a running trainer checks before every batch.

The page, the job pool's watchdog and the CLI flip them from other threads; the trainer
only reads them, so a stop lands within one batch.
"""

from __future__ import annotations

import threading
import time


class Control:
    """Thread-safe stop/pause switches a trainer checks before every batch."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to notice the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self) -> float:
        """Block while paused; returns seconds spent paused."""
        if self._running.is_set():
            return 0.0
        t0 = time.perf_counter()
        self._running.wait()
        return time.perf_counter() - t0
