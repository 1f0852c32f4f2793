"""How many CPU threads a training uses: measured while it trains (train.threads: null, the default).

Why measured: PyTorch's OpenMP threads spin while they wait for each other. Alone on a 2-core machine two
threads trained the default model ~1.4x faster than one; but once another process runs on one of the cores
(a second training, a test suite, a browser), the thread sharing that core stalls the other, and two threads
fell to 0.3x of their solo speed, while one thread kept 0.67x. What is fastest depends on what else runs,
and that changes during a run, so every so often each candidate count trains a few steps and the fastest
is kept. Two other fixes were measured and rejected (docs/benchmarks.md#speed-on-a-shared-machine):
OMP_WAIT_POLICY=PASSIVE (waiting threads sleep) costs more than half alone, because this model runs
thousands of tiny parallel regions and each pays a wake-up; a short GOMP_SPINCOUNT was slower everywhere.

The count changes the order of floating-point sums, so a run that adapts is not bit-reproducible; an
explicit train.threads, OMP_NUM_THREADS (torchrun sets 1 per process), train.deterministic or a device
other than the CPU keep the count fixed.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import torch

WARMUP_STEPS = 3  # the first steps build caches and allocate: not a measure of anything
PROBE_SECONDS = 0.4  # each candidate trains at least this long (and 3 steps) per probe
FIRST_INTERVAL, LONGEST_INTERVAL = 5.0, 60.0  # seconds between probes: doubling while the choice holds ...
OVERHEAD_SHARE = 0.02  # ... and long enough that a probe's lost time is at most this share of the time between
SLOWDOWN = 1.3  # steps this much slower than the chosen count's probe: the load changed, probe again
WORSE, COLLAPSED = 2.0, 10.0  # a candidate's step this many times the best median ends its measure early
                              # (COLLAPSED for the first step after a switch, which may wake a thread pool)


def fixed_count(threads: int | None, deterministic: bool, device: torch.device) -> int | None:
    """The thread count when it is not to be measured (None: measure it)."""
    if threads:
        return threads
    if deterministic or device.type != "cpu" or "OMP_NUM_THREADS" in os.environ or torch.get_num_threads() < 2:
        return torch.get_num_threads()
    return None


def take_threads(threads: int | None, deterministic: bool, device: torch.device) -> tuple[int, "ThreadTuner | None"]:
    """Set a run's thread count; returns the count before (given back when the run ends: condgan.train in a
    notebook) and the tuner that measures it, or None when the count is fixed."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    return before, None if fixed_count(threads, deterministic, device) else ThreadTuner(torch.get_num_threads())


class ThreadTuner:
    """Chooses among `most`, half of it and 1 thread by the measured time per step.

    Call `step_took(seconds)` after every training step; it switches the count between steps. A probe trains
    each candidate, the current choice first, for PROBE_SECONDS (the first step after a switch is not counted)
    and keeps the one with the shortest median step. A candidate far slower than the best so far is dropped
    after one step: beside a busy process two spinning threads ran 20x slower than one, and measuring that
    for long would cost more than the probe can win. The next probe comes after an interval that doubles while
    the choice holds (up to LONGEST_INTERVAL, or longer when probes are costly), or at once when a run on
    several threads gets SLOWDOWN times slower (something else started)."""

    def __init__(self, most: int, set_threads: Callable[[int], None] = torch.set_num_threads,
                 clock: Callable[[], float] = time.monotonic):
        self.candidates = sorted({most, max(1, most // 2), 1})
        self.set_threads, self.clock = set_threads, clock
        self.current = most
        self._switch(1)  # the first probe starts from one thread: it cannot collapse
        self.steps = 0
        self.interval = FIRST_INTERVAL
        self.next_probe_at = None  # None: a probe is due once the warm-up is over
        self.probing: list[int] = []  # candidates still to measure in this probe
        self.times: dict[int, list[float]] = {}
        self.probe_started, self.probe_steps = 0.0, 0
        self.chosen = None  # the count the last probe kept
        self.reference = None  # its median step time in that probe
        self.recent: list[float] = []
        self.steps_at: dict[int, int] = {}  # steps trained at each count (summary.json)
        self.probes = 0

    def step_took(self, seconds: float) -> None:
        self.steps += 1
        self.steps_at[self.current] = self.steps_at.get(self.current, 0) + 1
        if self.steps <= WARMUP_STEPS:
            return
        if self.probing:
            self.probe_steps += 1
            self._measure(seconds)
        elif self.next_probe_at is None or self.clock() >= self.next_probe_at or self._slowed_down(seconds):
            self._start_probe()

    def _slowed_down(self, seconds: float) -> bool:
        """Only on several threads: slower on one thread means less CPU, which more threads cannot fix."""
        self.recent = [*self.recent[-7:], seconds]
        return self.current > 1 and len(self.recent) == 8 and statistics.median(self.recent) > SLOWDOWN * self.reference

    def _start_probe(self) -> None:
        order = [self.current, *(n for n in self.candidates if n != self.current)]
        self.probing, self.times = order, {n: [] for n in order}
        self.probe_started, self.probe_steps, self.probes = self.clock(), 0, self.probes + 1

    def _measure(self, seconds: float) -> None:
        n = self.probing[0]
        self.times[n].append(seconds)
        counted = self.times[n][1:]  # the first step after a switch is not counted
        best = min((statistics.median(t[1:]) for m, t in self.times.items() if m != n and len(t) > 3), default=None)
        hopeless = best is not None and seconds > (WORSE if counted else COLLAPSED) * best
        if hopeless:
            self.times[n] = []
        if hopeless or (len(counted) >= 3 and sum(counted) >= PROBE_SECONDS):
            self.probing.pop(0)
            if self.probing:
                self._switch(self.probing[0])
            else:
                self._choose()

    def _choose(self) -> None:
        medians = {n: statistics.median(t[1:]) for n, t in self.times.items() if len(t) > 3}
        best = min(medians, key=medians.get)
        lost = (self.clock() - self.probe_started) - self.probe_steps * medians[best]  # vs training at `best` all along
        if best == self.chosen:
            self.interval = max(min(2 * self.interval, LONGEST_INTERVAL), lost / OVERHEAD_SHARE)
        else:
            self.interval = FIRST_INTERVAL
        self.chosen, self.reference, self.recent = best, medians[best], []
        self._switch(best)
        self.next_probe_at = self.clock() + self.interval

    def _switch(self, n: int) -> None:
        if n != self.current:
            self.set_threads(n)
            self.current = n

    def summary(self) -> dict:
        """For summary.json: steps trained at each count, the count in use at the end, how many probes."""
        return {"threads_auto": True, "steps_at_threads": {str(k): v for k, v in sorted(self.steps_at.items())},
                "threads_at_end": self.current, "thread_probes": self.probes}
