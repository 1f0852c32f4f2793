"""A training run — the one loop for every task: data, models, the task's step (GAN or metric learning),
logs, preview pictures, checkpoints, stop conditions and exact resume.

Run directory layout (everything a user or a resumed run needs):
    config.yaml        resolved config (copy it to start a similar run)
    metrics.jsonl      one JSON line per log step; tb/ has the same for TensorBoard
    samples/           previews: class grids (cgan: one row per class, fixed noise), source | output |
                       target sheets (translate), exemplar | outputs (exemplar), query | nearest
                       (similarity); latest.png
    loss.png           the logged losses
    checkpoints/       step_XXXXXXXX.pt, the last `keep_checkpoints` of them
    summary.json       steps, images/s, parameter counts, where things are
    neighbours.pt      exemplar: every training image's embedding and nearest neighbours, reused on resume

Several processes (`torchrun --nproc_per_node N -m condgan train ...`, docs/distributed.md):
every process runs this same loop on its share of each batch, DDP averages the
gradients (tasks/gan.py), and only rank 0 writes anything. Decisions that end the
loop are agreed once per step (`_agree`), so no process is left waiting for another.
"""

from __future__ import annotations

import hashlib
import contextlib
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import torch

from ..config import (RUNTIME_KEYS, SMALL_DATA, SMALL_DATA_AUGMENT, Config, check_image_size, from_dict,
                      load_config, parse_overrides)
from ..data import to_float
from ..errors import ConfigError, UserError
from ..models import count_parameters
from ..progress import progress, silenced, write
from ..visual import GRID_COLUMNS
from . import checkpoint as ckpt
from . import dist
from .augment import jitter
from .lock import RunLock
from .device import resolve_device, resolve_precision
from .threads import take_threads
from .run_files import RunFiles
from .schedule import LrDecay


