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
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import torch
from torchvision.utils import make_grid

from ..conditions import Spec
from ..config import (RUNTIME_KEYS, SMALL_DATA, SMALL_DATA_AUGMENT, Config, from_dict, load_config, parse_overrides,
                      save_config)
from ..data import to_float
from ..errors import CheckpointError, ConfigError, DivergenceError, UserError
from ..models import count_parameters
from ..progress import progress, write
from ..tasks import TASKS
from ..visual import loss_plot
from .. import untrusted
from . import checkpoint as ckpt
from .augment import jitter
from .lock import RunLock

MAX_GRID_ROWS = 20
GRID_COLUMNS = 8
MAX_ROLLBACKS = 3


def resolve_device(name: str) -> torch.device:
    try:
        return untrusted.device(name, "train.device")
    except UserError as e:
        raise ConfigError(str(e)) from None


class Run:
    """Everything one training run holds; `fit()` trains until a stop condition.

    The task supplies the step (`self.step`): anything with step(batches, rng) -> losses, steps_done,
    networks() (described in checkpoints), state_dict()/load_state_dict(), weights_finite() and
    optionally before_save(). GANStep and the similarity task's MetricStep are the two there are."""

    def __init__(self, config: Config, out: Path, resume: bool = False, quiet: bool = False, more: dict | None = None):
        self.config, self.out, self.quiet = config, Path(out), quiet
        t = config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        self.device = resolve_device(t.device)
        self.task = TASKS[config.task]
        fields, self.spec = self.task.load_data(config, "train")
        image = self.spec["image"]
        # Record what was resolved from the data, so sampling needs no dataset.
        config.data.channels = image.channels
        config.data.image_size = image.height if image.height == image.width else config.data.image_size
        self.class_names = list(self.spec["label"].class_names) if "label" in self.spec else []
        self.n_items = len(fields["image"])  # items: images, or rows of a CSV of pairs / triplets
        self.batch_size = min(t.batch_size, self.n_items)
        self.batches_per_epoch = self.n_items // self.batch_size
        self.fields = {k: v.to(self.device) for k, v in fields.items()}
        if t.augment is None:  # resolved once, recorded in config.yaml, so a resumed run keeps it
            small = config.task in ("cgan", "exemplar") and self.n_items < SMALL_DATA
            t.augment = list(SMALL_DATA_AUGMENT) if small else []
            if small:
                self._log(f"data: {self.n_items:,} training images (< {SMALL_DATA:,}): DiffAugment "
                          f"{','.join(t.augment)} on D's inputs by default (train.augment=[] turns it off)")

        torch.manual_seed(t.seed)
        m = config.model
        self.roles = None  # which field plays which part in a GAN step (set by GAN tasks)
        self.step = self.task.make_step(self)  # GANStep for generators, MetricStep for similarity (same interface)
        self.sampler = self.task.sampler(self) if hasattr(self.task, "sampler") else None
        self.noise_gen = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = torch.randn(GRID_COLUMNS, m.z_dim, generator=torch.Generator().manual_seed(t.seed + 2))
        self.batches_done = 0
        self.elapsed = 0.0
        self._perm_epoch, self._perm = -1, None
        self.rollbacks = 0

        self.ckpt_dir = self.out / "checkpoints"
        self.metrics_file = self.out / "metrics.jsonl"
        if resume:
            self._resume(more)
        else:
            self._create_run_dir()

    # ----- run directory -------------------------------------------------------------------
    def _create_run_dir(self) -> None:
        if ckpt.list_checkpoints(self.ckpt_dir):
            raise UserError(f"{self.out} already holds a run; continue it with --resume {self.out}, or choose another --out")
        try:
            for d in (self.out, self.ckpt_dir, self.out / "samples"):
                d.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out / "config.yaml")
            self.metrics_file.write_text("")
        except PermissionError:
            raise UserError(f"cannot write to {self.out}: permission denied (choose a writable --out)") from None
        except OSError as e:
            raise UserError(f"cannot create run directory {self.out}: {e.strerror}") from None

    def _resume(self, more: dict | None) -> None:
        state, path = ckpt.load_latest(self.ckpt_dir)
        if state["task"] != self.config.task:
            raise CheckpointError(f"{path} is a {state['task']!r} run but the config asks for task {self.config.task!r}")
        saved_arch = state["config"]["model"]["arch"]
        if saved_arch != self.config.model.arch:
            raise CheckpointError(f"{path} is a {saved_arch!r} model but the config asks for {self.config.model.arch!r}")
        saved_spec = Spec.from_dict(state["spec"])
        if saved_spec != self.spec:
            if saved_spec.get("label") != self.spec.get("label"):
                raise CheckpointError(f"{path} was trained on classes {list(saved_spec['label'].class_names) if 'label' in saved_spec else None}, "
                                      f"but the data now has {self.class_names or None}")
            raise CheckpointError(f"{path} was trained on data shaped {saved_spec.to_dict()}, but the data is now {self.spec.to_dict()}")
        self._restore(state)
        self._extend_stops(more or {})
        # Drop log lines written after this checkpoint: they describe lost steps.
        if self.metrics_file.exists():
            kept = [ln for ln in self.metrics_file.read_text().splitlines() if _logged_step(ln) <= self.step.steps_done]
            self.metrics_file.write_text("".join(ln + "\n" for ln in kept))
        save_config(self.config, self.out / "config.yaml")
        self._log(f"resumed from {path} at step {self.step.steps_done}")

    def _extend_stops(self, more: dict) -> None:
        """Stop conditions given on resume count from here: '--budget-minutes 5' is five more minutes.
        Given any, they replace the run's old ones (which were met, or the user would not be asking)."""
        more = {k: v for k, v in more.items() if v is not None}
        if not more:
            return
        t = self.config.train
        t.steps = self.step.steps_done + int(more["steps"]) if "steps" in more else None
        t.epochs = self.batches_done / self.batches_per_epoch + float(more["epochs"]) if "epochs" in more else None
        t.budget_minutes = self.elapsed / 60 + float(more["budget_minutes"]) if "budget_minutes" in more else None

    def _restore(self, state: dict) -> None:
        try:
            for part, weights in state["state"].items():
                if not part.startswith("opt") and isinstance(weights, dict):
                    untrusted.finite_weights(weights, f"checkpoint ({part})")
            self.step.load_state_dict(state["state"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match this model ({str(e).splitlines()[0][:160]})") from None
        self.noise_gen.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.batches_done = int(state["batches_done"])
        self.elapsed = float(state["elapsed"])

    def save_checkpoint(self) -> Path:
        if hasattr(self.step, "before_save"):  # e.g. the similarity threshold, chosen on the current weights
            self.step.before_save()
        if not self.step.weights_finite():
            raise DivergenceError("weights contain NaN/Inf; not checkpointing them (the previous checkpoint is kept)")
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "task": self.config.task, "spec": self.spec.to_dict(),
                 "networks": {name: net.describe() for name, net in self.step.networks().items()},
                 "state": self.step.state_dict(),
                 "config": self.config.to_dict(), "rng": rng, "batches_done": self.batches_done,
                 "elapsed": self.elapsed, "step": self.step.steps_done}
        path = ckpt.checkpoint_path(self.ckpt_dir, self.step.steps_done)
        ckpt.atomic_save(state, path)
        ckpt.prune(self.ckpt_dir, self.config.train.keep_checkpoints)
        return path

    # ----- data order ----------------------------------------------------------------------
    def _next_batch(self) -> dict[str, torch.Tensor]:
        """Batch number k is a pure function of (seed, k): resuming needs only the counter."""
        if self.sampler is not None:  # the task picks the items (class-balanced batches)
            idx = self.sampler(self.batches_done).to(self.device)
        else:
            epoch, i = divmod(self.batches_done, self.batches_per_epoch)
            if epoch != self._perm_epoch:
                g = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
                self._perm, self._perm_epoch = torch.randperm(self.n_items, generator=g).to(self.device), epoch
            idx = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
        if hasattr(self.task, "select"):  # the task says what the batch holds (an exemplar and its neighbour)
            batch = self.task.select(self, idx, self.batches_done)
        else:
            batch = {name: values[idx] for name, values in self.fields.items()}
        for name in batch:
            if batch[name].dim() == 4:  # images: uint8 in memory, float [-1, 1] in a batch
                batch[name] = to_float(batch[name])
        if self.config.data.jitter:  # seeded by the batch number too, so resume stays exact
            g = torch.Generator().manual_seed(self.config.train.seed * 1_000_033 + self.batches_done)
            batch = jitter(batch, self.config.data.jitter, self.spec.image_fields(), g)
        if self.device.type == "cpu":
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
        self.batches_done += 1
        return batch

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
        t = self.config.train
        if self.target_steps() is None and t.budget_minutes is None:
            raise ConfigError("no stop condition: give --steps, --epochs or --budget-minutes")
        stop_requested = []

        def request_stop(signum, frame):
            """SIGTERM or a first Ctrl-C: finish the step in flight, save, stop. A second Ctrl-C: quit now, write nothing."""
            if signum == signal.SIGINT and stop_requested:
                raise KeyboardInterrupt
            stop_requested.append(signum)
            if signum == signal.SIGINT:
                write("condgan: stopping after this step and saving a checkpoint (Ctrl-C again quits at once, without saving)")

        signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
        previous = {s: signal.signal(s, request_stop) for s in signals}
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step.steps_done + 1)
        bar = progress(total=self.target_steps(), initial=self.step.steps_done, unit="step", disable=self.quiet,
                       desc=f"training {self.config.task} {self.config.model.arch}")
        last_ckpt_time, images_seen, t0 = time.monotonic(), 0, time.monotonic()
        rate_start, rate_images = time.monotonic(), 0
        try:
            while not self._should_stop() and not stop_requested:
                start = time.monotonic()
                batches = [self._next_batch() for _ in range(t.d_steps)]
                try:
                    losses = self.step.step(batches, self.noise_gen)
                except FloatingPointError as e:
                    self._handle_divergence(str(e))
                    continue
                self.elapsed += time.monotonic() - start
                step = self.step.steps_done
                n_images = sum(len(b["image"]) for b in batches)
                images_seen += n_images
                rate_images += n_images
                bar.update(1)
                if step % t.log_every == 0:
                    rate = rate_images / max(time.monotonic() - rate_start, 1e-9)
                    rate_start, rate_images = time.monotonic(), 0
                    record = {"step": step, **{k: round(v, 5) for k, v in losses.items()},
                              "images_per_s": round(rate, 1), "elapsed_s": round(self.elapsed, 1),
                              "epoch": round(self.batches_done / self.batches_per_epoch, 3)}
                    with open(self.metrics_file, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    for k, v in record.items():
                        if k != "step":
                            writer.add_scalar(k, v, step)
                    bar.set_postfix(**{k.removeprefix("loss_"): f"{v:.3f}" for k, v in losses.items() if k.startswith("loss_")},
                                    img_s=f"{rate:.0f}", min=f"{self.elapsed / 60:.1f}")
                if step % t.sample_every == 0:
                    self.write_grid(writer)
                if step % t.checkpoint_every == 0 or time.monotonic() - last_ckpt_time > t.checkpoint_minutes * 60:
                    self.save_checkpoint()
                    last_ckpt_time = time.monotonic()
        finally:  # a second Ctrl-C leaves through here with KeyboardInterrupt: nothing more is written
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        final_ckpt = self.save_checkpoint()
        grid = self.write_grid(writer)
        writer.close()
        wall = time.monotonic() - t0
        summary = {
            "run": str(self.out), "task": self.config.task, "arch": self.config.model.arch, "loss": t.loss, "steps": self.step.steps_done,
            "epochs": round(self.batches_done / self.batches_per_epoch, 3), "train_minutes": round(self.elapsed / 60, 2),
            "images_per_s": round(images_seen / max(wall, 1e-9), 1),
            **{f"params_{name}": count_parameters(net) for name, net in self.step.networks().items()},
            "class_names": self.class_names, "checkpoint": str(final_ckpt), "grid": str(grid),
            "loss_plot": str(self.out / "loss.png"), "interrupted": bool(stop_requested),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _handle_divergence(self, reason: str) -> None:
        latest = ckpt.list_checkpoints(self.ckpt_dir)
        if self.config.train.on_divergence == "rollback" and latest and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            state, path = ckpt.load_latest(self.ckpt_dir)
            self._restore(state)  # (a rollback keeps this session's stop conditions)
            torch.randn(1000 * self.rollbacks, generator=self.noise_gen)  # new noise, so the same NaN is not replayed
            self._log(f"{reason}; rolled back to {path} (rollback {self.rollbacks}/{MAX_ROLLBACKS})")
            return
        where = f"the last good checkpoint is {latest[-1]}" if latest else "no checkpoint had been written yet"
        raise DivergenceError(f"training diverged: {reason}. Stopped without saving the bad weights; {where}. "
                              f"Try lower learning rates (--set train.lr_d=1e-4) or train.on_divergence=rollback.")

    @torch.no_grad()
    def write_grid(self, writer=None) -> Path:
        """The task's preview: one row per class (cgan), source | output | target (translate),
        exemplar | outputs (exemplar), query | nearest (similarity)."""
        path = self.out / "samples" / f"step_{self.step.steps_done:08d}.png"
        images = self.task.preview(self, path)
        shutil.copyfile(path, self.out / "samples" / "latest.png")
        if writer is not None:
            writer.add_image("samples", make_grid(images.float(), nrow=GRID_COLUMNS, normalize=True, value_range=(-1, 1)),
                             self.step.steps_done)
        loss_plot(self.metrics_file, self.out / "loss.png")
        return path

    def _log(self, message: str) -> None:
        if not self.quiet:
            write(message)


def _logged_step(line: str) -> float:
    """Step of a metrics.jsonl line; a line cut short by a kill counts as after any checkpoint."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


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
        config = load_config(out / "config.yaml")
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
    with RunLock(out) as lock:  # one writer per run directory, taken before any work so a second one is told at once
        if lock.took_over and not quiet:
            write(f"took over the lock of process {lock.took_over.get('pid')}, which is no longer running")
        try:
            return Run(config, out, resume=resume, quiet=quiet, more=more).fit()
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
