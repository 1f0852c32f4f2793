"""Progress that stays readable wherever output goes.

On a terminal: tqdm's live bar. Elsewhere (`make demo > log`, CI, a job
scheduler): tqdm would write thousands of carriage-return updates into the
file, so instead one plain line is printed every CONDGAN_PROGRESS_SECONDS
(default 30) and one when the work ends.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

from tqdm import tqdm

_silenced = False


@contextmanager
def silenced(on: bool = True):
    """No progress bars while inside (--quiet): every bar is disabled, also those deep in the data loaders,
    which are not handed a quiet flag of their own."""
    global _silenced
    before, _silenced = _silenced, _silenced or on
    try:
        yield
    finally:
        _silenced = before


def progress(iterable=None, *, total: int | None = None, desc: str | None = None, disable: bool = False, **kwargs):
    """tqdm on a terminal, `Lines` otherwise; same use: iterate, or update()/set_postfix()/close()."""
    disable = disable or _silenced
    if disable or sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)
    return Lines(iterable, total=total, desc=desc, initial=kwargs.get("initial", 0), unit=kwargs.get("unit", "it"))


def write(message: str) -> None:
    """A message that does not break a live bar."""
    tqdm.write(message, file=sys.stderr)


def note(message: str) -> None:
    """A line about what was chosen (a default picked by the data), unless silenced (--quiet)."""
    if not _silenced:
        write(message)


class Lines:
    def __init__(self, iterable=None, total: int | None = None, desc: str | None = None, initial: int = 0, unit: str = "it"):
        self.iterable, self.desc, self.unit = iterable, desc or "progress", unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.start_n = initial, initial
        self.postfix = ""
        self.every = float(os.environ.get("CONDGAN_PROGRESS_SECONDS", "30"))
        self.t0 = self.last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self._print()

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n > self.start_n:
                self._print()

    def _print(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.t0
        rate = (self.n - self.start_n) / max(elapsed, 1e-9)
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}{pct}, {elapsed:.0f} s, {rate:.1f} {self.unit}/s {self.postfix}".rstrip(),
              file=sys.stderr, flush=True)
