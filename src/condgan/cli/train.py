"""`condgan train`: a new run (task, data, config, overrides) or `--resume RUN`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import registry
from ..errors import UserError
from ..untrusted import printable
from .common import add_task_arguments, positive_float, positive_int

# flags that set the run's recipe, and the config key each sets (tasks add their own: Task.flag_keys)
RECIPE_FLAGS = {"task": "task", "data": "data.name", "data_dir": "data.data_dir", "classes": "data.classes",
                "image_column": "data.image_column", "label_column": "data.label_column",
                "arch": "model.arch", "loss": "train.loss", "device": "train.device", "config": None}

EPILOG = ("resuming: `--resume RUN` continues from the last checkpoint. Stop flags given with it (--steps, --epochs,\n"
          "--budget-minutes) mean THIS MUCH MORE and replace the run's old stop conditions; without them the run\n"
          "continues to its original ones. --set may change runtime keys (train.steps/epochs/budget_minutes,\n"
          "log_every, sample_every, checkpoint_every, checkpoint_minutes, keep_checkpoints, on_divergence, device,\n"
          "threads, deterministic); the recipe (model, data, losses, optimiser) is fixed by the checkpoint and\n"
          "changing it is refused with a message naming the key.")


def add_train_command(sub) -> None:
    tasks = registry.tasks()
    t = sub.add_parser("train", help="train a model (class-conditional GAN by default; --task for the others)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Train a model. With no --config, trains the default class-conditional model "
                       "(resnet, hinge loss) on Fashion-MNIST; --task chooses another task.")
    t.add_argument("--task", choices=[task.name for task in tasks], help="what to train: " + "; ".join(
        f"{task.name}: {task.title}" for task in tasks) + " (sets task; default cgan)")
    t.add_argument("--config", help="YAML config file (copy one from configs/); default: built-in defaults")
    t.add_argument("--set", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. --set train.lr_g=1e-4 train.batch_size=128 (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<dataset>-<arch>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    t.add_argument("--data", help="dataset (sets data.name). cgan: 'fashion-mnist', 'mnist', a folder of class "
                   "sub-folders, an .npz (images, labels, class_names), a CSV with columns path,label[,split] (paths "
                   "relative to the CSV), or hf:PATH, a Hugging Face dataset saved with save_to_disk or parquet files "
                   "(pip install 'condgan[hf]'); translate: 'fashion-mnist-edges', 'fashion-mnist-masks', a folder of "
                   "pairs (A/ and B/ with matching names, or A|B side by side in one image) or a CSV with columns "
                   "source,target[,label][,split]; two-stage: 'fashion-mnist-colours' (silhouette masks), 'fashion-mnist-colours-edges' "
                   "(edge maps), or a CSV manifest with columns image, intermediate, label_a, label_b")
    t.add_argument("--image-column", help="--data hf:PATH: the column of images (default image; sets data.image_column)")
    t.add_argument("--label-column", help="--data hf:PATH: the column of labels, a ClassLabel, integers or strings "
                   "(default label; sets data.label_column)")
    t.add_argument("--data-dir", help="folder holding the IDX files of fashion-mnist/mnist (sets data.data_dir)")
    t.add_argument("--classes", help="comma-separated class names to train on, e.g. sandal,sneaker,ankle-boot "
                   "(two-stage: label A values)")
    t.add_argument("--arch", help="model family: resnet (default), dcgan or mlp for cgan; unet for translate (sets model.arch)")
    t.add_argument("--loss", help="adversarial loss: hinge (default), lsgan or bce (sets train.loss)")
    t.add_argument("--budget-minutes", type=positive_float, help="stop after this many minutes of training (with --resume: "
                   "this many more; two-stage: split between the stages by stages.fractions)")
    t.add_argument("--steps", type=positive_int, help="stop after this many generator steps (with --resume: this many more)")
    t.add_argument("--epochs", type=positive_float, help="stop after this many passes over the data (with --resume: this "
                   "many more)")
    t.add_argument("--device", help="where it trains (sets train.device): auto (default): cuda, then mps, then cpu; "
                   "or cpu, cuda, cuda:N, mps")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    add_task_arguments("train", t)
    t.set_defaults(func=cmd_train)


def recipe_flags() -> dict:
    flags = dict(RECIPE_FLAGS)
    for task in registry.tasks():
        flags.update(task.flag_keys)
    return flags


def cmd_train(args) -> int:
    from ..config import load_config
    from ..training import train

    stops = {"steps": args.steps, "epochs": args.epochs, "budget_minutes": args.budget_minutes}
    flags = recipe_flags()
    if args.resume:
        given = [f"--{flag.replace('_', '-')}" for flag in flags if getattr(args, flag, None) is not None and flag != "device"]
        if given:
            raise UserError(f"{', '.join(given)} cannot be used with --resume: the run's recipe is fixed by its checkpoint "
                            f"(start a new run with --config {Path(args.resume) / 'config.yaml'} to change it)")
        overrides = list(args.set) + ([f"train.device={args.device}"] if args.device else [])
        summary = train(out=args.resume, resume=True, stop_overrides=stops, quiet=args.quiet, overrides=overrides)
    else:
        if args.classes is not None and not [c for c in args.classes.split(",") if c.strip()]:
            raise UserError("--classes is empty; name at least 2 classes (e.g. --classes sandal,sneaker) or leave it out")
        overrides = list(args.set) + [f"{key}={getattr(args, flag)}" for flag, key in flags.items()
                                      if key and getattr(args, flag, None) is not None]
        config = load_config(args.config, overrides)
        if all(v is None for v in stops.values()) and config.train.steps is None and config.train.epochs is None \
                and config.train.budget_minutes is None:
            stops["budget_minutes"] = 10.0
            print("no --steps/--epochs/--budget-minutes given: training for 10 minutes", file=sys.stderr)
        out = args.out or f"runs/{Path(config.data.name).name}-{config.model.arch}"
        summary = train(config, out, stop_overrides=stops, quiet=args.quiet)
    if summary.get("rank", 0) != 0:  # under torchrun, rank 0 reports for every process
        return 130 if summary["interrupted"] else 0
    report(summary)
    return 130 if summary["interrupted"] else 0


def report(summary: dict) -> None:
    """Where everything is, and what to run next (the task says)."""
    interrupted = " — interrupted, checkpoint saved" if summary["interrupted"] else ""
    if "stages" in summary:  # a run made of several runs: one line each
        print()
        for stage, s in summary["stages"].items():
            print(f"{stage}: {s['steps']} steps ({s['epochs']} epochs, {s['train_minutes']} min, {s['images_per_s']} "
                  f"images/s) in {s['run']}")
        print(f"trained {len(summary['stages'])} stage(s), {summary['steps']} steps in {summary['train_minutes']} min{interrupted}")
    else:
        print(f"\ntrained {summary['steps']} steps ({summary['epochs']} epochs, {summary['train_minutes']} min, "
              f"{summary['images_per_s']} images/s){interrupted}")
    print(f"  run directory : {summary['run']}")
    print(f"  preview       : {summary['grid']}")
    print(f"  loss plot     : {summary['loss_plot']}")
    print(f"  checkpoint    : {summary['checkpoint']}")
    print(f"  next          : {registry.get(summary['task']).next_hint(printable(summary['run'], 200), summary)}")