class Run(RunFiles):
    """Everything one training run holds; `fit()` trains until a stop condition.

    The task supplies the step (`self.step`): anything with step(batches, rng) -> losses, steps_done,
    networks() (described in checkpoints), state_dict()/load_state_dict(), weights_finite() and
    optionally before_save(), components() and optimizers() (train.lr_decay scales their rates). There are three: GANStep (tasks/gan.py), two chained for the
    two-stage joint stage (JointStep) and the similarity task's MetricStep."""

    def __init__(self, config: Config, out: Path, resume: bool = False, quiet: bool = False, more: dict | None = None):
        self.config, self.out, self.quiet = config, Path(out), quiet
        t = config.train
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        self.device = dist.local_device(resolve_device(t.device))
        self.threads_before, self.threads = take_threads(t.threads, t.deterministic, self.device)  # fit() gives back
        self.precision = resolve_precision(t.precision, self.device)
        self.rank, self.world = dist.rank(), dist.world()
        self.main = self.rank == 0  # the one process that writes logs, pictures and checkpoints
        self.quiet = quiet or not self.main
        self.task = config.task_class.trains(config)  # two-stage: the class of the stage this run trains
        latest = self._resumable() if resume else None  # read first: a changed recipe is refused before any data
        self._take_data(*self.task.load_run_data(config, self.out))
        if _device_line.pop("pending", False):  # once the data is there (a mistake in it is the only line), once a command
            print(f"condgan: device {self.device}", file=sys.stderr)
        self._build_step()
        # Rank 0 (and a single process) draws noise from one stream whose state checkpoints keep; the other
        # ranks reseed theirs every step (_noise), so any number of processes resumes without their states.
        self.noise_gen = torch.Generator().manual_seed(t.seed + 1)
        self.noise_salt = 0  # other ranks: changed by a rollback, so the noise that led to a NaN is not replayed
        self.fixed_noise = torch.randn(GRID_COLUMNS, config.model.z_dim or 1, generator=torch.Generator().manual_seed(t.seed + 2))
        self.batches_done = 0
        self.elapsed = 0.0
        self._perm_epoch, self._perm = -1, None
        self.rollbacks = 0
        self.stopped_by_request = False

        self.ckpt_dir = self.out / "checkpoints"
        self.metrics_file = self.out / "metrics.jsonl"
        if resume:
            self._resume(more, latest)
        elif self.main:
            self._create_run_dir()
        dist.barrier()  # the run directory exists before anyone goes on

    def _take_data(self, fields: dict, spec) -> None:
        """The training data on the device, and what is resolved from it: image size and channels, class names,
        size-dependent defaults (logged, and recorded in config.yaml so a resumed run keeps them), batch shares."""
        config, t = self.config, self.config.train
        self.spec = spec
        image = self.spec["image"]
        check_image_size(config.model.arch, image.height, image.width, given=config.data.image_size is not None)
        # Record what was resolved from the data, so sampling needs no dataset.
        config.data.channels = image.channels
        config.data.image_size = image.height if image.height == image.width else config.data.image_size
        class_fields = self.spec.class_fields()  # the first one names the classes (cgan: label; two-stage: label_a)
        self.class_names = list(self.spec[class_fields[0]].class_names) if class_fields else []
        self.n_items = len(next(iter(fields.values())))
        filled = config.resolve_for_size(image.height)  # recorded in config.yaml, so a resumed run keeps them
        for line in config.explain_filled(filled, image.height):
            self._log(line)
        self.batch_size = min(t.batch_size, self.n_items)
        self.batches_per_epoch = self.n_items // self.batch_size
        if self.batch_size % self.world:
            raise ConfigError(f"train.batch_size {self.batch_size} cannot be split evenly over {self.world} processes; "
                              f"use a multiple of {self.world}")
        self.shard = self.batch_size // self.world  # each process's share of every batch
        # Images read from the disk cache (data.cache) stay there; in-memory data goes to the device once.
        self.fields = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in fields.items()}
        if t.augment is None:  # resolved once, recorded in config.yaml, so a resumed run keeps it
            small = config.task_class.augments_small_data and self.n_items < SMALL_DATA
            t.augment = list(SMALL_DATA_AUGMENT) if small else []
            if small:
                self._log(f"data: {self.n_items:,} training images (< {SMALL_DATA:,}): DiffAugment "
                          f"{','.join(t.augment)} on D's inputs by default (train.augment=[] turns it off)")

    def _build_step(self) -> None:
        """The task's step (GANStep, two chained for a joint stage, MetricStep: the same interface), seeded,
        spread over the processes and compiled as asked."""
        config, t = self.config, self.config.train
        torch.manual_seed(t.seed)
        self.channels_last = t.channels_last if t.channels_last is not None else self.device.type == "cpu"
        self.roles = None  # which field plays which part in a GAN step (set by GAN tasks)
        # GANStep for generators, two chained for a joint stage, MetricStep for similarity: the same interface
        self.step = self.task.make_step(self)
        self.lr_decay = LrDecay(self.step, t.lr_decay)  # the base rates, read before any checkpoint is loaded
        self.sampler = self.task.sampler(self) if hasattr(self.task, "sampler") else None
        if self.world > 1:
            if not hasattr(self.step, "distribute"):
                raise ConfigError(f"this {config.task} run trains in one process; start it without torchrun")
            self.step.distribute(self.device)
        if t.compile:
            if not hasattr(self.step, "compile"):
                raise ConfigError(f"train.compile is for GAN steps; this {config.task} run trains without it (set it false)")
            self.step.compile()

    # ----- data order ----------------------------------------------------------------------
    def _next_batch(self) -> dict[str, torch.Tensor]:
        """Batch number k is a pure function of (seed, k): resuming needs only the counter. With several
        processes the batch is the same and rank r takes its r-th slice, so any number of processes can resume."""
        if self.sampler is not None:  # the task picks the items (class-balanced batches)
            whole = self.sampler(self.batches_done)
        else:
            epoch, i = divmod(self.batches_done, self.batches_per_epoch)
            if epoch != self._perm_epoch:
                g = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
                self._perm, self._perm_epoch = torch.randperm(self.n_items, generator=g), epoch
            whole = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
        idx = whole[self.rank * self.shard:(self.rank + 1) * self.shard]
        batch = self._rows(idx, self.batches_done)
        if self.config.data.jitter:  # seeded by the batch number too, so resume stays exact
            g = torch.Generator().manual_seed(self.config.train.seed * 1_000_033 + self.batches_done if self.rank == 0
                                              else self._seed("jitter", self.batches_done))
            batch = jitter(batch, self.config.data.jitter, self.spec.image_fields(), g)
        if self.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
        self.batches_done += 1
        return batch

    def _rows(self, idx: torch.Tensor, k: int, fields=None) -> dict[str, torch.Tensor]:
        """Items idx as batch number k, images as float in [-1, 1]: what the task says it holds (an exemplar
        and its neighbour: `select`), or else the items' rows of `fields` (default: every field)."""
        batch = self.task.select(self, idx.to(self.device), k) if hasattr(self.task, "select") else None
        batch = batch or {name: self.field_rows(name, idx) for name in (fields or self.fields)}
        return {name: to_float(values) if values.dim() == 4 else values for name, values in batch.items()}

    def field_rows(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        """Rows idx of a field, on the device (from memory, or read from the disk cache)."""
        values = self.fields[name]
        if isinstance(values, torch.Tensor):
            return values[idx.to(values.device)]
        return values[idx].to(self.device, non_blocking=True)

    def _noise(self) -> torch.Generator:
        """The generator for this step's noise and augmentation: rank 0's continues (its state is checkpointed),
        another rank's is reseeded from (seed, step, rank)."""
        if self.rank > 0:
            self.noise_gen.manual_seed(self._seed("noise", self.step.steps_done))
        return self.noise_gen

    def _seed(self, stream: str, k: int) -> int:
        """A seed for random stream `stream` at step or batch k of a process other than rank 0: it differs
        between processes and steps and depends on nothing else, so a resumed run draws the same."""
        key = f"{self.config.train.seed}/{stream}/{k}/{self.rank}/{self.noise_salt}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1

    # ----- stopping ------------------------------------------------------------------------
    def target_steps(self) -> int | None:
        t = self.config.train
        targets = []
        if t.steps:
            targets.append(t.steps)
        if t.epochs:
            targets.append(math.ceil(t.epochs * self.batches_per_epoch / t.d_steps))
        return min(targets) if targets else None

    def _should_stop(self) -> bool:
        target, budget = self.target_steps(), self.config.train.budget_minutes
        return (target is not None and self.step.steps_done >= target) or (budget is not None and self.elapsed >= budget * 60)

    # ----- the loop ------------------------------------------------------------------------
    def fit(self) -> dict:
        if self.target_steps() is None and self.config.train.budget_minutes is None:
            raise ConfigError("no stop condition: give --steps, --epochs or --budget-minutes")
        self._signals: list[int] = []
        previous = self._catch_signals()
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step.steps_done + 1) if self.main else None
        bar = progress(total=self.target_steps(), initial=self.step.steps_done, unit="step", disable=self.quiet,
                       desc=f"training {self.config.task_class.describe(self.config)}")
        now = time.monotonic()
        self._meter = {"t0": now, "last_checkpoint": now, "images_seen": 0, "rate_start": now, "rate_images": 0}
        try:
            while not self._should_stop():
                if self._train_step(bar, writer):
                    self.stopped_by_request = True
                    break
        finally:  # a second Ctrl-C leaves through here with KeyboardInterrupt: nothing more is written
            bar.close()
            torch.set_num_threads(self.threads_before)
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self._finish(writer)

    def _catch_signals(self) -> dict:
        """SIGTERM or a first Ctrl-C: every process finishes the step in flight, rank 0 saves, all stop (see
        _agree). A second Ctrl-C: quit at once and write nothing. Returns the handlers it replaced."""

        def request_stop(signum, frame):
            if signum == signal.SIGINT and self._signals:
                raise KeyboardInterrupt
            self._signals.append(signum)
            if signum == signal.SIGINT and self.main:
                write("condgan: stopping after this step and saving a checkpoint (Ctrl-C again quits at once, without saving)")

        signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
        return {s: signal.signal(s, request_stop) for s in signals}

    def _train_step(self, bar, writer) -> bool:
        """One step, with its log line, preview and checkpoint when due; True when the run was asked to stop."""
        t, meter = self.config.train, self._meter
        start = time.monotonic()
        batches = [self._next_batch() for _ in range(t.d_steps)]
        diverged = None
        self.lr_decay.apply(self)  # train.lr_decay: the rates for this point of the run (none touched when 0)
        try:
            losses = self.step.step(batches, self._noise())
        except FloatingPointError as e:
            diverged = str(e)
        else:
            self.elapsed += time.monotonic() - start
            if self.threads:
                self.threads.step_took(time.monotonic() - start)
        stop, any_diverged = self._agree(self.stop_requested(), diverged is not None)
        if any_diverged:
            self._handle_divergence(diverged or f"a non-finite loss in another process at step {self.step.steps_done}")
            return False
        if self.world > 1:
            dist.broadcast_buffers(self.step.G, self.step.D, self.step.G_ema)
        step = self.step.steps_done
        n_images = sum(len(b[getattr(self.step, "target", "image")]) for b in batches) * self.world
        meter["images_seen"] += n_images
        meter["rate_images"] += n_images
        bar.update(1)
        if step % t.log_every == 0:
            self._log_losses(bar, writer, step, losses)
        if self.main and step % t.sample_every == 0:
            self.write_grid(writer)
        if self.main and (step % t.checkpoint_every == 0 or time.monotonic() - meter["last_checkpoint"] > t.checkpoint_minutes * 60):
            self.save_checkpoint()  # the other processes wait for it in the next step's gradient exchange
            meter["last_checkpoint"] = time.monotonic()
        return stop

    def _log_losses(self, bar, writer, step: int, losses: dict) -> None:
        meter = self._meter
        losses = dist.mean(losses, self.device)  # the whole batch's, not this process's share
        rate = meter["rate_images"] / max(time.monotonic() - meter["rate_start"], 1e-9)
        meter["rate_start"], meter["rate_images"] = time.monotonic(), 0
        if self.main:
            self._write_metrics(writer, step, losses, rate)
        bar.set_postfix(**{k.removeprefix("loss_"): f"{v:.3f}" for k, v in losses.items() if k.startswith("loss_")},
                        img_s=f"{rate:.0f}", min=f"{self.elapsed / 60:.1f}",
                        **({"threads": torch.get_num_threads()} if self.threads else {}))

    def _finish(self, writer) -> dict:
        """The last checkpoint and preview, and the run's summary (summary.json)."""
        t = self.config.train
        final_ckpt = ckpt.checkpoint_path(self.ckpt_dir, self.step.steps_done)
        grid = self.out / "samples" / "latest.png"
        if self.main:
            final_ckpt = self.save_checkpoint()
            grid = self.write_grid(writer)
            writer.close()
        wall = time.monotonic() - self._meter["t0"]
        summary = {
            "run": str(self.out), "task": self.config.task, "arch": self.config.model.arch, "loss": t.loss, "steps": self.step.steps_done,
            "epochs": round(self.batches_done / self.batches_per_epoch, 3), "train_minutes": round(self.elapsed / 60, 2),
            "images_per_s": round(self._meter["images_seen"] / max(wall, 1e-9), 1), "processes": self.world, "rank": self.rank,
            "precision": self.precision, **{f"params_{name}": count_parameters(net) for name, net in self.step.networks().items()},
            "class_names": self.class_names, "checkpoint": str(final_ckpt), "grid": str(grid),
            "loss_plot": str(self.out / "loss.png"), "interrupted": self.stopped_by_request, "augment": t.augment,
            **(self.threads.summary() if self.threads else {"threads": torch.get_num_threads()}),
        }
        if self.main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        dist.barrier()  # nobody leaves before rank 0 has saved
        return summary

    def stop_requested(self) -> bool:
        """Whether this process was asked to stop (SIGTERM; several processes: Ctrl-C too); any stops all (see _agree)."""
        return bool(self._signals)

    def _agree(self, stop: bool, diverged: bool) -> tuple[bool, bool]:
        """One collective per step (none with one process): every process learns whether any of them was asked
        to stop or saw a non-finite loss, and takes the slowest one's training clock for the time budget."""
        self.elapsed, stop_any, diverged_any = dist.agree([self.elapsed, float(stop), float(diverged)], self.device)
        return stop_any > 0, diverged_any > 0

    def _log(self, message: str) -> None:
        if not self.quiet:
            write(message)


