"""A process's peak resident set size over a block, for the benches and tests that bound memory."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

MIB = 2**20


class PeakRss:
    """A process's peak RSS growth over the block.

    Linux keeps each process's RSS high-water mark (VmHWM) and resets it to the current
    RSS on writing 5 to its clear_refs, so no peak between two samples is missed. Where
    that is refused, samples every 10 ms stand in.
    """

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self._status = Path(f"/proc/{pid}/status")
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self._high_water_mark = True
        except OSError:
            self._high_water_mark = False
        self.before = int(self.process.memory_info().rss)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.before) / MIB

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._high_water_mark:
            self.peak = max(self.peak, self._status_kib("VmHWM") * 1024)

    def _status_kib(self, field: str) -> int:
        for line in self._status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise RuntimeError(f"{self._status} has no {field}")

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, int(self.process.memory_info().rss))
