"""A training run: data, models, the GAN step, logs, grids and checkpoints.

Run directory layout (everything a user or a resumed run needs):
    config.yaml        resolved config (copy it to start a similar run)
    metrics.jsonl      one JSON line per log step; tb/ has the same for TensorBoard
    samples/           class grids (one row per class, fixed noise); latest.png
    loss.png           D and G losses
    checkpoints/       step_XXXXXXXX.pt, the last `keep_checkpoints` of them
    summary.json       steps, images/s, parameter counts, where things are
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from pathlib import Path

import torch
from torchvision.utils import make_grid
from tqdm import tqdm

from ..config import Config, load_config, save_config
from ..data import load_dataset, to_float
from ..errors import CheckpointError, ConfigError, DivergenceError, UserError
from ..models import build_discriminator, build_generator, count_parameters
from ..visual import loss_plot, save_grid
from . import checkpoint as ckpt
from .loop import GANStep

MAX_GRID_ROWS = 20
GRID_COLUMNS = 8
MAX_ROLLBACKS = 3


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA GPU is available; use train.device=cpu")
    return torch.device(name)


class Run:
    """Everything one training run holds; `fit()` trains until a stop condition."""

    def __init__(self, config: Config, out: Path, resume: bool = False, quiet: bool = False):
        self.config, self.out, self.quiet = config, Path(out), quiet
        t = config.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True)
        self.device = resolve_device(t.device)
        self.data = load_dataset(config.data.name, "train", config.data.data_dir, config.data.classes,
                                 config.data.image_size, config.data.channels, config.data.bad_files)
        # Record what was resolved from the data, so sampling needs no dataset.
        config.data.image_size, config.data.channels = self.data.image_size, self.data.channels
        self.class_names = self.data.class_names
        self.batch_size = min(t.batch_size, len(self.data))
        self.batches_per_epoch = len(self.data) // self.batch_size
        self.images = self.data.images.to(self.device)
        self.labels = self.data.labels.to(self.device)

        torch.manual_seed(t.seed)
        m = config.model
        G = build_generator(m.arch, self.data.num_classes, m.z_dim, self.data.channels, self.data.image_size, m.g_width)
        D = build_discriminator(m.arch, self.data.num_classes, self.data.channels, self.data.image_size, m.d_width)
        if self.device.type == "cpu":  # oneDNN convolutions run ~1.2-1.5x faster in NHWC on CPU
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        self.gan = GANStep(G.to(self.device), D.to(self.device), loss=t.loss, lr_g=t.lr_g, lr_d=t.lr_d,
                           betas=(t.beta1, t.beta2), ema_decay=t.ema_decay, ema_start=t.ema_start,
                           augment_policy=t.augment, z_dim=m.z_dim, num_classes=self.data.num_classes,
                           aux_weight=config.aux_weight(), diversity_weight=t.diversity_weight)
        self.noise_gen = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = torch.randn(GRID_COLUMNS, m.z_dim, generator=torch.Generator().manual_seed(t.seed + 2))
        self.batches_done = 0
        self.elapsed = 0.0
        self._perm_epoch, self._perm = -1, None
        self.rollbacks = 0

        self.ckpt_dir = self.out / "checkpoints"
        self.metrics_file = self.out / "metrics.jsonl"
        if resume:
            self._resume()
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

    def _resume(self) -> None:
        state, path = ckpt.load_latest(self.ckpt_dir)
        saved_arch = state["config"]["model"]["arch"]
        if saved_arch != self.config.model.arch:
            raise CheckpointError(f"{path} is a {saved_arch!r} model but the config asks for {self.config.model.arch!r}")
        if state["class_names"] != self.class_names:
            raise CheckpointError(f"{path} was trained on classes {state['class_names']}, but the data now has {self.class_names}")
        self._restore(state)
        # Drop log lines written after this checkpoint: they describe lost steps.
        if self.metrics_file.exists():
            kept = [ln for ln in self.metrics_file.read_text().splitlines() if _logged_step(ln) <= self.gan.steps_done]
            self.metrics_file.write_text("".join(ln + "\n" for ln in kept))
        save_config(self.config, self.out / "config.yaml")
        self._log(f"resumed from {path} at step {self.gan.steps_done}")

    def _restore(self, state: dict) -> None:
        try:
            self.gan.load_state_dict(state["gan"])
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"checkpoint does not match this model ({str(e).splitlines()[0][:160]})") from None
        self.noise_gen.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.batches_done = int(state["batches_done"])
        self.elapsed = float(state["elapsed"])

    def save_checkpoint(self) -> Path:
        if not self.gan.weights_finite():
            raise DivergenceError("weights contain NaN/Inf; not checkpointing them (the previous checkpoint is kept)")
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        state = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "config": self.config.to_dict(),
                 "class_names": list(self.class_names), "gan": self.gan.state_dict(), "rng": rng,
                 "batches_done": self.batches_done, "elapsed": self.elapsed, "step": self.gan.steps_done}
        path = ckpt.checkpoint_path(self.ckpt_dir, self.gan.steps_done)
        ckpt.atomic_save(state, path)
        ckpt.prune(self.ckpt_dir, self.config.train.keep_checkpoints)
        return path

    # ----- data order ----------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number k is a pure function of (seed, k): resuming needs only the counter."""
        epoch, i = divmod(self.batches_done, self.batches_per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(len(self.data), generator=g).to(self.device), epoch
        idx = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
        self.batches_done += 1
        images = to_float(self.images[idx])
        if self.device.type == "cpu":
            images = images.contiguous(memory_format=torch.channels_last)
        return images, self.labels[idx]

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
        return (target is not None and self.gan.steps_done >= target) or (budget is not None and self.elapsed >= budget * 60)

    # ----- the loop ------------------------------------------------------------------------
    def fit(self) -> dict:
        t = self.config.train
        if self.target_steps() is None and t.budget_minutes is None:
            raise ConfigError("no stop condition: give --steps, --epochs or --budget-minutes")
        stop_requested = []
        previous = {s: signal.signal(s, lambda *_: stop_requested.append(1)) for s in (signal.SIGTERM,)}
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.out / "tb"), purge_step=self.gan.steps_done + 1)
        bar = tqdm(total=self.target_steps(), initial=self.gan.steps_done, unit="step", dynamic_ncols=True,
                   disable=self.quiet, desc=f"training {self.config.model.arch}")
        last_ckpt_time, images_seen, t0 = time.monotonic(), 0, time.monotonic()
        rate_start, rate_images = time.monotonic(), 0
        interrupted = False
        try:
            while not self._should_stop() and not stop_requested:
                start = time.monotonic()
                batches = [self._next_batch() for _ in range(t.d_steps)]
                try:
                    losses = self.gan.step(batches, self.noise_gen)
                except FloatingPointError as e:
                    self._handle_divergence(str(e))
                    continue
                self.elapsed += time.monotonic() - start
                step = self.gan.steps_done
                n_images = sum(len(b[0]) for b in batches)
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
                    bar.set_postfix(d=f"{losses['loss_d']:.3f}", g=f"{losses['loss_g']:.3f}", img_s=f"{rate:.0f}",
                                    min=f"{self.elapsed / 60:.1f}")
                if step % t.sample_every == 0:
                    self.write_grid(writer)
                if step % t.checkpoint_every == 0 or time.monotonic() - last_ckpt_time > t.checkpoint_minutes * 60:
                    self.save_checkpoint()
                    last_ckpt_time = time.monotonic()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        final_ckpt = self.save_checkpoint()
        grid = self.write_grid(writer)
        writer.close()
        wall = time.monotonic() - t0
        summary = {
            "run": str(self.out), "arch": self.config.model.arch, "loss": t.loss, "steps": self.gan.steps_done,
            "epochs": round(self.batches_done / self.batches_per_epoch, 3), "train_minutes": round(self.elapsed / 60, 2),
            "images_per_s": round(images_seen / max(wall, 1e-9), 1),
            "params_G": count_parameters(self.gan.G), "params_D": count_parameters(self.gan.D),
            "class_names": self.class_names, "checkpoint": str(final_ckpt), "grid": str(grid),
            "loss_plot": str(self.out / "loss.png"), "interrupted": interrupted or bool(stop_requested),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _handle_divergence(self, reason: str) -> None:
        latest = ckpt.list_checkpoints(self.ckpt_dir)
        if self.config.train.on_divergence == "rollback" and latest and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            state, path = ckpt.load_latest(self.ckpt_dir)
            self._restore(state)
            torch.randn(1000 * self.rollbacks, generator=self.noise_gen)  # new noise, so the same NaN is not replayed
            self._log(f"{reason}; rolled back to {path} (rollback {self.rollbacks}/{MAX_ROLLBACKS})")
            return
        where = f"the last good checkpoint is {latest[-1]}" if latest else "no checkpoint had been written yet"
        raise DivergenceError(f"training diverged: {reason}. Stopped without saving the bad weights; {where}. "
                              f"Try lower learning rates (--set train.lr_d=1e-4) or train.on_divergence=rollback.")

    @torch.no_grad()
    def write_grid(self, writer=None) -> Path:
        rows = min(self.data.num_classes, MAX_GRID_ROWS)
        labels = torch.arange(rows).repeat_interleave(GRID_COLUMNS).to(self.device)
        z = self.fixed_noise.repeat(rows, 1).to(self.device)
        images = self.gan.G_ema(z, labels).cpu()
        path = save_grid(images, self.out / "samples" / f"step_{self.gan.steps_done:08d}.png", nrow=GRID_COLUMNS,
                         row_names=self.class_names[:rows], title=f"step {self.gan.steps_done}: one row per class, fixed noise")
        shutil.copyfile(path, self.out / "samples" / "latest.png")
        if writer is not None:
            writer.add_image("samples", make_grid(images, nrow=GRID_COLUMNS, normalize=True, value_range=(-1, 1)),
                             self.gan.steps_done)
        loss_plot(self.metrics_file, self.out / "loss.png")
        return path

    def _log(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message)


def _logged_step(line: str) -> float:
    """Step of a metrics.jsonl line; a line cut short by a kill counts as after any checkpoint."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def train(config: Config | None = None, out: str | Path = "runs/default", resume: bool = False,
          stop_overrides: dict | None = None, quiet: bool = False) -> dict:
    """Train (or resume) a run and return its summary. `stop_overrides` may set steps/epochs/budget_minutes."""
    out = Path(out)
    if resume:
        if not (out / "config.yaml").is_file():
            raise UserError(f"cannot resume: {out} is not a condgan run directory (no config.yaml)")
        config = load_config(out / "config.yaml")
    config = config or Config()
    for key, value in (stop_overrides or {}).items():
        if value is not None:
            setattr(config.train, key, value)
    config.validate()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return Run(config, out, resume=resume, quiet=quiet).fit()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
