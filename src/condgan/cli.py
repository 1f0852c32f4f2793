"""Command line: `condgan train | sample | apply | compare | search | export | eval | evaluator | serve`.

One style for every task: the verb comes first, the task is part of the run
(`condgan train --task translate ...`), and every later command reads the task
from the run it is given.

Every user mistake surfaces as one line on stderr and exit code 2; a
diverged run exits 3; an unexpected failure is one line and exit 1 (its
traceback only with --debug). In training, Ctrl-C (like SIGTERM) lets the step
in flight finish, saves a checkpoint and exits 130; a second Ctrl-C quits at
once without writing.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .errors import DivergenceError, UserError
from .untrusted import MAX_SEED, flag_type, printable


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `condgan: error:` line like every other mistake."""

    def error(self, message):
        message = message.replace("argument ", "", 1) if message.startswith("argument ") else message
        message = message.replace(": must be", " must be", 1)
        self.exit(2, f"condgan: error: {printable(message, 300)} (see `{self.prog} --help`)\n")


positive_int = flag_type(int, lambda v: v >= 1, "a positive integer")
positive_float = flag_type(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number")
seed_int = flag_type(int, lambda v: 0 <= v <= MAX_SEED, "an integer between 0 and 2**63-1")


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
two labels, two stages (G1: label A -> intermediate; G2: intermediate + label B -> image):
  condgan train --task two-stage --data fashion-mnist-colours --budget-minutes 20 --out runs/colours
  condgan train --task two-stage --stage stage1 --data my/manifest.csv --out runs/mine   # one stage at a time
  condgan sample runs/colours --out grid.png                   # rows: label A, columns: label B
  condgan sample runs/colours --label-a sandal --label-b red,blue --n 4 --out sandals.png
  condgan sample runs/colours --n-per-pair 100 --out pairs.npz
  condgan eval runs/colours                                    # label A/B accuracy, IoU, swap tests, FID
similarity (which images are alike) and "more like this one":
  condgan train --task similarity --recipe triplet --budget-minutes 5 --out runs/similar
  condgan compare runs/similar a.png b.png                     # score, and the verdict at the learned threshold
  condgan search runs/similar query.png --in photos/ --k 8     # nearest images, listed and drawn
  condgan eval runs/similar                                    # verification (LFW protocol), AUC, EER, MAP@R
  condgan train --task similarity --recipe selfsup --data my_images/ --out runs/ssl     # no labels needed
  condgan train --task exemplar --embedder runs/ssl --data my_images/ --out runs/like
  condgan sample runs/like --like ref.png --n 16 --out like.png
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="condgan", description="Label-conditioned image generation.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"condgan {__import__('condgan').__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the Python traceback (for bug reports)")
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
    t.add_argument("--task", choices=("cgan", "translate", "two-stage", "similarity", "exemplar"), help="what to train: "
                   "cgan (class-conditional generation, default), translate (paired image-to-image translation), two-stage "
                   "(label A -> intermediate -> image with label B: stage1, stage2 and joint runs in turn, in OUT/<stage>), "
                   "similarity (an embedding network: which images are alike) or exemplar (a generator of images like a "
                   "given one, conditioned on a similarity run's embedding) (sets task)")
    t.add_argument("--stage", choices=("all", "stage1", "stage2", "joint"), help="two-stage: train only this stage, "
                   "into OUT/<stage> (joint needs OUT/stage1 and OUT/stage2); default all, in turn (sets stages.stage)")
    t.add_argument("--recipe", choices=("siamese", "triplet", "frozen", "selfsup"), help="--task similarity: siamese "
                   "(contrastive loss on pairs), triplet (default: margin loss, in-batch mining), frozen (the evaluator "
                   "network frozen + a learned head) or selfsup (no labels: two augmented views of an image are "
                   "similar) (sets similarity.recipe)")
    t.add_argument("--pairs", metavar="CSV", help="--task similarity: a CSV of image_a,image_b,similar or of "
                   "anchor,positive,negative (paths relative to the CSV) instead of pairs from class labels (sets similarity.pairs)")
    t.add_argument("--embedder", metavar="RUN", help="--task exemplar: the similarity run whose embedding conditions "
                   "the generator (sets similarity.embedder)")
    t.add_argument("--config", help="YAML config file (copy one from configs/); default: built-in defaults")
    t.add_argument("--set", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values, e.g. --set train.lr_g=1e-4 train.batch_size=128 (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<dataset>-<arch>)")
    t.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    t.add_argument("--data", help="dataset (sets data.name). cgan: 'fashion-mnist', 'mnist', or a folder of class "
                   "sub-folders; translate: 'fashion-mnist-edges', 'fashion-mnist-masks', or a folder of pairs "
                   "(A/ and B/ with matching names, or A|B side by side in one image); two-stage: "
                   "'fashion-mnist-colours' (silhouette masks), 'fashion-mnist-colours-edges' (edge maps), or a CSV "
                   "manifest with columns image, intermediate, label_a, label_b")
    t.add_argument("--direction", choices=("AtoB", "BtoA"), help="translate: AtoB (default: A is the source) or BtoA (sets data.direction)")
    t.add_argument("--data-dir", help="folder holding the IDX files of fashion-mnist/mnist (sets data.data_dir)")
    t.add_argument("--classes", help="comma-separated class names to train on, e.g. sandal,sneaker,ankle-boot "
                   "(two-stage: label A values)")
    t.add_argument("--arch", help="model family: resnet (default), dcgan or mlp for cgan; unet for translate (sets model.arch)")
    t.add_argument("--loss", help="adversarial loss: hinge (default), lsgan or bce (sets train.loss)")
    t.add_argument("--budget-minutes", type=positive_float, help="stop after this many minutes of training (with --resume: this "
                   "many more; two-stage: split between the stages by stages.fractions)")
    t.add_argument("--steps", type=positive_int, help="stop after this many generator steps (with --resume: this many more)")
    t.add_argument("--epochs", type=positive_float, help="stop after this many passes over the data (with --resume: this many more)")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N (sets train.device)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate images from a trained model (a translator: a source | output | target sheet)",
                       description="Generate images. Writes a PNG grid (one row per label) or, for a .npz --out, "
                       "an NPZ with images (uint8 N×H×W[×C]), labels (int64) and class_names for external tools. "
                       "For a translator: a sheet of --n pairs of a data split, source | output | target. "
                       "For a two-stage pipeline: a grid with one row per label A and one column per label B, each "
                       "image beside its intermediate, or an NPZ with images (uint8 N×H×W×3), intermediates "
                       "(uint8 N×H×W), labels_a, labels_b, label_a_names, label_b_names and label_b_rgb (K×3 uint8), "
                       "--n-per-pair images of every (A, B) pair.")
    s.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder")
    s.add_argument("--split", choices=("train", "test"), help="translator: which split's pairs to show (default test)")
    s.add_argument("--label", action="append", help=f"{LABEL_HELP}; default: every class")
    s.add_argument("--label-a", action="append", help=f"two-stage: label A, {LABEL_HELP}; default: all")
    s.add_argument("--label-b", action="append", help=f"two-stage: label B, {LABEL_HELP}; default: all")
    s.add_argument("--n", type=int, default=None, help=f"images per label in a PNG grid, at most {MAX_GRID} (default 8; "
                   "a translator: pairs in the sheet; two-stage: rows per label A, default 1)")
    s.add_argument("--like", action="append", metavar="IMAGE", help="exemplar model: make images like this image file "
                   "(repeatable: one row each)")
    s.add_argument("--n-per-class", type=int, help="images per label for an NPZ export (default 8)")
    s.add_argument("--n-per-pair", type=int, help="two-stage: images per (label A, label B) pair for an NPZ export (default 10)")
    s.add_argument("--seed", type=seed_int, default=0, help="random seed: same seed, same images (default 0)")
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
    a.add_argument("--seed", type=seed_int, default=0, help="noise seed: same seed, same outputs (default 0)")
    a.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    a.set_defaults(func=cmd_apply)

    e = sub.add_parser("export", help="save a run's model as safetensors + JSON (shareable, safe to load)",
                       description="Write OUT/condgan.json (task, fields, class names, data) and one OUT/<component>.safetensors "
                       "per network (generator; generator1 and generator2 for a two-stage pipeline; embedder for similarity "
                       "runs; generator and embedder for exemplar runs); condgan.load(OUT) gives the same pipeline as the run.")
    e.add_argument("run", help="run directory (or two-stage pipeline directory) or checkpoint file")
    e.add_argument("out", help="folder to write condgan.json and the .safetensors files into (not the run directory)")
    e.set_defaults(func=cmd_export)

    from .cli_similarity import add_similarity_commands

    add_similarity_commands(sub)
    add_serve_command(sub)

    from .eval.cli import add_eval_commands

    add_eval_commands(sub)
    return parser


MAX_GRID = 256  # images per label in one PNG grid; more belong in an NPZ

RECIPE_FLAGS = (("task", "task"), ("stage", "stages.stage"), ("data", "data.name"), ("data_dir", "data.data_dir"),
                ("classes", "data.classes"), ("direction", "data.direction"), ("arch", "model.arch"), ("loss", "train.loss"),
                ("device", "train.device"), ("recipe", "similarity.recipe"), ("pairs", "similarity.pairs"),
                ("embedder", "similarity.embedder"), ("config", None))


def cmd_train(args) -> int:
    from .config import load_config
    from .training import train

    stops = {"steps": args.steps, "epochs": args.epochs, "budget_minutes": args.budget_minutes}
    if args.resume:
        given = [f"--{flag.replace('_', '-')}" for flag, key in RECIPE_FLAGS if getattr(args, flag) is not None and flag != "device"]
        if given:
            raise UserError(f"{', '.join(given)} cannot be used with --resume: the run's recipe is fixed by its checkpoint "
                            f"(start a new run with --config {Path(args.resume) / 'config.yaml'} to change it)")
        overrides = list(args.set) + ([f"train.device={args.device}"] if args.device else [])
        summary = train(out=args.resume, resume=True, stop_overrides=stops, quiet=args.quiet, overrides=overrides)
    else:
        if args.classes is not None and not [c for c in args.classes.split(",") if c.strip()]:
            raise UserError("--classes is empty; name at least 2 classes (e.g. --classes sandal,sneaker) or leave it out")
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
    if summary.get("rank", 0) != 0:  # under torchrun, rank 0 reports for every process
        return 130 if summary["interrupted"] else 0
    interrupted = " — interrupted, checkpoint saved" if summary["interrupted"] else ""
    if "stages" in summary:  # a two-stage pipeline: one line per stage run
        print()
        for stage, s in summary["stages"].items():
            print(f"{stage}: {s['steps']} steps ({s['epochs']} epochs, {s['train_minutes']} min, {s['images_per_s']} images/s) "
                  f"in {s['run']}")
        print(f"trained {len(summary['stages'])} stage(s), {summary['steps']} steps in {summary['train_minutes']} min{interrupted}")
    else:
        print(f"\ntrained {summary['steps']} steps ({summary['epochs']} epochs, {summary['train_minutes']} min, "
              f"{summary['images_per_s']} images/s){interrupted}")
    print(f"  run directory : {summary['run']}")
    print(f"  preview       : {summary['grid']}")
    print(f"  loss plot     : {summary['loss_plot']}")
    print(f"  checkpoint    : {summary['checkpoint']}")
    if summary["task"] == "two-stage":
        print(f"  next          : condgan sample {summary['run']} --out grid.png   |   condgan eval {summary['run']}")
    elif summary["task"] == "translate":
        print(f"  next          : condgan eval {summary['run']}   |   condgan apply {summary['run']} INPUT_FOLDER --out OUT_FOLDER")
    elif summary["task"] == "similarity":
        print(f"  next          : condgan eval {summary['run']}   |   condgan compare {summary['run']} A.png B.png   |   "
              f"condgan search {summary['run']} QUERY.png --in FOLDER")
    elif summary["task"] == "exemplar":
        print(f"  next          : condgan sample {summary['run']} --like REF.png --n 16 --out like.png   |   condgan eval {summary['run']}")
    else:
        first = printable(summary["class_names"][0], 60)
        label = f"'\"{first}\"'" if "," in first else first  # (a name with a comma is given quoted)
        print(f"  next          : condgan sample {summary['run']} --label {label} --n 16 --out sample.png")
    return 130 if summary["interrupted"] else 0


def cmd_sample(args) -> int:
    import condgan

    from .pipelines import check_count
    from .visual import save_grid

    from .untrusted import device

    gen = condgan.load(args.run, device=device(args.device, "--device"))
    out = Path(args.out)
    _check_writable(out)
    if gen.task == "two-stage":
        return _two_stage_samples(gen, args, out)
    if args.label_a or args.label_b or args.n_per_pair is not None:
        raise UserError("--label-a, --label-b and --n-per-pair are for two-stage pipelines")
    if gen.task == "translate":
        return _translation_sheet(gen, args, out)
    if gen.task == "similarity":
        raise UserError(f"{args.run} is an embedder (--task similarity): it makes no images; use condgan compare or condgan search")
    if gen.task == "exemplar":
        return _exemplar_grid(gen, args, out)
    if args.like:
        raise UserError("--like is for exemplar models (--task exemplar); this model takes --label")
    if args.split is not None:
        raise UserError("--split is for translators (which show pairs of a data split); this is a class-conditional model")
    labels = _labels(args.label, "--label", gen.class_names) or gen.class_names
    if out.suffix.lower() == ".npz":
        if args.n is not None and args.n_per_class is not None and args.n != args.n_per_class:
            raise UserError("give --n-per-class (images per label in the .npz) or --n, not both")
        n = next((v for v in (args.n_per_class, args.n) if v is not None), 8)
        check_count(n, "--n-per-class")
        ids = gen.label_ids(labels)
        check_count(n * len(ids), "--n-per-class × labels")
        gen.save_npz(out, n, seed=args.seed, progress=True, labels=ids.tolist())
        print(f"wrote {n * len(ids)} images ({n} per label, {len(ids)} label(s)) to {out}")
        return 0
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png, .jpg or .npz, not {printable(out.name, 80)!r}")
    if args.n_per_class is not None:
        raise UserError("--n-per-class is for .npz outputs; a PNG grid takes --n (images per label)")
    n = args.n if args.n is not None else 8
    check_count(n, "--n", MAX_GRID)
    ids = gen.label_ids(labels)
    images = gen.sample(labels, n=n, seed=args.seed)
    names = [gen.class_names[i] for i in ids.tolist()]
    cols = n
    if len(names) == 1:  # one label: a near-square grid rather than one long row
        cols = math.ceil(math.sqrt(n))
        names = [names[0]] * math.ceil(n / cols)
    save_grid(images, out, nrow=cols, row_names=names)
    shown_names = ", ".join(printable(gen.class_names[i], 40) for i in dict.fromkeys(ids.tolist()))
    print(f"wrote {n} image(s) each of {shown_names} to {out}")
    return 0


LABEL_HELP = ("class name or index (repeatable or comma-separated; a name with a comma in double quotes: "
              "--label '\"red, dark\"')")


def _labels(values: list[str] | None, flag: str, known: list[str], what: str = "") -> list[str] | None:
    """The class names (or indices) of a repeatable, comma-separated flag, checked against `known`; None when
    it is not given. Each value is split as a CSV line, so a name with a comma is chosen in double quotes;
    a value that names no class ("", " , ") is a mistake, not "every class"."""
    import csv

    from .data.imageset import resolve_class

    if values is None:
        return None
    names = []
    for value in values:
        try:
            cells = [c.strip() for row in csv.reader([value], skipinitialspace=True, strict=True) for c in row]
        except csv.Error as e:
            raise UserError(f"{flag} {printable(value, 60)!r} cannot be read ({e}); {_label_hint(known)}") from None
        if not any(cells):
            raise UserError(f"{flag} {printable(value, 60)!r} names no class; known classes: "
                            f"{', '.join(printable(c, 40) for c in known[:50])} (or leave {flag} out for every class)")
        names += [c for c in cells if c]
    for name in names:
        try:
            resolve_class(name, known)
        except UserError as e:
            raise UserError(f"{what}{e}" + (f"; {_label_hint(known)}" if any("," in c for c in known) else "")) from None
    return names


def _label_hint(known: list[str]) -> str:
    comma = next((c for c in known if "," in c), "red, dark")
    return f"a class name with a comma goes in double quotes (--label '\"{printable(comma, 40)}\"'), or give its index"


def _two_stage_samples(ts, args, out: Path) -> int:
    from .pipelines import check_count

    if args.label or args.n_per_class is not None:
        raise UserError("a two-stage pipeline takes --label-a and --label-b (not --label), and --n-per-pair for an NPZ")
    if out.suffix.lower() == ".npz":
        if args.label_a or args.label_b:
            raise UserError("an NPZ export holds every (label A, label B) pair; --label-a/--label-b are for a PNG grid")
        n = args.n_per_pair if args.n_per_pair is not None else (args.n if args.n is not None else 10)
        check_count(n, "--n-per-pair")
        ts.save_npz(out, n, seed=args.seed, progress=True)
        pairs = len(ts.label_a_names) * len(ts.label_b_names)
        print(f"wrote {n * pairs} images ({n} for each of {pairs} (A, B) pairs) with their intermediates to {out}")
        return 0
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png, .jpg or .npz, not {out.name!r}")
    if args.n_per_pair is not None:
        raise UserError("--n-per-pair is for an NPZ export; a PNG grid takes --n (rows per label A)")
    n = 1 if args.n is None else args.n
    check_count(n, "--n", 64)
    ts.save_grid(out, _labels(args.label_a, "--label-a", ts.label_a_names, "label A: "),
                 _labels(args.label_b, "--label-b", ts.label_b_names, "label B: "),
                 n=n, seed=args.seed)
    print(f"wrote a grid (rows: label A, columns: label B, each image beside its intermediate) to {out}")
    return 0


def _translation_sheet(tr, args, out: Path) -> int:
    from .pipelines import check_count

    from .visual import save_sheet

    if out.suffix.lower() != ".png":
        raise UserError(f"a translator's sample sheet is a .png, not {printable(out.name, 80)!r} (for arrays: condgan apply RUN --split test --out x.npz)")
    for flag, value in (("--label", args.label), ("--n-per-class", args.n_per_class)):
        if value is not None:
            raise UserError(f"{flag} does not apply to a translator's sheet (it shows --n pairs of --split, each with its own label)")
    split = args.split or "test"
    n = args.n if args.n is not None else 8
    check_count(n, "--n", MAX_GRID)
    pairs = tr.pairs(split)
    n = min(n, len(pairs))
    labels = pairs.labels[:n] if pairs.labels is not None and tr.uses_label else None
    outputs = tr.translate(pairs.sources[:n], seed=args.seed, labels=labels.tolist() if labels is not None else None)
    save_sheet([pairs.sources[:n], outputs, pairs.targets[:n]], ["source", "output", "target"], out,
               title=f"{n} {split} pairs of {printable(pairs.name, 60)}")
    print(f"wrote a sheet of {n} {split} pairs (source | output | target) to {out}")
    return 0


def _exemplar_grid(gen, args, out: Path) -> int:
    """One row per --like image: the exemplar, then --n images like it."""
    import torch

    from .cli_similarity import read_user_image
    from .pipelines import check_count
    from .visual import save_grid

    if not args.like:
        raise UserError("an exemplar model makes images like a given one: pass --like IMAGE (repeatable)")
    for flag, value in (("--label", args.label), ("--n-per-class", args.n_per_class), ("--split", args.split)):
        if value is not None:
            raise UserError(f"{flag} does not apply to an exemplar model (it takes --like IMAGE and --n)")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png or .jpg, not {printable(out.name, 80)!r}")
    n = args.n if args.n is not None else 8
    check_count(n, "--n", MAX_GRID)
    exemplars = torch.cat([read_user_image(p, gen.spec["image"], "--like image") for p in args.like])
    outputs = gen.sample(like=exemplars, n=n, seed=args.seed).view(len(exemplars), n, *exemplars.shape[1:])
    from .data import to_float

    images = torch.cat([to_float(exemplars)[:, None], outputs], dim=1).flatten(0, 1)
    save_grid(images, out, nrow=n + 1, title=f"exemplar | {n} images like it (seed {args.seed})")
    print(f"wrote {n} image(s) like each of {len(exemplars)} exemplar(s) to {out}")
    return 0


def cmd_apply(args) -> int:
    import condgan

    from .apply import apply_to_files, apply_to_split

    from .untrusted import device

    tr = condgan.load(args.run, device=device(args.device, "--device"))
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
        if args.label is not None and not tr.uses_label:
            raise UserError("--label does not apply: this translator was trained without labels (model.use_label=false)")
        written, skipped = apply_to_files(tr, [Path(p) for p in args.inputs], out, seed=args.seed, label=args.label)
        print(f"translated {len(written)} image(s) into {out}" + (f"; skipped {len(skipped)} unreadable file(s)" if skipped else ""))
    return 0


def cmd_export(args) -> int:
    import condgan

    run, out = Path(args.run), Path(args.out)
    if out.resolve() == (run if run.is_dir() else run.parent).resolve():
        raise UserError(f"export into a folder of its own, not into the run directory {run}")
    from .training.checkpoint import MANIFEST

    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(f"{out} is not empty and is not an earlier export; export into a new or empty folder")
    folder = condgan.load(args.run).save_pretrained(out)
    print(f"exported to {folder} (load it with condgan.load({str(folder)!r}))")
    return 0


# ----- condgan serve ------------------------------------------------------------------------------------
def add_serve_command(sub) -> None:
    from .serve.limits import Limits

    d = Limits()
    v = sub.add_parser("serve", help="a web page and a JSON API for trained models (loopback only by default)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Load the models once and serve a page (choose a model, its class or input image,\n"
                       "count and seed; see and download the grid) and a JSON API: GET /api/models,\n"
                       "POST /api/generate, GET /healthz. Limits: at most 256 images per request, uploads of at\n"
                       "most 4 MiB and 2048x2048 pixels, one inference at a time per model.\n"
                       "There is no authentication: keep the default --host 127.0.0.1, or put a reverse proxy\n"
                       "with TLS, authentication and rate limits in front (docs/serving.md).",
                       epilog="examples:\n  condgan serve runs/fmnist\n  condgan serve shoes=runs/shoes edges=exported/edges --port 8080\n"
                       "  curl -s localhost:8000/api/models\n"
                       "  curl -s localhost:8000/api/generate -H 'Content-Type: application/json' "
                       "-d '{\"model\": \"fmnist\", \"label\": \"sandal\", \"n\": 16, \"seed\": 3}' -o sandals.png")
    v.add_argument("models", nargs="+", metavar="RUN_OR_EXPORT", help="run directory, checkpoint (.pt) or exported "
                   "folder; NAME=PATH names it in the API (default: the folder's name)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                   "0.0.0.0 listens on every interface, which needs a proxy in front)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    v.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N for inference")
    v.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds a connection may stay silent before "
                   f"it is dropped (default {d.timeout:g})")
    v.add_argument("--max-connections", type=int, default=d.max_connections, help=f"open connections served at once; "
                   f"more get a 503 at once (default {d.max_connections})")
    v.add_argument("--allow-host", action="append", default=[], metavar="NAME", help="also answer requests addressed "
                   "to this name (the Host header, any port; repeatable), e.g. the name a proxy forwards. By default "
                   "only the --host address, localhost, 127.0.0.1 and [::1] are answered; other names get a 403 "
                   "(a guard against DNS rebinding, docs/serving.md)")
    v.add_argument("--quiet", action="store_true", help="no access log (errors are still logged)")
    v.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import dataclasses
    import signal

    from .serve.app import load_models, make_server
    from .serve.limits import Limits

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {args.port}")
    if not (args.timeout > 0 and math.isfinite(args.timeout)) or args.max_connections < 1:
        raise UserError("--timeout and --max-connections must be positive")
    limits = dataclasses.replace(Limits(), timeout=args.timeout, max_connections=args.max_connections)
    for name in args.allow_host:
        if not name.strip() or any(c in name for c in "/ @") or printable(name) != name:
            raise UserError(f"--allow-host takes a host name or address as a browser sends it (e.g. models.example.com), "
                            f"not {printable(name, 80)!r}")
    models = load_models(args.models, device=args.device)
    try:
        server = make_server(models, args.host, args.port, limits, quiet=args.quiet, allow_hosts=args.allow_host)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); "
                        "choose another --port, or a --host address of this machine") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"condgan: warning: listening on {args.host}: anyone who can reach it can use it (no authentication); "
              "see docs/serving.md", file=sys.stderr)
    print(f"serving {len(models)} model(s) at {server.url}  (Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop_serving)  # `kill`, systemd and containers stop it like Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0


def _stop_serving(signum, frame):
    raise KeyboardInterrupt


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
    """Run a command; every failure is one line on stderr (the traceback too only with --debug)."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"condgan: warning: {printable(message, 300)}\n"
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    parser = build_parser()
    args = parser.parse_args([a for a in argv if a != "--debug"])

    def fail(prefix: str, message, code: int) -> int:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"condgan: {prefix}: {printable(message, 600)}", file=sys.stderr)
        return code

    import logging

    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="condgan: %(message)s", stream=sys.stderr)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    from .progress import silenced

    try:
        with silenced(getattr(args, "quiet", False)):  # --quiet: no progress bar anywhere, data decoding included
            return args.func(args)
    except UserError as e:
        return fail("error", e, e.exit_code)
    except DivergenceError as e:
        return fail("diverged", e, e.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", "stopped at once; nothing was written", 130)
    except MemoryError:
        return fail("error", "out of memory; ask for fewer images (--n, --n-per-class) or a smaller batch", 2)
    except OSError as e:  # disk full, read-only folders and the like: no traceback, say what failed
        return fail("error", f"{e.strerror or e} {('(' + str(e.filename) + ')') if e.filename else ''}".rstrip(), 2)
    except Exception as e:  # a bug, or input we failed to check: still one line, and how to report it
        return fail("error", f"unexpected {type(e).__name__}: {e} (this is a condgan bug; rerun with --debug and report "
                    f"the traceback)", 1)


if __name__ == "__main__":
    sys.exit(main())
