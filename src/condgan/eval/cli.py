"""The `condgan eval` and `condgan evaluator` subcommands.

`add_eval_commands(subparsers)` registers them on the main condgan parser;
"""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..untrusted import MAX_SEED, flag_type

MAX_EVAL_BYTES = 4_000_000_000  # generated images held at once by `condgan eval`
MAX_EVALUATOR_EPOCHS = 1000


seed_int = flag_type(int, lambda v: 0 <= v <= MAX_SEED, "an integer between 0 and 2**63-1")


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _data_cfg(args: argparse.Namespace) -> dict:
    return {"name": args.data, "data_dir": args.data_dir, "classes": _classes(getattr(args, "classes", None)),
            "image_size": args.image_size, "channels": getattr(args, "channels", None)}


def add_eval_commands(subparsers) -> None:
    """Register `eval` and `evaluator train` on an argparse subparsers object."""
    ev = subparsers.add_parser(
        "eval", help="score a run or a samples .npz: FID, per-class FID, conditioning accuracy, ... (report.md); "
                     "a two-stage pipeline: label A/B accuracy, IoU, swap tests",
        description="Evaluate a trained run (condgan eval RUN) or a samples file "
                    "(condgan eval --samples x.npz --data fashion-mnist). Writes report.json, report.md and PNGs; "
                    "every number is shown beside the same metric for real held-out images.")
    ev.add_argument("run", nargs="?", help="run directory or checkpoint file to evaluate (or use --samples)")
    ev.add_argument("--samples", metavar="NPZ", help="evaluate images from this .npz (keys images, labels, class_names) instead of a run")
    ev.add_argument("--data", help="dataset the samples should look like: fashion-mnist, mnist, or a folder (needed with --samples, "
                    "and with an export of a model trained on your own folder: exports carry no local paths)")
    ev.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files, if not in the default place")
    ev.add_argument("--classes", metavar="A,B,...", help="comma-separated classes the samples were made for (default: those stored in the .npz)")
    ev.add_argument("--image-size", type=int, metavar="PX", help="resize the dataset to this size (default: the samples' size)")
    ev.add_argument("--n-per-class", type=int, default=None, metavar="N", help="images to generate per class for a run (default 1000)")
    ev.add_argument("--max-pairs", type=int, metavar="N", help="translator: score only the first N test pairs (default: all)")
    ev.add_argument("--n-per-pair", type=int, default=100, metavar="N", help="two-stage: images to generate for every "
                    "(label A, label B) pair (default 100)")
    ev.add_argument("--pairs", metavar="CSV", help="similarity run: score verification on the held-out rows (every 10th) of "
                    "this CSV of pairs or triplets (default: the run's own --pairs CSV, or its dataset's labelled test split)")
    ev.add_argument("--exemplars", type=int, metavar="N", help="exemplar run: how many test images to use as exemplars (default 200)")
    ev.add_argument("--seed", type=seed_int, default=0, help="seed for the noise and the metric subsets (default 0)")
    ev.add_argument("--out", metavar="DIR", help="output folder (default RUN/eval, or NAME-eval beside the .npz)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
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
    from .report import evaluate_run, evaluate_samples

    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise UserError(f"--image-size must be between 8 and 1024, not {args.image_size}")
    if (args.run is None) == (args.samples is None):
        raise UserError("give either a run directory (condgan eval RUN) or --samples FILE.npz --data DATASET")
    if args.samples:
        if not args.data:
            raise UserError("--samples needs --data: the dataset the samples imitate (fashion-mnist, mnist, or a folder)")
        report = evaluate_samples(args.samples, _data_cfg(args), out_dir=args.out, seed=args.seed, progress=not args.quiet)
    else:
        if args.classes:
            raise UserError("--classes is for --samples; a run knows its own classes")
        import condgan
        from pathlib import Path

        from .report import evaluate_generator

        model = condgan.load(args.run)
        if model.task != "translate" and args.max_pairs is not None:
            raise UserError("--max-pairs is for translators; a class-conditional model takes --n-per-class")
        if args.data or args.data_dir:
            model.use_data(args.data, args.data_dir)
        if not model.data.get("name"):
            raise UserError(f"{args.run} does not say where its training data is (exports carry no local paths); "
                            f"pass --data FOLDER (and --data-dir if needed)")
        if model.task == "translate":
            return _eval_translator(model, args)
        if model.task == "two-stage":
            return _eval_two_stage(model, args)
        if model.task in ("similarity", "exemplar"):
            return _eval_similarity(model, args)
        if args.pairs or args.exemplars is not None:
            raise UserError("--pairs is for similarity runs and --exemplars for exemplar runs")
        image = model.spec["image"]
        n = 1000 if args.n_per_class is None else args.n_per_class
        most = min(100_000, MAX_EVAL_BYTES // (model.num_classes * image.channels * image.height * image.width))
        if not 2 <= n <= most:
            raise UserError(f"--n-per-class must be between 2 and {most:,} for this model, not {n}")
        run = Path(args.run)
        report = evaluate_generator(model, args.out or (run if run.is_dir() else run.parent) / "eval", n,
                                    args.seed, not args.quiet, source=str(run))
    m, f = report["model"], report["real_floor"]
    print(f"FID {m['fid']:.3f} (real {f['fid']:.3f})  mean class FID {m['class_fid_mean']:.3f} (real {f['class_fid_mean']:.3f})  "
          f"conditioning accuracy {m['conditioning_accuracy']:.1%} (real {f['conditioning_accuracy']:.1%})")
    return 0


def _eval_similarity(model, args: argparse.Namespace) -> int:
    """An embedder (verification + retrieval) or an exemplar generator, on held-out images."""
    from pathlib import Path

    from ..config import Config, DataConfig, load_config
    from ..tasks.similarity import load_images, read_csv

    for flag, value in (("--n-per-class", args.n_per_class), ("--max-pairs", args.max_pairs)):
        if value is not None:
            raise UserError(f"{flag} does not apply to a {model.task} model")
    run = Path(args.run)
    out = Path(args.out or (run if run.is_dir() else run.parent) / "eval")
    data = Config(data=DataConfig(**{k: v for k, v in model.data.items() if v is not None}))
    if model.task == "exemplar":
        from .exemplar import evaluate_exemplar

        if args.pairs:
            raise UserError("--pairs is for similarity runs")
        n = 200 if args.exemplars is None else args.exemplars
        if not 2 <= n <= 10_000:
            raise UserError(f"--exemplars must be between 2 and 10,000, not {n}")
        r = evaluate_exemplar(model, data, out, n, seed=args.seed, progress=not args.quiet, source=str(run))
        m = r["model"]
        print(f"similarity to exemplar {m['exemplar_similarity']:.3f} (real neighbours {m['neighbour_similarity']:.3f}, "
              f"random real pairs {m['random_pair_similarity']:.3f})  diversity {m['diversity_ratio']:.2f}x real neighbours"
              + (f"  class agreement {m['class_agreement']:.1%} (real neighbours {m['neighbour_class_agreement']:.1%})"
                 if m.get("class_agreement") is not None else "")
              + f"  suspected copies {m['suspected_copies']:.2%} (real floor {m['suspected_copies_floor']:.2%})")
        print(f"report: {out / 'report.md'}")
        return 0
    from .similarity import evaluate_embedder, evaluate_pairs

    if args.exemplars is not None:
        raise UserError("--exemplars is for exemplar runs")
    pairs, outside = args.pairs, "warn"
    if pairs is None and run.is_dir() and (run / "config.yaml").is_file():
        run_config = load_config(run / "config.yaml", of_run=True)
        pairs, outside = run_config.similarity.pairs, run_config.data.paths_outside
    if pairs:
        fields, _ = read_csv(pairs, "test", model.spec["image"].height, model.spec["image"].channels, outside)
        r = evaluate_pairs(model, fields, out, progress=not args.quiet, source=str(run))
    else:
        test = load_images(data, "test")
        if test.num_classes < 2:
            raise UserError(f"{model.data.get('name')} has no classes to score retrieval with; evaluate on a labelled "
                            f"dataset (--data FOLDER_OF_CLASS_FOLDERS) or on a CSV of pairs (--pairs FILE.csv)")
        r = evaluate_embedder(model, test.images, test.labels, test.class_names, out, seed=args.seed,
                              progress=not args.quiet, source=str(run))
    m = r["model"]
    line = f"verification accuracy {m['accuracy']:.2%} (10-fold CV threshold)"
    if m.get("roc_auc") is not None:
        line += f"  ROC AUC {m['roc_auc']:.4f}  EER {m['eer']:.2%}"
    if m.get("precision_at_1") is not None:
        line += f"  precision@1 {m['precision_at_1']:.2%}  R-precision {m['r_precision']:.2%}  MAP@R {m['map_at_r']:.2%}"
    print(line)
    print(f"report: {out / 'report.md'}")
    return 0


def _eval_translator(tr, args: argparse.Namespace) -> int:
    from pathlib import Path

    from .translation import evaluate_translator

    if args.max_pairs is not None and args.max_pairs < 2:
        raise UserError(f"--max-pairs must be at least 2, not {args.max_pairs}")
    if args.n_per_class is not None:
        raise UserError("--n-per-class is for class-conditional models; a translator is scored on its test pairs (--max-pairs)")
    run = Path(args.run)
    out = args.out or (run if run.is_dir() else run.parent) / "eval"
    r = evaluate_translator(tr, out, seed=args.seed, progress=not args.quiet, source=str(run), max_pairs=args.max_pairs)
    m, f = r["model"], r["real_floor"]
    line = (f"L1 {m['l1']:.4f}  SSIM {m['ssim']:.3f}  sharpness {m['sharpness_ratio']:.2f}x real")
    if m.get("fid") is not None:
        line += f"  FID {m['fid']:.3f} (real {f['fid']:.3f})  recall {m['recall']:.3f} (real {f['recall']:.3f})"
    if m.get("class_accuracy") is not None:
        line += f"  class accuracy {m['class_accuracy']:.1%} (real {f['class_accuracy']:.1%})"
    print(line)
    print(f"report: {Path(out) / 'report.md'}")
    return 0


def _eval_two_stage(ts, args: argparse.Namespace) -> int:
    from pathlib import Path

    from .two_stage import evaluate_two_stage

    run = Path(args.run)
    out = args.out or (run if run.is_dir() else run.parent) / "eval"
    r = evaluate_two_stage(ts, out, n_per_pair=args.n_per_pair, seed=args.seed, progress=not args.quiet, source=str(run))
    m, f = r["model"], r["real_floor"]
    print(f"label A {m['label_a_accuracy']:.1%} (real {f['label_a_accuracy']:.1%})  label B {m['label_b_accuracy']:.1%} "
          f"(real {f['label_b_accuracy']:.1%})  IoU {m['iou']:.3f} (real {f['iou']:.3f})  stage 1 label A "
          f"{m['stage1_accuracy']:.1%} (real {f['stage1_accuracy']:.1%})  FID {m['fid']:.3f} (real {f['fid']:.3f})")
    print(f"report: {Path(out) / 'report.md'}")
    return 0


def cmd_evaluator_train(args: argparse.Namespace) -> int:
    from .evaluator import get_evaluator

    if args.epochs is not None and not 1 <= args.epochs <= MAX_EVALUATOR_EPOCHS:
        raise UserError(f"--epochs must be between 1 and {MAX_EVALUATOR_EPOCHS}, not {args.epochs}")
    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise UserError(f"--image-size must be between 8 and 1024, not {args.image_size}")
    ev = get_evaluator(_data_cfg(args), epochs=args.epochs, force=args.force, seed=args.seed, progress=not args.quiet)
    info = ev.info
    print(f"evaluator for {info['dataset']}: test accuracy {info['test_accuracy']:.2%} "
          f"({info['epochs']} epochs, seed {info['seed']}, {info['train_seconds']} s) in {ev.path}")
    return 0
