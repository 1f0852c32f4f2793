"""`condgan eval` (a run, via its task, or a samples .npz) and `condgan evaluator train`."""

from __future__ import annotations

import argparse

from .. import registry
from ..errors import UserError
from .common import (DEVICE_CHOICES, foreign_flag, add_task_arguments, check_flags_apply, default_out, load_on_device, say_device,
                     seed_int)

MAX_EVALUATOR_EPOCHS = 1000


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _data_cfg(args: argparse.Namespace) -> dict:
    return {"name": args.data, "data_dir": args.data_dir, "classes": _classes(getattr(args, "classes", None)),
            "image_size": args.image_size, "channels": getattr(args, "channels", None)}


def add_eval_commands(subparsers) -> None:
    """Register `eval` and `evaluator train` on an argparse subparsers object."""
    ev = subparsers.add_parser(
        "eval", help="score a run or a samples .npz: FID, per-class FID, conditioning accuracy, ... (report.md); "
                     "each task scores what its models promise",
        description="Evaluate a trained run (condgan eval RUN) or a samples file "
                    "(condgan eval --samples x.npz --data fashion-mnist). Writes report.json, report.md and PNGs; "
                    "every number is shown beside the same metric for real held-out images. Flags marked with a task "
                    "apply to its models only.")
    ev.add_argument("run", nargs="?", help="run directory or checkpoint file to evaluate (or use --samples)")
    ev.add_argument("--samples", metavar="NPZ", help="evaluate images from this .npz (keys images, labels, class_names) instead of a run")
    ev.add_argument("--data", help="dataset the samples should look like: fashion-mnist, mnist, or a folder (needed with --samples, "
                    "and with an export of a model trained on your own folder: exports carry no local paths)")
    ev.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files, if not in the default place")
    ev.add_argument("--classes", metavar="A,B,...", help="comma-separated classes the samples were made for (default: those stored in the .npz)")
    ev.add_argument("--image-size", type=int, metavar="PX", help="resize the dataset to this size (default: the samples' size)")
    ev.add_argument("--seed", type=seed_int, default=0, help="seed for the noise and the metric subsets (default 0)")
    ev.add_argument("--out", metavar="DIR", help="output folder (default RUN/eval, or NAME-eval beside the .npz)")
    ev.add_argument("--device", help=f"where the run's model generates: {DEVICE_CHOICES}. The evaluator's features "
                    "are computed on the CPU (with --samples, only the CPU is used)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars, no device line")
    add_task_arguments("eval", ev)
    ev.set_defaults(func=cmd_eval)

    tool = subparsers.add_parser("evaluator", help="train or inspect the domain classifier used for evaluation",
                                 description="condgan scores images with its own small classifier (no Inception "
                                             "download). It is trained once per dataset and cached in "
                                             "$CONDGAN_CACHE/evaluators (default ~/.cache/condgan/evaluators).")
    actions = tool.add_subparsers(dest="evaluator_action", metavar="ACTION", required=True, help="train: train or show the evaluator")
    train = actions.add_parser("train", help="train (or show the cached) evaluator for a dataset",
                               description="Train the evaluator on the dataset's train split and report its accuracy "
                                           "on the held-out test split. Does nothing if a matching one is cached, "
                                           "unless --force.")
    train.add_argument("--data", default="fashion-mnist", help="fashion-mnist (default), mnist, or a folder of class sub-folders")
    train.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files, if not in the default place")
    train.add_argument("--image-size", type=int, metavar="PX", help="resize images to this size (default: native, 64 for folders)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB); default: as the data")
    train.add_argument("--epochs", type=int, metavar="E", help="training epochs (default 6)")
    train.add_argument("--seed", type=seed_int, default=0, help="training seed (default 0)")
    train.add_argument("--force", action="store_true", help="retrain even if a cached evaluator exists")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_evaluator_train)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise UserError(f"--image-size must be between 8 and 1024, not {args.image_size}")
    if (args.run is None) == (args.samples is None):
        raise UserError("give either a run directory (condgan eval RUN) or --samples FILE.npz --data DATASET")
    if args.samples:
        return _eval_samples(args)
    if args.classes:
        raise UserError("--classes is for --samples; a run knows its own classes")
    args.device = args.device or "auto"
    model = load_on_device(args, say=False)
    task = registry.get(model.task)
    check_flags_apply("eval", args, task)
    if args.data or args.data_dir:
        model.use_data(args.data, args.data_dir)
    if not model.data.get("name"):
        raise UserError(f"{args.run} does not say where its training data is (exports carry no local paths); "
                        f"pass --data FOLDER (and --data-dir if needed)")
    say_device(args, model.device)
    return task.evaluate(model, args, default_out(args.run, args.out))


def _eval_samples(args: argparse.Namespace) -> int:
    """Anyone's class-conditional samples (images, labels, class_names in an NPZ) against a dataset."""
    from ..eval.report import evaluate_samples
    from ..tasks.cgan import print_summary

    if not args.data:
        raise UserError("--samples needs --data: the dataset the samples imitate (fashion-mnist, mnist, or a folder)")
    if args.device not in (None, "auto", "cpu"):
        raise UserError("--device is for a run's model; --samples are scored on the CPU (leave --device out)")
    found = foreign_flag("eval", args)
    if found:
        raise UserError(f"{found[0]} is for a run of {found[1].noun()}; --samples takes --data, --classes and --image-size")
    report = evaluate_samples(args.samples, _data_cfg(args), out_dir=args.out, seed=args.seed, progress=not args.quiet)
    print_summary(report)
    return 0


def cmd_evaluator_train(args: argparse.Namespace) -> int:
    from ..eval.evaluator import get_evaluator

    if args.epochs is not None and not 1 <= args.epochs <= MAX_EVALUATOR_EPOCHS:
        raise UserError(f"--epochs must be between 1 and {MAX_EVALUATOR_EPOCHS}, not {args.epochs}")
    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise UserError(f"--image-size must be between 8 and 1024, not {args.image_size}")
    ev = get_evaluator(_data_cfg(args), epochs=args.epochs, force=args.force, seed=args.seed, progress=not args.quiet)
    info = ev.info
    print(f"evaluator for {info['dataset']}: test accuracy {info['test_accuracy']:.2%} "
          f"({info['epochs']} epochs, seed {info['seed']}, {info['train_seconds']} s) in {ev.path}")
    return 0