_device_line = {}  # train() arms it; the first Run it makes says the device on stderr (two-stage makes several)


def train(config: Config | None = None, out: str | Path = "runs/default", resume: bool = False,
          stop_overrides: dict | None = None, quiet: bool = False, overrides: list[str] = ()) -> dict:
    """Train (or resume) a run and return its summary.

    stop_overrides: steps / epochs / budget_minutes; for a new run, totals; with resume, how much *more*.
    overrides (resume only): `section.key=value` strings for runtime keys (config.RUNTIME_KEYS); anything
    else is the run's recipe, fixed by its checkpoint, and is refused with a message naming the key.
    """
    out = Path(out)
    more = None
    if resume:
        if not (out / "config.yaml").is_file():
            raise UserError(f"cannot resume: {out} is not a condgan run directory (no config.yaml)")
        config = load_config(out / "config.yaml", of_run=True)
        raw = config.to_dict()
        for key, value in parse_overrides(overrides):
            if key not in RUNTIME_KEYS:
                raise ConfigError(f"{key} cannot change when resuming: it is the run's recipe, fixed by its checkpoint "
                                  f"(runtime keys can: see `condgan train --help`). For a new recipe: condgan train "
                                  f"--config {out / 'config.yaml'} --set {key}=... --out NEW")
            section, name = key.split(".")
            if name in ("steps", "epochs", "budget_minutes"):
                stop_overrides = {**(stop_overrides or {}), name: value} if (stop_overrides or {}).get(name) is None else stop_overrides
            else:
                raw[section][name] = value
        config = from_dict(raw)
        more, stop_overrides = stop_overrides, None
    config = config or Config()
    for key, value in (stop_overrides or {}).items():
        if value is not None:
            setattr(config.train, key, value)
    config.validate()
    if more:
        for key, value in more.items():
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise ConfigError(f"{key} must be a positive number, not {value!r}")
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    created = dist.init_from_env(config.train.device)  # under torchrun: join the other processes
    finished = False
    try:
        _device_line["pending"] = not quiet and dist.rank() == 0
        # One writer per run directory (rank 0 writes for all), taken before any work so a second writer is told at once.
        # quiet: no progress bar at all, the data loaders' decoding bars included
        with RunLock(out) if dist.rank() == 0 else contextlib.nullcontext() as lock, silenced(quiet):
            if lock is not None and lock.took_over and not quiet:
                write(f"took over the lock of process {lock.took_over.get('pid')}, which is no longer running")
            # a task made of several runs trains them itself (two-stage: its stage runs, each by this loop)
            summary = config.task_class.fit(config, out, resume=resume, quiet=quiet, more=more)
            if summary is None:
                summary = Run(config, out, resume=resume, quiet=quiet, more=more).fit()
            finished = True
            return summary
    finally:
        _device_line.clear()
        torch.use_deterministic_algorithms(was_deterministic)
        dist.end(created, finished)
