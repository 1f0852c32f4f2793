"""Command line: `condgan train | sample | export | eval | evaluator`.

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
  condgan train --resume runs/fmnist --budget-minutes 5        # continue where it stopped
  condgan sample runs/fmnist --label sandal --n 64 --out sandals.png
  condgan sample runs/fmnist --n-per-class 1000 --out samples.npz
  condgan eval runs/fmnist
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="condgan", description="Label-conditioned image generation.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"condgan {__import__('condgan').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser("train", help="train a class-conditional GAN", description="Train a class-conditional GAN. "
                       "With no --config, trains the default model (resnet, hinge loss) on Fashion-MNIST.")
    t.add_argument("--config", help="YAML config file (copy one from configs/); default: built-in defaults")
    t.add_argument("--set", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. --set train.lr_g=1e-4 train.batch_size=128 (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<dataset>-<arch>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    t.add_argument("--data", help="dataset: 'fashion-mnist', 'mnist', or a folder of class sub-folders (sets data.name)")
    t.add_argument("--data-dir", help="folder holding the IDX files of fashion-mnist/mnist (sets data.data_dir)")
    t.add_argument("--classes", help="comma-separated class names to train on, e.g. sandal,sneaker,ankle-boot")
    t.add_argument("--arch", help="model family: resnet (default), dcgan or mlp (sets model.arch)")
    t.add_argument("--loss", help="adversarial loss: hinge (default), lsgan or bce (sets train.loss)")
    t.add_argument("--budget-minutes", type=float, help="stop after this many minutes of training")
    t.add_argument("--steps", type=int, help="stop after this many generator steps")
    t.add_argument("--epochs", type=float, help="stop after this many passes over the data")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N (sets train.device)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate images from a trained model",
                       description="Generate images. Writes a PNG grid (one row per label) or, for a .npz --out, "
                       "an NPZ with images (uint8 N×H×W[×C]), labels (int64) and class_names for external tools.")
    s.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder")
    s.add_argument("--label", action="append", help="class name or index (repeatable or comma-separated; default: every class)")
    s.add_argument("--n", type=int, default=8, help="images per label in a PNG grid (default 8)")
    s.add_argument("--n-per-class", type=int, help="images per class for an NPZ export")
    s.add_argument("--seed", type=int, default=0, help="random seed: same seed, same images (default 0)")
    s.add_argument("--out", default="samples.png", help="output file: .png for a grid, .npz for arrays (default samples.png)")
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("export", help="save a run's generator as safetensors + JSON (shareable, safe to load)")
    e.add_argument("run", help="run directory or checkpoint file")
    e.add_argument("out", help="folder to write generator.safetensors and generator.json into")
    e.set_defaults(func=cmd_export)

    from .eval.cli import add_eval_commands

    add_eval_commands(sub)
    return parser


def cmd_train(args) -> int:
    from .config import load_config
    from .train import train

    stops = {"steps": args.steps, "epochs": args.epochs, "budget_minutes": args.budget_minutes}
    if args.resume:
        summary = train(out=args.resume, resume=True, stop_overrides=stops, quiet=args.quiet)
    else:
        overrides = list(args.set)
        for flag, key in (("data", "data.name"), ("data_dir", "data.data_dir"), ("classes", "data.classes"),
                          ("arch", "model.arch"), ("loss", "train.loss"), ("device", "train.device")):
            if getattr(args, flag) is not None:
                overrides.append(f"{key}={getattr(args, flag)}")
        config = load_config(args.config, overrides)
        if all(v is None for v in stops.values()) and config.train.steps is None and config.train.epochs is None \
                and config.train.budget_minutes is None:
            stops["budget_minutes"] = 10.0
            print("no --steps/--epochs/--budget-minutes given: training for 10 minutes", file=sys.stderr)
        out = args.out or f"runs/{Path(config.data.name).name}-{config.model.arch}"
        summary = train(config, out, stop_overrides=stops, quiet=args.quiet)
    print(f"\ntrained {summary['steps']} steps ({summary['epochs']} epochs, {summary['train_minutes']} min, "
          f"{summary['images_per_s']} images/s){' — interrupted, checkpoint saved' if summary['interrupted'] else ''}")
    print(f"  run directory : {summary['run']}")
    print(f"  class grid    : {summary['grid']}")
    print(f"  loss plot     : {summary['loss_plot']}")
    print(f"  checkpoint    : {summary['checkpoint']}")
    print(f"  next          : condgan sample {summary['run']} --label {summary['class_names'][0]} --n 16 --out sample.png")
    return 130 if summary["interrupted"] else 0


def cmd_sample(args) -> int:
    import condgan

    from .api import check_count
    from .visual import save_grid

    gen = condgan.load(args.run, device=args.device)
    out = Path(args.out)
    _check_writable(out)
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


def cmd_export(args) -> int:
    import condgan

    folder = condgan.load(args.run).save_pretrained(args.out)
    print(f"exported generator to {folder} (load it with condgan.load({str(folder)!r}))")
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
