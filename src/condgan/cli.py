"""Command line: `condgan train | sample | apply | export | eval | evaluator`.

One style for every task: the verb comes first, the task is part of the run
(`condgan train --task translate ...`), and every later command reads the task
from the run it is given.

Every user mistake surfaces as one line on stderr and exit code 2; a
diverged run exits 3; Ctrl-C saves a checkpoint first and exits 130.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .errors import DivergenceError, UserError

EXAMPLES = """examples:
  condgan train --budget-minutes 10 --out runs/fmnist          # default model on Fashion-MNIST
  condgan train --config configs/fashion-mnist.yaml --set train.batch_size=128
  condgan train --data path/to/shoes --classes sandal,boot --out runs/shoes
  condgan train --resume runs/fmnist --budget-minutes 5        # five more minutes
  condgan sample runs/fmnist --label sandal --n 64 --out sandals.png
  condgan sample runs/fmnist --n-per-class 1000 --out samples.npz
  condgan eval runs/fmnist
translation (a mask / edge map / sketch in, an image out):
  condgan train --task translate --data fashion-mnist-edges --budget-minutes 10 --out runs/edges
  condgan train --task translate --data path/to/pairs --direction BtoA --out runs/mine   # A/ and B/ folders
  condgan apply runs/edges my_edges/ --out translated/          # every image of a folder, same names
  condgan apply runs/edges --split test --out test.npz         # outputs, sources, targets as arrays
  condgan sample runs/edges --out sheet.png                    # source | output | target sheet
  condgan eval runs/edges                                      # L1, SSIM, sharpness, FID, class accuracy
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="condgan", description="Label-conditioned image generation.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"condgan {__import__('condgan').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser("train", help="train a model (class-conditional GAN, or translator with --task translate)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a model. With no --config, trains the default class-conditional model "
                       "(resnet, hinge loss) on Fashion-MNIST; --task translate trains a paired image-to-image "
                       "translator (U-Net + patch D, adversarial + L1).",
                       epilog="resuming: `--resume RUN` continues from the last checkpoint. Stop flags given with it "
                       "(--steps, --epochs,\n--budget-minutes) mean THIS MUCH MORE and replace the run's old stop "
                       "conditions; without them the run\ncontinues to its original ones. --set may change runtime keys "
                       "(train.steps/epochs/budget_minutes,\nlog_every, sample_every, checkpoint_every, checkpoint_minutes, "
                       "keep_checkpoints, on_divergence, device,\nthreads, deterministic); the recipe (model, data, "
                       "losses, optimiser) is fixed by the checkpoint and\nchanging it is refused with a message naming the key.")
    t.add_argument("--task", choices=("cgan", "translate"), help="what to train: cgan (class-conditional generation, "
                   "default) or translate (paired image-to-image translation) (sets task)")
    t.add_argument("--config", help="YAML config file (copy one from configs/); default: built-in defaults")
    t.add_argument("--set", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. --set train.lr_g=1e-4 train.batch_size=128 (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<dataset>-<arch>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    t.add_argument("--data", help="dataset (sets data.name). cgan: 'fashion-mnist', 'mnist', or a folder of class "
                   "sub-folders; translate: 'fashion-mnist-edges', 'fashion-mnist-masks', or a folder of pairs "
                   "(A/ and B/ with matching names, or A|B side by side in one image)")
    t.add_argument("--direction", choices=("AtoB", "BtoA"), help="translate: AtoB (default: A is the source) or BtoA (sets data.direction)")
    t.add_argument("--data-dir", help="folder holding the IDX files of fashion-mnist/mnist (sets data.data_dir)")
    t.add_argument("--classes", help="comma-separated class names to train on, e.g. sandal,sneaker,ankle-boot")
    t.add_argument("--arch", help="model family: resnet (default), dcgan or mlp for cgan; unet for translate (sets model.arch)")
    t.add_argument("--loss", help="adversarial loss: hinge (default), lsgan or bce (sets train.loss)")
    t.add_argument("--budget-minutes", type=float, help="stop after this many minutes of training (with --resume: this many more)")
    t.add_argument("--steps", type=int, help="stop after this many generator steps (with --resume: this many more)")
    t.add_argument("--epochs", type=float, help="stop after this many passes over the data (with --resume: this many more)")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N (sets train.device)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate images from a trained model (a translator: a source | output | target sheet)",
                       description="Generate images. Writes a PNG grid (one row per label) or, for a .npz --out, "
                       "an NPZ with images (uint8 N×H×W[×C]), labels (int64) and class_names for external tools. "
                       "For a translator: a sheet of --n pairs of a data split, source | output | target.")
    s.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder")
    s.add_argument("--split", default="test", choices=("train", "test"), help="translator: which split's pairs to show (default test)")
    s.add_argument("--label", action="append", help="class name or index (repeatable or comma-separated; default: every class)")
    s.add_argument("--n", type=int, default=8, help="images per label in a PNG grid (default 8)")
    s.add_argument("--n-per-class", type=int, help="images per class for an NPZ export")
    s.add_argument("--seed", type=int, default=0, help="random seed: same seed, same images (default 0)")
    s.add_argument("--out", default="samples.png", help="output file: .png for a grid, .npz for arrays (default samples.png)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.set_defaults(func=cmd_sample)

    a = sub.add_parser("apply", help="translate images with a trained translator",
                       description="Translate your own images (files or folders; outputs keep the input names, as PNG) "
                       "or a whole data split (--split test --out x.npz writes images = outputs, sources, targets, "
                       "uint8 N×H×W or N×H×W×3, plus labels and class_names when the data has classes).")
    a.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder of a translator")
    a.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images to translate")
    a.add_argument("--split", choices=("train", "test"), help="translate this split of the run's own dataset instead of INPUTs")
    a.add_argument("--out", required=True, help="output folder for INPUTs, or an .npz file for --split")
    a.add_argument("--label", help="class name for every input, for translators trained with model.use_label=true")
    a.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same outputs (default 0)")
    a.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    a.set_defaults(func=cmd_apply)

    e = sub.add_parser("export", help="save a run's generator as safetensors + JSON (shareable, safe to load)",
                       description="Write OUT/condgan.json (task, fields, class names, data) and OUT/generator.safetensors; "
                       "condgan.load(OUT) gives the same pipeline as the run.")
    e.add_argument("run", help="run directory or checkpoint file")
    e.add_argument("out", help="folder to write condgan.json and generator.safetensors into (not the run directory)")
    e.set_defaults(func=cmd_export)

    from .eval.cli import add_eval_commands

    add_eval_commands(sub)
    return parser


RECIPE_FLAGS = (("task", "task"), ("data", "data.name"), ("data_dir", "data.data_dir"), ("classes", "data.classes"),
                ("direction", "data.direction"), ("arch", "model.arch"), ("loss", "train.loss"), ("device", "train.device"),
                ("config", None))


def cmd_train(args) -> int:
    from .config import load_config
    from .train import train

    stops = {"steps": args.steps, "epochs": args.epochs, "budget_minutes": args.budget_minutes}
    if args.resume:
        given = [f"--{flag.replace('_', '-')}" for flag, key in RECIPE_FLAGS if getattr(args, flag) is not None and flag != "device"]
        if given:
            raise UserError(f"{', '.join(given)} cannot be used with --resume: the run's recipe is fixed by its checkpoint "
                            f"(start a new run with --config {Path(args.resume) / 'config.yaml'} to change it)")
        overrides = list(args.set) + ([f"train.device={args.device}"] if args.device else [])
        summary = train(out=args.resume, resume=True, stop_overrides=stops, quiet=args.quiet, overrides=overrides)
    else:
        overrides = list(args.set)
        for flag, key in RECIPE_FLAGS:
            if key and getattr(args, flag) is not None:
                overrides.append(f"{key}={getattr(args, flag)}")
        config = load_config(args.config, overrides)
        if all(v is None for v in stops.values()) and config.train.steps is None and config.train.epochs is None \
                and config.train.budget_minutes is None:
            stops["budget_minutes"] = 10.0
            print("no --steps/--epochs/--budget-minutes given: training for 10 minutes", file=sys.stderr)
        out = args.out or f"runs/{Path(config.data.name).name}-{config.model.arch}"
        summary = train(config, out, stop_overrides=stops, quiet=args.quiet)
    if summary["rank"] != 0:  # under torchrun, rank 0 reports for every process
        return 130 if summary["interrupted"] else 0
    print(f"\ntrained {summary['steps']} steps ({summary['epochs']} epochs, {summary['train_minutes']} min, "
          f"{summary['images_per_s']} images/s){' — interrupted, checkpoint saved' if summary['interrupted'] else ''}")
    print(f"  run directory : {summary['run']}")
    print(f"  preview       : {summary['grid']}")
    print(f"  loss plot     : {summary['loss_plot']}")
    print(f"  checkpoint    : {summary['checkpoint']}")
    if summary["task"] == "translate":
        print(f"  next          : condgan eval {summary['run']}   |   condgan apply {summary['run']} INPUT_FOLDER --out OUT_FOLDER")
    else:
        print(f"  next          : condgan sample {summary['run']} --label {summary['class_names'][0]} --n 16 --out sample.png")
    return 130 if summary["interrupted"] else 0


def cmd_sample(args) -> int:
    import condgan

    from .pipelines import check_count
    from .visual import save_grid

    gen = condgan.load(args.run, device=args.device)
    out = Path(args.out)
    _check_writable(out)
    if gen.task == "translate":
        return _translation_sheet(gen, args, out)
    if out.suffix.lower() == ".npz":
        n = args.n_per_class if args.n_per_class is not None else args.n
        check_count(n, "--n-per-class")
        gen.save_npz(out, n, seed=args.seed, progress=True)
        print(f"wrote {n * gen.num_classes} images ({n} per class, {gen.num_classes} classes) to {out}")
        return 0
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png, .jpg or .npz, not {out.name!r}")
    labels = [x for item in (args.label or []) for x in item.split(",") if x] or gen.class_names
    check_count(args.n, "--n")
    ids = gen.label_ids(labels)
    images = gen.sample(labels, n=args.n, seed=args.seed)
    names = [gen.class_names[i] for i in ids.tolist()]
    cols = args.n
    if len(names) == 1:  # one label: a near-square grid rather than one long row
        cols = math.ceil(math.sqrt(args.n))
        names = [names[0]] * math.ceil(args.n / cols)
    save_grid(images, out, nrow=cols, row_names=names)
    print(f"wrote {args.n} image(s) each of {', '.join(dict.fromkeys(gen.class_names[i] for i in ids.tolist()))} to {out}")
    return 0


def _translation_sheet(tr, args, out: Path) -> int:
    from .pipelines import check_count

    from .visual import save_sheet

    if out.suffix.lower() != ".png":
        raise UserError(f"a translator's sample sheet is a .png, not {out.name!r} (for arrays: condgan apply RUN --split test --out x.npz)")
    check_count(args.n, "--n", 256)
    pairs = tr.pairs(args.split)
    n = min(args.n, len(pairs))
    labels = pairs.labels[:n] if pairs.labels is not None and tr.uses_label else None
    outputs = tr.translate(pairs.sources[:n], seed=args.seed, labels=labels.tolist() if labels is not None else None)
    save_sheet([pairs.sources[:n], outputs, pairs.targets[:n]], ["source", "output", "target"], out,
               title=f"{n} {args.split} pairs of {pairs.name}")
    print(f"wrote a sheet of {n} {args.split} pairs (source | output | target) to {out}")
    return 0


def cmd_apply(args) -> int:
    import condgan

    from .apply import apply_to_files, apply_to_split

    tr = condgan.load(args.run, device=args.device)
    if tr.task != "translate":
        raise UserError(f"{args.run} is a {tr.task} model: `condgan apply` is for translators; use `condgan sample` to generate")
    if (args.split is None) == (not args.inputs):
        raise UserError("give INPUT files/folders to translate, or --split train|test with --out FILE.npz (not both)")
    out = Path(args.out)
    if args.split:
        if out.suffix.lower() != ".npz":
            raise UserError(f"with --split, --out must be an .npz file, not {out.name!r}")
        _check_writable(out)
        n = apply_to_split(tr, args.split, out, seed=args.seed)
        print(f"wrote {n} {args.split} pairs (images = outputs, sources, targets) to {out}")
    else:
        written, skipped = apply_to_files(tr, [Path(p) for p in args.inputs], out, seed=args.seed, label=args.label)
        print(f"translated {len(written)} image(s) into {out}" + (f"; skipped {len(skipped)} unreadable file(s)" if skipped else ""))
    return 0


def cmd_export(args) -> int:
    import condgan

    run, out = Path(args.run), Path(args.out)
    if out.resolve() == (run if run.is_dir() else run.parent).resolve():
        raise UserError(f"export into a folder of its own, not into the run directory {run}")
    folder = condgan.load(args.run).save_pretrained(out)
    print(f"exported to {folder} (load it with condgan.load({str(folder)!r}))")
    return 0


def _check_writable(out: Path) -> None:
    """Fail before sampling, not after: try to create a file where the output goes."""
    import tempfile

    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".condgan-write-test-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write {out}: folder {parent} is read-only or not writable ({e.strerror})") from None


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"condgan: warning: {message}\n"
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"condgan: error: {e}", file=sys.stderr)
        return e.exit_code
    except DivergenceError as e:
        print(f"condgan: diverged: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("condgan: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, read-only folders and the like: no traceback, say what failed
        print(f"condgan: error: {e.strerror or e} {('(' + str(e.filename) + ')') if e.filename else ''}".rstrip(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
