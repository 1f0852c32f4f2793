"""train.lr_decay: every learning rate of a run falls linearly to 0 over the last share of the run.

How far a run is comes from its stop conditions, whichever is nearer: steps done over the target (train.steps, or
train.epochs in steps) or training time over train.budget_minutes. The scale is set before each step from that
progress alone, and the base rates are taken from the optimisers as the step built them from the config (before a
checkpoint is loaded), so a resumed or rolled-back run gets the same rates as one that never stopped. With
train.lr_decay 0 nothing is touched: the rates are the config's (or the checkpoint's), as before.
"""

from __future__ import annotations

from ..errors import ConfigError


def run_progress(steps_done: int, target_steps: int | None, elapsed_s: float, budget_minutes: float | None) -> float:
    """How far a run is, 0 to 1 (or past 1): the larger share done of its step target and of its time budget."""
    shares = [steps_done / target_steps] if target_steps else []
    if budget_minutes:
        shares.append(elapsed_s / (budget_minutes * 60))
    return max(shares, default=0.0)


def lr_scale(progress: float, share: float) -> float:
    """The learning rates' factor at `progress`: 1 until the last `share` of the run, then linearly down to 0 at
    its end (share 0: always 1)."""
    if share <= 0:
        return 1.0
    return min(1.0, max(0.0, (1.0 - progress) / share))


class LrDecay:
    """Sets each optimiser's learning rates to base × lr_scale(progress) before a step. `current` is the scale set
    last (what metrics.jsonl logs as lr_scale)."""

    def __init__(self, step, share: float):
        self.share, self.current = share, 1.0
        self.bases = []  # (optimiser, the base rate of each of its parameter groups)
        if not share:
            return
        if not hasattr(step, "optimizers"):
            raise ConfigError(f"train.lr_decay needs a step that names its optimisers ({type(step).__name__} has no "
                              f"optimizers()); set train.lr_decay=0")
        # A loaded checkpoint replaces an optimiser's parameter groups (their rates as saved, maybe decayed), so
        # the groups are looked up again at every step and only these base rates are kept.
        self.bases = [(opt, [group["lr"] for group in opt.param_groups]) for opt in step.optimizers()]

    def apply(self, run) -> float:
        """Scale the rates for `run`'s next step (a trainer.Run); returns the scale."""
        if not self.share:
            return 1.0
        t = run.config.train
        self.current = lr_scale(run_progress(run.step.steps_done, run.target_steps(), run.elapsed, t.budget_minutes),
                                self.share)
        for opt, bases in self.bases:
            for group, base in zip(opt.param_groups, bases):
                group["lr"] = base * self.current
        return self.current
