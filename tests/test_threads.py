"""train.threads: null measures the thread count while training (training/threads.py).

The tuner is driven here by a simulated machine: a clock that each step advances by the step time that the
current thread count gets under a given load, so what it chooses and what its probes cost are exact."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_overrides

from condgan.config import load_config
from condgan.training import train
from condgan.training.threads import ThreadTuner, fixed_count

ALONE = {1: 0.140, 2: 0.100}  # seconds per step: two threads 1.4x one (measured alone on 2 cores)
BESIDE_BUSY = {1: 0.150, 2: 3.0}  # two spinning threads beside a busy process: 20x slower (measured)


class Machine:
    def __init__(self, load: dict[int, float]):
        self.now, self.load, self.threads = 0.0, load, 2

    def clock(self) -> float:
        return self.now

    def set_threads(self, n: int) -> None:
        self.threads = n

    def train(self, tuner: ThreadTuner, seconds: float) -> dict[int, float]:
        """Steps until `seconds` have passed; the time spent at each thread count."""
        spent: dict[int, float] = {}
        end = self.now + seconds
        while self.now < end:
            took = self.load[self.threads]
            self.now += took
            spent[self.threads] = spent.get(self.threads, 0.0) + took
            tuner.step_took(took)
        return spent


def tuned(load: dict[int, float]) -> tuple[Machine, ThreadTuner]:
    machine = Machine(load)
    return machine, ThreadTuner(2, set_threads=machine.set_threads, clock=machine.clock)


def steps_per_s(spent: dict[int, float], load: dict[int, float]) -> float:
    return sum(t / load[n] for n, t in spent.items()) / sum(spent.values())


def test_alone_it_trains_on_every_core_and_probing_costs_little():
    machine, tuner = tuned(ALONE)
    spent = machine.train(tuner, 600)
    assert tuner.current == 2
    assert steps_per_s(spent, ALONE) >= 0.99 / ALONE[2]  # within 1% of two threads all along


def test_beside_a_busy_process_it_keeps_one_thread_and_probes_rarely():
    machine, tuner = tuned(BESIDE_BUSY)
    spent = machine.train(tuner, 600)
    assert tuner.current == 1
    assert steps_per_s(spent, BESIDE_BUSY) >= 0.95 / BESIDE_BUSY[1]
    assert spent.get(2, 0) < 0.05 * 600


def test_it_follows_the_load_when_the_load_changes():
    machine, tuner = tuned(ALONE)
    machine.train(tuner, 120)
    assert tuner.current == 2
    machine.load = BESIDE_BUSY  # something else starts: several slow steps start a probe at once
    spent = machine.train(tuner, 60)
    assert tuner.current == 1 and spent[2] < 40  # well before the next regular probe
    machine.load = ALONE  # it ends: found again at a regular probe
    spent = machine.train(tuner, 600)
    assert tuner.current == 2 and steps_per_s(spent, ALONE) >= 0.9 / ALONE[2]


def test_a_count_that_is_asked_for_is_not_measured(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert fixed_count(None, False, cpu) is None
        assert fixed_count(3, False, cpu) == 3
        assert fixed_count(None, True, cpu) == 2  # deterministic: bit-reproducible needs one count
        assert fixed_count(None, False, torch.device("meta")) == 2  # not a CPU run
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's (or torchrun's) choice
        assert fixed_count(None, False, cpu) == 2
    finally:
        torch.set_num_threads(previous)


def test_a_run_that_measures_records_it_and_gives_the_callers_count_back(shoes_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = load_config(None, tiny_overrides(shoes_dir, steps=12))
        summary = train(config, out=tmp_path / "run", quiet=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert summary["threads_auto"] is True and sum(summary["steps_at_threads"].values()) == 12
    logged = [json.loads(line)["threads"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged and set(logged) <= {1, 2}


@pytest.mark.parametrize("most, candidates", [(1, [1]), (2, [1, 2]), (8, [1, 4, 8]), (3, [1, 3])])
def test_candidates_are_every_core_half_and_one(most, candidates):
    assert ThreadTuner(most, set_threads=lambda n: None).candidates == candidates
