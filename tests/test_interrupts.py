"""Ctrl-C, SIGTERM and a second writer: a run is never torn and never shared.

- a first Ctrl-C (or SIGTERM) lets the step in flight finish, then saves: the checkpoint resumes bit-exactly;
- a second Ctrl-C quits at once and writes nothing;
- a run directory has one writer: a second `condgan train` into it is refused, naming the holder's PID;
  a lock left by a killed process is taken over.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from condgan.cli import main
from condgan.config import load_config
from condgan.tasks.gan import GANStep
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import tiny_overrides

EXACT = {"train.deterministic": True, "train.checkpoint_every": 2, "train.threads": 1}


def _signal_during_step(monkeypatch, at_step: int, signals: list[int]):
    """Deliver `signals` to this process while G step number `at_step` is being computed."""
    real_step = GANStep.step

    def step(self, batches, rng):
        if self.steps_done + 1 == at_step:
            for s in signals:
                os.kill(os.getpid(), s)
        return real_step(self, batches, rng)

    monkeypatch.setattr(GANStep, "step", step)


def _states_equal(a: dict, b: dict) -> None:
    for net in ("G", "D", "G_ema"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    assert a["opt_D"]["state"][0]["exp_avg"].equal(b["opt_D"]["state"][0]["exp_avg"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_mid_step_saves_a_checkpoint_that_resumes_exactly(shoes_dir, tmp_path, monkeypatch, signum):
    train(load_config(None, tiny_overrides(shoes_dir, steps=6, **EXACT)), tmp_path / "straight", quiet=True)
    _signal_during_step(monkeypatch, at_step=3, signals=[signum])
    summary = train(load_config(None, tiny_overrides(shoes_dir, steps=6, **EXACT)), tmp_path / "cut", quiet=True)
    monkeypatch.undo()
    assert summary["interrupted"] and summary["steps"] == 3, summary  # the step in flight completed, then it stopped
    saved = ckpt.safe_load(tmp_path / "cut" / "checkpoints" / "step_00000003.pt")
    assert saved["batches_done"] == 3 and saved["state"]["steps_done"] == 3, "the data counter ran ahead of the step"
    train(out=tmp_path / "cut", resume=True, quiet=True)  # to its original 6 steps
    _states_equal(ckpt.safe_load(tmp_path / "straight" / "checkpoints" / "step_00000006.pt")["state"],
                  ckpt.safe_load(tmp_path / "cut" / "checkpoints" / "step_00000006.pt")["state"])


def test_a_second_ctrl_c_quits_at_once_without_writing(shoes_dir, tmp_path, monkeypatch):
    _signal_during_step(monkeypatch, at_step=3, signals=[signal.SIGINT, signal.SIGINT])
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, tiny_overrides(shoes_dir, steps=6, **EXACT)), tmp_path / "run", quiet=True)
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002.pt"]
    summary = train(out=tmp_path / "run", resume=True, quiet=True)  # the lock went with the process
    assert summary["steps"] == 6


def test_ctrl_c_through_the_real_command(shoes_dir, tmp_path):
    """The installed command: Ctrl-C prints how to quit at once, saves, exits 130; the checkpoint is whole."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "condgan", "train", "--data", str(shoes_dir), "--out", str(out), "--steps", "100000",
            "--set", *tiny_overrides(shoes_dir, steps=100000, **EXACT)[1:]]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(out, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-500:]
    assert "Ctrl-C again quits at once" in err and "Traceback" not in err
    state, path = ckpt.load_latest(out / "checkpoints")
    assert state["batches_done"] == state["state"]["steps_done"] == state["step"] >= 5


def _wait_for_steps(run, n: int, proc) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read()[-800:]}")
        time.sleep(0.2)
    raise AssertionError("training did not start within 120 s")


def test_two_writers_the_second_is_refused_and_a_stale_lock_is_taken_over(shoes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "condgan", "train", "--data", str(shoes_dir), "--out", str(out), "--steps", "100000",
            "--quiet", "--set", *tiny_overrides(shoes_dir, steps=100000, **EXACT)[1:]]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_steps(out, 3, proc)
        before = sorted(p.name for p in (out / "checkpoints").iterdir())
        for argv in (["train", "--data", str(shoes_dir), "--out", str(out), "--steps", "2"],
                     ["train", "--resume", str(out), "--steps", "2"]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "is in use" in err[0] and f"process {proc.pid}" in err[0], err
        assert json.loads((out / ".lock").read_text())["pid"] == proc.pid
    finally:
        proc.kill()  # SIGKILL: no handler runs, the lock file stays behind with the dead PID in it
        proc.wait()
    assert before  # the refused writers touched nothing the first one owned
    assert main(["train", "--resume", str(out), "--steps", "1"]) == 0
    assert f"took over the lock of process {proc.pid}" in capsys.readouterr().err
