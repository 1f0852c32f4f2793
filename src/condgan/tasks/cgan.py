"""The class-conditional GAN: a class label in, an image of that class out (condgan's default task)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..conditions import Spec, class_spec
from ..config import Config
from ..data import load_dataset
from ..errors import UserError
from ..pipelines import ClassConditional, check_count
from ..pipelines.latents import truncation_note
from ..registry import Controls, register
from ..untrusted import printable
from ..visual import save_grid
from .base import (TRUNCATION_EVAL_HELP, TRUNCATION_HELP, GANTask, Roles, build_class_gan, class_rows, class_term_check,
                   labels_flag, parse_labels, quoted_label, truncation_flag, versus)

MAX_GRID = 256  # images per label in one PNG grid; more belong in an NPZ
STANDING_STATS = 1024  # images G_ema measures its own BatchNorm statistics on (train.standing_stats) ...
STANDING_STATS_UP_TO = 64  # ... at this many px and below


def standing_stats_for_size(image_size: int) -> int:
    """G_ema's own statistics lowered FID on every 28-px Fashion-MNIST run and two of three 64-px folder runs, and
    raised it on all four 128-px runs (docs/benchmarks.md, "Standing statistics"): above 64 px, G's are kept."""
    return STANDING_STATS if image_size <= STANDING_STATS_UP_TO else 0
MAX_EVAL_BYTES = 4_000_000_000  # generated images held at once by `condgan eval`



@register
class ClassConditionalTask(GANTask):
    name = "cgan"
    resnet_knobs = True
    title = "class-conditional generation (a class label in, an image out)"
    models = "class-conditional generators"
    defaults = {"model.arch": "resnet", "model.z_dim": 64,  # widths, batch size, class terms: config.size_defaults(),
                "train.l1_weight": 0.0,                     # once the image size is known
                "train.standing_stats": standing_stats_for_size}  # a function of the image size
    archs = ("resnet", "dcgan", "mlp")
    pipeline = ClassConditional
    augments_small_data = True
    flags = {"sample": ("label", "n_per_class", "truncation"), "eval": ("n_per_class", "truncation")}
    controls = Controls(title="class-conditional generator", conditions=lambda p: ["label"], rows="label",
                        generate=lambda p, v, n, seed: p.sample(v["label"], n=n, seed=seed),
                        interpolate=lambda p, v, seed_a, seed_b, steps: p.interpolate(v["label"], seed_a, seed_b, steps),
                        hints={"label": "the class to generate"})

    @classmethod
    def resolve(cls, config: Config) -> None:
        if config.model.arch != "resnet":  # the resnet's class term depends on the image size: config.size_defaults()
            super().resolve(config)

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        return [*super().checks(config), class_term_check(config, config.model.arch == "resnet")]

    @classmethod
    def add_arguments(cls, command: str, parser) -> None:
        if command == "sample":
            labels_flag(parser, "--label", "the classes to draw (default: every class)")
            parser.add_argument("--n-per-class", type=int, help="images per label for an NPZ export (default 8)")
            parser.add_argument("--truncation", type=truncation_flag, metavar="T", help=TRUNCATION_HELP)
        if command == "eval":
            parser.add_argument("--n-per-class", type=int, default=None, metavar="N",
                                help="images to generate per class for a run (default 1000)")
            parser.add_argument("--truncation", type=truncation_flag, metavar="T", help=TRUNCATION_EVAL_HELP)

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        d = config.data
        data = load_dataset(d.name, split, d.data_dir, d.classes, d.image_size, d.channels, d.bad_files, d.cache,
                            d.paths_outside, d.image_column, d.label_column)
        spec = class_spec(data.class_names, data.channels, data.image_size)
        return {"image": data.images, "label": data.labels}, spec

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("image", ("label",), ("label",), "label")

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        return build_class_gan(spec, config, "image", "label", class_head)

    @staticmethod
    @torch.no_grad()
    def preview(run, path: Path) -> torch.Tensor:
        return class_rows(run, run.step.G_ema, "label", path, "samples")

    @classmethod
    def sample(cls, gen: ClassConditional, args, out: Path) -> int:
        """A PNG grid (one row per label) or an NPZ of images, labels and class names."""
        labels = parse_labels(args.label, "--label", gen.class_names) or gen.class_names
        if out.suffix.lower() == ".npz":
            return _sample_npz(gen, args, out, labels)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise UserError(f"--out must end in .png, .jpg or .npz, not {printable(out.name, 80)!r}")
        if args.n_per_class is not None:
            raise UserError("--n-per-class is for .npz outputs; a PNG grid takes --n (images per label)")
        n = args.n if args.n is not None else 8
        check_count(n, "--n", MAX_GRID)
        ids = gen.label_ids(labels)
        images = gen.sample(labels, n=n, seed=args.seed, truncation=args.truncation)
        names = [gen.class_names[i] for i in ids.tolist()]
        cols = n
        if len(names) == 1:  # one label: a near-square grid rather than one long row
            cols = math.ceil(math.sqrt(n))
            names = [names[0]] * math.ceil(n / cols)
        save_grid(images, out, nrow=cols, row_names=names)
        shown_names = ", ".join(printable(gen.class_names[i], 40) for i in dict.fromkeys(ids.tolist()))
        print(f"wrote {n} image(s) each of {shown_names} to {out}{truncation_note(args.truncation)}")
        return 0

    @classmethod
    def evaluate(cls, model: ClassConditional, args, out: Path) -> int:
        from ..eval.report import evaluate_generator

        image = model.spec["image"]
        n = 1000 if args.n_per_class is None else args.n_per_class
        most = min(100_000, MAX_EVAL_BYTES // (model.num_classes * image.channels * image.height * image.width))
        if not 2 <= n <= most:
            raise UserError(f"--n-per-class must be between 2 and {most:,} for this model, not {n}")
        report = evaluate_generator(model, out, n, args.seed, not args.quiet, source=str(args.run),
                                    truncation=args.truncation)
        print_summary(report)
        return 0

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        return f"condgan sample {run} --label {quoted_label(summary['class_names'][0])} --n 16 --out sample.png"


def _sample_npz(gen: ClassConditional, args, out: Path, labels) -> int:
    if args.n is not None and args.n_per_class is not None and args.n != args.n_per_class:
        raise UserError("give --n-per-class (images per label in the .npz) or --n, not both")
    n = next((v for v in (args.n_per_class, args.n) if v is not None), 8)
    check_count(n, "--n-per-class")
    ids = gen.label_ids(labels)
    check_count(n * len(ids), "--n-per-class × labels")
    gen.save_npz(out, n, seed=args.seed, progress=True, labels=ids.tolist(), truncation=args.truncation)
    print(f"wrote {n * len(ids)} images ({n} per label, {len(ids)} label(s)) to {out}{truncation_note(args.truncation)}")
    return 0


def print_summary(report: dict) -> None:
    """The one line `condgan eval` prints for a class-conditional model (or a samples file)."""
    m, f = report["model"], report["real_floor"]
    print(f"FID {versus(m, f, 'fid', '.3f')}  mean class FID {versus(m, f, 'class_fid_mean', '.3f')}  "
          f"conditioning accuracy {versus(m, f, 'conditioning_accuracy', '.1%')}")
