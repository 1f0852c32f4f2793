"""A run's directory and checkpoints: creating it, resuming from it (the same task, architecture, recipe and
data, or a clear refusal), rolling back after a NaN, and saving. A mixin of trainer.Run, which holds the state
these read and write; every checkpoint goes through checkpoint.Checkpoint, the one owner of the format."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from torchvision.utils import make_grid

from .. import untrusted
from ..conditions import Spec
from ..config import recipe_change, save_config
from ..errors import CheckpointError, ConfigError, DivergenceError, UserError
from ..visual import GRID_COLUMNS, loss_plot
from . import checkpoint as ckpt

MAX_ROLLBACKS = 3


class RunFiles:
    """Run's methods that read and write its directory (see trainer.Run for the attributes)."""

    _standing_at: int | None = None  # the step at which G_ema last measured its BatchNorm statistics

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

    def _resumable(self) -> ckpt.Checkpoint:
        """The latest checkpoint, if this config continues it: the same task and architecture, and the recipe
        it was trained with. An edited RUN/config.yaml would be half ignored (the optimisers' learning rates
        come from the checkpoint) and then recorded as if it had been used, so it is refused by name."""
        cp = ckpt.Checkpoint.latest(self.out / "checkpoints")
        if cp.task != self.config.task:
            raise CheckpointError(f"{cp.path} is a {cp.task!r} run but the config asks for task {self.config.task!r}")
        if cp.arch != self.config.model.arch:
            raise CheckpointError(f"{cp.path} is a {cp.arch!r} model but the config asks for {self.config.model.arch!r}")
        change = recipe_change(cp.config, self.config)
        if change:
            key, old, new = change
            yaml_file = self.out / "config.yaml"
            raise ConfigError(f"{yaml_file} sets {key} to {untrusted.shown(new)}, but the run was trained with "
                              f"{untrusted.shown(old)} ({cp.path.name}); a resumed run keeps its recipe (only runtime keys "
                              f"may change), so undo the edit, or start a new run with it: condgan train --config "
                              f"{yaml_file} --out NEW")
        return cp

    def _resume(self, more: dict | None, cp: ckpt.Checkpoint) -> None:
        saved_spec = Spec.from_dict(cp.spec)
        if saved_spec != self.spec:
            if saved_spec.get("label") != self.spec.get("label"):
                raise CheckpointError(f"{cp.path} was trained on classes {list(saved_spec['label'].class_names) if 'label' in saved_spec else None}, "
                                      f"but the data now has {self.class_names or None}")
            raise CheckpointError(f"{cp.path} was trained on data shaped {saved_spec.to_dict()}, but the data is now {self.spec.to_dict()}")
        self._restore(cp)
        self._extend_stops(more or {})
        if not self.main:
            return
        # Drop log lines written after this checkpoint: they describe lost steps.
        if self.metrics_file.exists():
            kept = [ln for ln in self.metrics_file.read_text().splitlines() if _logged_step(ln) <= self.step.steps_done]
            self.metrics_file.write_text("".join(ln + "\n" for ln in kept))
        save_config(self.config, self.out / "config.yaml")
        self._log(f"resumed from {cp.path} at step {self.step.steps_done}")

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

    def _restore(self, cp: ckpt.Checkpoint) -> None:
        try:
            for part, weights in cp.state.items():  # G, D, G_ema (joint: G1, D1, ...; similarity: the embedder)
                if not part.startswith("opt") and isinstance(weights, dict):
                    untrusted.finite_weights(weights, f"checkpoint ({part})")
            self._check_weights_fit(cp.state)
            self.step.load_state_dict(cp.state)
            self.noise_gen.set_state(cp.rng["noise"])
            torch.set_rng_state(cp.rng["torch"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not match this model ({str(e).splitlines()[0][:160]})") from None
        self.noise_salt = int(cp.rng.get("salt", 0))
        if self.device.type == "cuda" and "cuda" in cp.rng:
            torch.cuda.set_rng_state(cp.rng["cuda"], self.device)
        self.batches_done, self.elapsed = cp.batches_done, cp.elapsed

    def _check_weights_fit(self, state: dict) -> None:
        """Name the tensors that do not fit (torch's own message is cut to its first line, which names none)."""
        for name, net in self.step.networks().items():
            for part in (name, name + "_ema"):  # a generator's EMA copy has its shapes
                misfit = untrusted.weights_misfit(net, state[part]) if isinstance(state.get(part), dict) else None
                if misfit:
                    raise CheckpointError(f"checkpoint does not match this model: {part} {misfit}")

    def save_checkpoint(self) -> Path:
        if hasattr(self.step, "before_save"):  # e.g. the similarity threshold, chosen on the current weights
            self.step.before_save()
        if not self.step.weights_finite():
            raise DivergenceError("weights contain NaN/Inf; not checkpointing them (the previous checkpoint is kept)")
        self.standing_statistics()  # G_ema's own BatchNorm statistics, not G's (train.standing_stats)
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state(), "salt": self.noise_salt}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        cp = ckpt.Checkpoint(task=self.config.task, spec=self.spec.to_dict(), config=self.config.to_dict(),
                             networks={name: net.describe() for name, net in self.step.networks().items()},
                             state=self.step.state_dict(), rng=rng, batches_done=self.batches_done,
                             elapsed=self.elapsed, step=self.step.steps_done,
                             components=self.step.components() if hasattr(self.step, "components") else None)
        path = cp.save(ckpt.checkpoint_path(self.ckpt_dir, self.step.steps_done))
        ckpt.prune(self.ckpt_dir, self.config.train.keep_checkpoints)
        return path

    def standing_statistics(self) -> None:
        """train.standing_stats: before G_ema is shown or saved, it measures its own BatchNorm statistics
        (GANStep.standing_statistics) over that many images, with G's conditions from random training items.
        Drawn from a stream seeded by the step, so training, resume and the checkpoints' weights are unchanged.
        Off where G_ema is G itself (train.ema_decay 0: the textbook recipes)."""
        n, step = self.config.train.standing_stats, self.step
        if not n or not getattr(step, "has_ema", False) \
                or self._standing_at == step.steps_done:
            return
        g = torch.Generator().manual_seed(self._seed("standing", step.steps_done))
        batches = []
        for k in range(math.ceil(n / self.batch_size)):
            idx = torch.randint(self.n_items, (min(self.batch_size, n - k * self.batch_size),), generator=g)
            rows = self._rows(idx, k, step.g_fields)  # G's conditions only: no image read for nothing
            batches.append([rows[f] for f in step.g_fields])
        step.standing_statistics(batches, g)
        self._standing_at = step.steps_done

    def _write_metrics(self, writer, step: int, losses: dict, rate: float) -> None:
        record = {"step": step, **{k: round(v, 5) for k, v in losses.items()}, "images_per_s": round(rate, 1),
                  "threads": torch.get_num_threads(), "elapsed_s": round(self.elapsed, 1), "epoch": round(self.batches_done / self.batches_per_epoch, 3)}
        if self.config.train.lr_decay:  # the factor on every learning rate at this step (train.lr_decay)
            record["lr_scale"] = round(self.lr_decay.current, 5)
        with open(self.metrics_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        for k, v in record.items():
            if k != "step":
                writer.add_scalar(k, v, step)

    @torch.no_grad()
    def write_grid(self, writer=None) -> Path:
        """The task's preview: one row per class (cgan), source | output | target (translate),
        exemplar | outputs (exemplar), query | nearest (similarity)."""
        path = self.out / "samples" / f"step_{self.step.steps_done:08d}.png"
        self.standing_statistics()
        images = self.task.preview(self, path)
        shutil.copyfile(path, self.out / "samples" / "latest.png")
        if writer is not None:
            writer.add_image("samples", make_grid(images.float(), nrow=GRID_COLUMNS, normalize=True, value_range=(-1, 1)),
                             self.step.steps_done)
        loss_plot(self.metrics_file, self.out / "loss.png")
        return path

    def _handle_divergence(self, reason: str) -> None:
        latest = ckpt.list_checkpoints(self.ckpt_dir)
        if self.config.train.on_divergence == "rollback" and latest and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            cp = ckpt.Checkpoint.latest(self.ckpt_dir)
            self._restore(cp)  # (a rollback keeps this session's stop conditions)
            torch.randn(1000 * self.rollbacks, generator=self.noise_gen)  # new noise, so the same NaN is not replayed
            self.noise_salt += self.rollbacks
            self._log(f"{reason}; rolled back to {cp.path} (rollback {self.rollbacks}/{MAX_ROLLBACKS})")
            return
        where = f"the last good checkpoint is {latest[-1]}" if latest else "no checkpoint had been written yet"
        raise DivergenceError(f"training diverged: {reason}. Stopped without saving the bad weights; {where}. "
                              f"Try lower learning rates (--set train.lr_d=1e-4) or train.on_divergence=rollback.")


def _logged_step(line: str) -> float:
    """Step of a metrics.jsonl line; a line cut short by a kill counts as after any checkpoint."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf
