"""Several processes training one model, on PyTorch's own engine (torch.distributed).

Launched by torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT for every process; `init_from_env()` joins the process group those
describe (gloo on CPU, NCCL on GPUs). With one process nothing here does any
communication, so single-process training pays nothing for it.

What the training loop needs from it: who am I (rank, world), agree on one
decision (`agree`: a max over ranks, so one rank's "stop" or "NaN" stops all),
average numbers for the log, keep buffers identical (`broadcast_buffers`), and a
BatchNorm whose statistics span every process's share of the batch
(`convert_sync_batchnorm`; PyTorch's own SyncBatchNorm runs on GPUs only).
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError


def launched() -> bool:
    """Started by torchrun (or another launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def init_from_env(device: str) -> bool:
    """Join the process group torchrun describes; returns True if this call created it (and should end it).
    device: the train.device setting, to choose NCCL (GPUs) or gloo (CPU)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run a single process (without torchrun)")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = timedelta(minutes=float(os.environ.get("CONDGAN_DIST_TIMEOUT_MINUTES", "30")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return True


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each process of a node takes its own GPU: cuda -> cuda:LOCAL_RANK."""
    if device.type == "cuda" and device.index is None and active():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def agree(values: list[float], device: torch.device) -> list[float]:
    """The maximum of each value over all processes: flags (0/1) become 'any rank', clocks 'the slowest rank'."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each number averaged over the processes (for the log: losses of the whole batch, not one shard)."""
    if not active() or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / world()).tolist()))


def broadcast_buffers(*modules: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics, spectral norm's power-iteration vectors) to every rank,
    so checkpoints, the EMA copy and every process hold the same model. Parameters need no such step: DDP
    averages their gradients, so identical optimiser steps keep them identical."""
    if not active():
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for module in modules:
        for b in module.buffers():
            by_dtype.setdefault(b.dtype, []).append(b)
    for buffers in by_dtype.values():  # one collective per dtype, not one per buffer
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        for b, part in zip(buffers, flat.split([b.numel() for b in buffers])):
            b.copy_(part.view_as(b))


def barrier() -> None:
    if active():
        dist.barrier()


def end(created: bool, finished: bool = True) -> None:
    """Leave the process group. After a finished run every rank first waits (a minute at most) for the others:
    a rank that tore down its connections while another was still in its last collective once aborted at exit.
    After a failure there is no waiting: the other ranks may never arrive."""
    if created and dist.is_initialized():
        if finished:
            try:
                if dist.get_backend() == "gloo":
                    dist.monitored_barrier(timeout=timedelta(minutes=1))
                else:
                    dist.barrier()
            except RuntimeError:  # another rank failed or left: tear down all the same
                pass
        dist.destroy_process_group()


class SyncedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose batch statistics are those of the whole batch, summed over every process.

    Each process's shard has the same size (the trainer makes it so), so the mean of the shard means is
    the batch mean. The all_reduce is torch.distributed.nn's differentiable one: gradients flow back to
    every shard. Running statistics and eval mode are those of plain BatchNorm, so the weights load into
    the unconverted network (sampling, exports) unchanged.
    """

    local = False  # True: this process's batch only (rank 0 measuring G_ema's standing statistics alone)

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()) or self.local:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dtype, x = x.dtype, x.float()  # statistics in fp32, also under bf16/fp16 autocast
        dims = [0] + list(range(2, x.dim()))
        moments = torch.stack([x.mean(dims), (x * x).mean(dims)])
        moments = all_reduce(moments) / world()
        mu, var = moments[0], (moments[1] - moments[0] ** 2).clamp_min(0)
        if self.track_running_stats:
            n = x.numel() // x.shape[1] * world()
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mu.detach(), m)
                self.running_var.lerp_(var.detach() * n / max(n - 1, 1), m)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mu.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm1d/2d inside `module` (on the CPU, before it moves to a device) becomes a SyncedBatchNorm
    with the same weights and state-dict keys."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncedBatchNorm):
        synced = SyncedBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        synced.load_state_dict(module.state_dict())
        return synced
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child))
    return module
