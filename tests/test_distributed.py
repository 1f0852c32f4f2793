"""Several processes (gloo on CPU), as torchrun starts them: same weights everywhere, a checkpoint
written by 2 processes resumes in 1, and a stop (or a NaN) on one process stops all of them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from conftest import tiny_overrides, tiny_translate_overrides, write_folders, write_pairs

TORCHRUN = Path(sys.executable).parent / "torchrun"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, overrides: list[str], out: str, scenario: str) -> None:
    """One process of a torchrun-like job: the environment torchrun would set, then condgan's own train()."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from condgan.config import load_config
    from condgan.tasks.gan import GANStep
    from condgan.training import trainer

    fit = trainer.Run.fit

    def fit_and_dump(self):
        if scenario == "stop" and rank == 1:  # only rank 1 is asked to stop, at step 2
            self.stop_requested = lambda: self.step.steps_done >= 2
        summary = fit(self)
        state = self.step.state_dict()
        torch.save({"G": state["G"], "D": state["D"], "G_ema": state["G_ema"], "opt_G": state["opt_G"]["state"],
                    "opt_D": state["opt_D"]["state"], "summary": summary}, Path(out) / f"rank{rank}.pt")
        return summary

    trainer.Run.fit = fit_and_dump
    if scenario == "nan" and rank == 1:  # a non-finite loss on rank 1 only, at its third step
        step = GANStep.step

        def failing_step(self, batches, gen):
            losses = step(self, batches, gen)
            if self.steps_done == 3:
                raise FloatingPointError(f"non-finite loss at step {self.steps_done}: injected by the test")
            return losses

        GANStep.step = failing_step
    try:
        trainer.train(load_config(None, overrides), out, quiet=True)
    except Exception as e:  # noqa: BLE001 - reported to the test through a file
        (Path(out) / f"rank{rank}.error").write_text(f"{type(e).__name__}: {e}")


def run_two(tmp_path: Path, overrides: list[str], scenario: str = "plain") -> Path:
    out = tmp_path / f"run-{scenario}"
    out.mkdir()
    mp.start_processes(_worker, args=(2, free_port(), overrides, str(out), scenario), nprocs=2, start_method="spawn")
    return out


def assert_same_state(a: dict, b: dict, what: str) -> None:
    """Every weight, buffer and optimiser moment, except G_ema's BatchNorm statistics: rank 0, which alone
    writes pictures and checkpoints, measures those before it does (train.standing_stats)."""
    for part in ("G", "D", "G_ema"):
        for key in a[part]:
            if part == "G_ema" and ("running_" in key or key.endswith("num_batches_tracked")):
                continue
            assert torch.equal(a[part][key], b[part][key]), f"{what}: {part}.{key} differs between the two processes"
    for part in ("opt_G", "opt_D"):
        for i, slot in a[part].items():
            for name, value in slot.items():
                assert torch.equal(value, b[part][i][name]), f"{what}: {part} state {i}.{name} differs"


@pytest.mark.parametrize("arch,sync,d_steps,scenario", [("resnet", "true", 1, "stop"), ("dcgan", "false", 2, "plain")])
def test_two_processes_stay_identical_stop_together_and_resume_in_one(tmp_path, arch, sync, d_steps, scenario):
    """resnet: spectral norm + conditional BatchNorm (synced), one D pass on [real; fake]; only rank 1 is asked
    to stop, at step 2 of 500, and both stop there. dcgan: BatchNorm in D, so D is called twice before its
    backward pass, two D updates per step, 4 steps. Then the 2-process checkpoint resumes in 1 process."""
    data = write_folders(tmp_path / "shoes", per_class=8, size=16)
    steps = 500 if scenario == "stop" else 4
    overrides = tiny_overrides(data, steps=steps, **{"model.arch": arch, "train.sync_batchnorm": sync,
                                                     "train.d_steps": d_steps, "train.checkpoint_every": 1000})
    out = run_two(tmp_path, overrides, scenario)
    assert not list(out.glob("*.error")), [e.read_text() for e in out.glob("*.error")]
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert_same_state(r0, r1, arch)
    done = 2 if scenario == "stop" else 4
    assert r0["summary"]["steps"] == r1["summary"]["steps"] == done and r0["summary"]["processes"] == 2
    assert r0["summary"]["interrupted"] == r1["summary"]["interrupted"] == (scenario == "stop")
    # only rank 0 wrote: one log line per step, not two, and one checkpoint (the final one)
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == list(range(1, done + 1))
    assert [p.name for p in (out / "checkpoints").glob("step_*.pt")] == [f"step_{done:08d}.pt"]
    saved = torch.load(out / "checkpoints" / f"step_{done:08d}.pt", weights_only=True)["state"]
    assert all(torch.equal(saved["G"][k], r0["G"][k]) for k in r0["G"])

    from condgan.training import train

    summary = train(out=out, resume=True, stop_overrides={"steps": 2}, quiet=True)
    assert summary["steps"] == done + 2 and summary["processes"] == 1
    import condgan

    assert condgan.load(out).sample(["boot"], n=2).shape == (2, 1, 16, 16)


def test_a_nan_on_one_process_stops_both(tmp_path):
    pairs = write_pairs(tmp_path / "pairs", n=16)
    out = run_two(tmp_path, tiny_translate_overrides(pairs, steps=500), scenario="nan")
    errors = sorted(p.name for p in out.glob("*.error"))
    assert errors == ["rank0.error", "rank1.error"], errors  # both stopped, neither hangs
    assert all("DivergenceError" in (out / e).read_text() for e in errors)


def test_torchrun_launches_the_cli(tmp_path):
    """The real launcher: torchrun --nproc_per_node 2 -m condgan train (what the docs tell users to type)."""
    data = write_folders(tmp_path / "shoes", per_class=8, size=16)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "condgan", "train",
           "--quiet", "--out", str(out), "--set", *tiny_overrides(data, steps=3)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["processes"] == 2
    assert done.stdout.count("trained 3 steps") == 1, done.stdout  # one report, from rank 0


def _batchnorm_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from condgan.training import dist

    dist.init_from_env("cpu")
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    w = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    bn = dist.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))[0]
    shard = x[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    y = bn(shard)
    (y * w[rank * 4:(rank + 1) * 4]).sum().backward()
    torch.save({"y": y.detach(), "grad": shard.grad, "running_var": bn.running_var}, Path(out) / f"bn{rank}.pt")
    torch.distributed.barrier()  # both ranks done before either tears down its connections (a rank that left
    dist.end(True)               # first once made the other abort at exit: "terminate called without an active exception")


def test_synced_batchnorm_matches_one_process_on_the_whole_batch(tmp_path):
    mp.start_processes(_batchnorm_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    parts = [torch.load(tmp_path / f"bn{r}.pt") for r in range(2)]
    x = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    w = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    bn = torch.nn.BatchNorm2d(3)
    y = bn(x)
    (y * w).sum().backward()
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.cat([p["grad"] for p in parts]), x.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(parts[0]["running_var"], bn.running_var, atol=1e-5, rtol=1e-4)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path, monkeypatch):
    from condgan.config import load_config
    from condgan.errors import ConfigError
    from condgan.training import dist, train

    monkeypatch.setattr(dist, "world", lambda: 2)  # what a 2-process job reports, without starting one
    data = write_folders(tmp_path / "shoes", per_class=8, size=16)
    with pytest.raises(ConfigError, match="batch_size 7 cannot be split evenly over 2 processes; use a multiple of 2"):
        train(load_config(None, tiny_overrides(data, **{"train.batch_size": 7})), tmp_path / "run")
