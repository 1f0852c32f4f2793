"""A two-stage pipeline: its stage runs trained in turn, each by the one loop (trainer.Run).

    PIPELINE/config.yaml     the pipeline's config (stages.stage: all); copy it to start a similar one
    PIPELINE/stage1/         G1 alone on the real intermediates      } ordinary run directories:
    PIPELINE/stage2/         G2 alone on the real intermediates      } config.yaml, metrics, previews,
    PIPELINE/joint/          G1 -> G2 fine-tuned together            } checkpoints, summary.json
    PIPELINE/summary.json    every stage's summary

A --budget-minutes is split between the stages by stages.fractions; --steps and
--epochs apply to each stage. `stages.stage` other than `all` trains that stage
alone into PIPELINE/<stage> (the joint stage needs the two others to exist).
Resuming the pipeline skips finished stages and continues the first unfinished
one; stop flags given then ("this much more") apply to that stage, or to the
joint stage when every stage has finished.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ...config import RUNTIME_KEYS, Config, load_config, save_config
from ...errors import UserError
from ...training import checkpoint as ckpt
from ...training.trainer import Run

ORDER = ("stage1", "stage2", "joint")


def stage_budgets(config: Config) -> dict[str, dict]:
    """Stop conditions of each stage of a pipeline: its share of the budget, the steps/epochs as given."""
    t, shares = config.train, config.stages.fractions
    total = sum(shares)
    out = {}
    for stage, share in zip(ORDER, shares):
        if share > 0:
            out[stage] = {"steps": t.steps, "epochs": t.epochs,
                          "budget_minutes": t.budget_minutes * share / total if t.budget_minutes else None}
    return out


def finished(run_dir: Path) -> bool:
    """A stage run that reached its stop condition: its summary describes its latest checkpoint, uninterrupted."""
    summary, found = run_dir / "summary.json", ckpt.list_checkpoints(run_dir / "checkpoints")
    if not summary.is_file() or not found:
        return False
    s = json.loads(summary.read_text())
    return not s.get("interrupted") and found[-1] == ckpt.checkpoint_path(run_dir / "checkpoints", s["steps"])


def train_stages(config: Config, out: Path, quiet: bool = False, resume: bool = False, more: dict | None = None) -> dict:
    """Train the stage(s) config.stages.stage names into out/<stage>; returns the pipeline's summary."""


    out = Path(out)
    whole = config.stages.stage == "all"
    plan = stage_budgets(config) if whole else {config.stages.stage: {
        k: getattr(config.train, k) for k in ("steps", "epochs", "budget_minutes")}}
    if not resume:
        taken = [s for s in plan if ckpt.list_checkpoints(out / s / "checkpoints")]
        if taken:
            raise UserError(f"{out / taken[0]} already holds a run; continue the pipeline with --resume {out}"
                            if whole else f"{out / taken[0]} already holds a run; continue it with --resume {out / taken[0]}")
        if whole:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.yaml")
    summaries, extra = {}, dict(more or {})
    for stage, stops in plan.items():
        run_dir = out / stage
        if resume and finished(run_dir) and not (extra and stage == list(plan)[-1]):
            summaries[stage] = json.loads((run_dir / "summary.json").read_text())
            continue
        if resume and ckpt.list_checkpoints(run_dir / "checkpoints"):
            stage_config = _with_runtime_keys(load_config(run_dir / "config.yaml", of_run=True), config)
            run = Run(stage_config, run_dir, resume=True, quiet=quiet, more=extra)
            extra = {}  # "this much more" is for the first stage that continues
        else:
            stage_config = copy.deepcopy(config)
            stage_config.stages.stage = stage
            for key, value in stops.items():
                setattr(stage_config.train, key, value)
            stage_config.validate()
            if not quiet:
                print(f"condgan: two-stage pipeline {out}: training {stage}", flush=True)
            run = Run(stage_config, run_dir, quiet=quiet)
        summaries[stage] = run.fit()
        if summaries[stage]["interrupted"]:
            break
    return _summary(out, summaries, whole)


def _with_runtime_keys(stage_config: Config, pipeline: Config) -> Config:
    """A stage's own recipe, with the runtime keys (device, threads, logging, ...) the pipeline now asks for."""
    for key in RUNTIME_KEYS - {"train.steps", "train.epochs", "train.budget_minutes"}:
        section, name = key.split(".")
        setattr(getattr(stage_config, section), name, getattr(getattr(pipeline, section), name))
    return stage_config.validate()


def _summary(out: Path, summaries: dict, whole: bool) -> dict:
    last = summaries[list(summaries)[-1]]
    summary = {**last, "run": str(out), "task": "two-stage", "stages": summaries,
               "steps": sum(s["steps"] for s in summaries.values()),
               "train_minutes": round(sum(s["train_minutes"] for s in summaries.values()), 2),
               "interrupted": any(s["interrupted"] for s in summaries.values())}
    if whole:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
