"""Two labels, two stages: G1(label A) -> intermediate, G2(intermediate, label B) -> image (docs/two-stage.md).

A two-stage run is a folder of three ordinary runs (stage1, stage2, joint: stages.py), trained in turn by
runs.py; joint.py chains the two GAN steps with partitioned losses; config.py holds its sections.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...config import Config
from ...errors import UserError
from ...pipelines import TwoStage, check_count
from ...registry import Controls, register
from ...untrusted import printable
from ..base import GANTask, class_term_check, labels_flag, parse_labels, versus
from . import config as sections
from .stages import STAGE_TASKS, locate


def _generate(p: TwoStage, values: dict, n: int, seed: int) -> torch.Tensor:
    """n images for every (label A, label B) pair, label A-major (rows: label A, columns: label B)."""
    return p.sample(label_a=values["label_a"], label_b=values["label_b"], n=n, seed=seed)


@register
class TwoStageTask(GANTask):
    name = "two-stage"
    resnet_knobs = True
    title = "two labels, two stages (label A -> intermediate -> image with label B)"
    models = "two-stage pipelines"
    sections = {"stages": sections.StagesConfig, "joint": sections.JointConfig}
    defaults = {"train.batch_size": 64, "model.arch": "resnet", "model.z_dim": 64, "model.g_width": 16, "model.d_width": 16,
                "train.diversity_weight": 0.5, "train.l1_weight": 0.0}
    archs = ("resnet",)
    pipeline = TwoStage
    flags = {"sample": ("label_a", "label_b", "n_per_pair"), "eval": ("n_per_pair",)}
    flag_keys = {"stage": "stages.stage"}
    controls = Controls(title="two labels, two stages (label A -> intermediate -> image with label B)",
                        conditions=lambda p: ["label_a", "label_b"], rows="label_a", columns="label_b",
                        generate=_generate,
                        hints={"label_a": "what to make (G1 draws its intermediate)",
                               "label_b": "how it looks (G2 renders the intermediate with it)"})

    @classmethod
    def resolve(cls, config: Config) -> None:
        sections.resolve(config)
        super().resolve(config)

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        return [*super().checks(config), *sections.checks(config), class_term_check(config, False)]

    @classmethod
    def add_arguments(cls, command: str, parser) -> None:
        if command == "train":
            parser.add_argument("--stage", choices=sections.STAGES, help="two-stage: train only this stage, into "
                                "OUT/<stage> (joint needs OUT/stage1 and OUT/stage2); default all, in turn (sets stages.stage)")
        if command == "sample":
            labels_flag(parser, "--label-a", "two-stage: label A (default: all)")
            labels_flag(parser, "--label-b", "two-stage: label B (default: all)")
            parser.add_argument("--n-per-pair", type=int, help="two-stage: images per (label A, label B) pair for an NPZ "
                                "export (default 10)")
        if command == "eval":
            parser.add_argument("--n-per-pair", type=int, default=None, metavar="N", help="two-stage: images to generate "
                                "for every (label A, label B) pair (default 100)")

    @classmethod
    def trains(cls, config: Config):
        if config.stages.stage not in STAGE_TASKS:
            raise UserError(f"a two-stage run trains one stage at a time ({', '.join(STAGE_TASKS)}); "
                            f"stages.stage=all is for `condgan train`, which runs them in turn")
        return STAGE_TASKS[config.stages.stage]

    @classmethod
    def fit(cls, config: Config, out, *, resume: bool, quiet: bool, more: dict | None) -> dict | None:
        """The stage runs in turn; a single stage run that is resumed is an ordinary run (None)."""
        if config.stages.stage != "all" and resume:
            return None
        from .runs import train_stages

        return train_stages(config, Path(out), quiet=quiet, resume=resume, more=more)

    @classmethod
    def describe(cls, config: Config) -> str:
        return f"{cls.name} {config.stages.stage}"

    @classmethod
    def locate(cls, path: Path):
        return locate(path)

    @classmethod
    def sample(cls, ts: TwoStage, args, out: Path) -> int:
        """A grid (rows: label A, columns: label B, each image beside its intermediate) or an NPZ of every pair."""
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
            raise UserError(f"--out must end in .png, .jpg or .npz, not {printable(out.name, 80)!r}")
        if args.n_per_pair is not None:
            raise UserError("--n-per-pair is for an NPZ export; a PNG grid takes --n (rows per label A)")
        n = 1 if args.n is None else args.n
        check_count(n, "--n", 64)
        ts.save_grid(out, parse_labels(args.label_a, "--label-a", ts.label_a_names, "label A: "),
                     parse_labels(args.label_b, "--label-b", ts.label_b_names, "label B: "), n=n, seed=args.seed)
        print(f"wrote a grid (rows: label A, columns: label B, each image beside its intermediate) to {out}")
        return 0

    @classmethod
    def evaluate(cls, ts: TwoStage, args, out: Path) -> int:
        from ...eval.two_stage import evaluate_two_stage

        n = 100 if args.n_per_pair is None else args.n_per_pair
        r = evaluate_two_stage(ts, out, n_per_pair=n, seed=args.seed, progress=not args.quiet, source=str(args.run))
        m, f = r["model"], r["real_floor"]
        print(f"label A {versus(m, f, 'label_a_accuracy', '.1%')}  label B {versus(m, f, 'label_b_accuracy', '.1%')}  "
              f"IoU {versus(m, f, 'iou', '.3f')}  stage 1 label A {versus(m, f, 'stage1_accuracy', '.1%')}  "
              f"FID {versus(m, f, 'fid', '.3f')}")
        print(f"report: {Path(out) / 'report.md'}")
        return 0

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        return f"condgan sample {run} --out grid.png   |   condgan eval {run}"
