"""Paired image-to-image translation (pix2pix-style): a mask, edge map or sketch in, an image out."""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import Spec
from ..config import Config
from ..errors import ConfigError, UserError
from ..pipelines import Translator, check_count
from ..registry import Controls, register
from ..untrusted import printable
from ..visual import save_sheet
from .base import GANTask, Roles, build_translator, class_term_check, pair_rows, versus

MAX_SHEET = 256


def _generate(p: Translator, values: dict, n: int, seed: int) -> torch.Tensor:
    """n outputs (one noise draw each) of the uploaded source; per row label when the translator takes one."""
    rows = values.get("label", [None])
    source = p.as_sources(values["source"])  # (1, C, H, W), resized to the translator's size
    sources = source.expand(n * len(rows), -1, -1, -1)
    labels = [label for label in rows for _ in range(n)] if p.uses_label else None
    return p.translate(sources, seed=seed, labels=labels)


@register
class TranslationTask(GANTask):
    name = "translate"
    title = "paired image-to-image translation (a mask, edge map or sketch in, an image out)"
    models = "translators"
    defaults = {"train.batch_size": 64, "model.arch": "unet", "model.z_dim": 8, "model.g_width": 32, "model.d_width": 32,
                "train.diversity_weight": 0.0, "train.l1_weight": 10.0, "train.aux_weight": 0.0}
    archs = ("unet",)
    owns = {"data.direction": "--direction", "data.jitter": "", "model.use_label": "", "train.l1_weight": "",
            "train.feature_matching": "", "train.adversarial_weight": ""}
    pipeline = Translator
    flags = {"sample": ("split",), "eval": ("max_pairs",)}
    flag_keys = {"direction": "data.direction"}
    controls = Controls(title="image-to-image translator", conditions=lambda p: ["source"] + (["label"] if p.uses_label else []),
                        rows="label", generate=_generate,
                        hints={"source": "the input image (a mask, edge map or sketch like the training sources); "
                                         "it is resized to the model's size",
                               "label": "the class the output should be"})

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        return [*super().checks(config), class_term_check(config, False)]

    @classmethod
    def add_arguments(cls, command: str, parser) -> None:
        if command == "train":
            parser.add_argument("--direction", choices=("AtoB", "BtoA"),
                                help="translate: AtoB (default: A is the source) or BtoA (sets data.direction)")
        if command == "sample":
            parser.add_argument("--split", choices=("train", "test"), help="translator: which split's pairs to show (default test)")
        if command == "eval":
            parser.add_argument("--max-pairs", type=int, metavar="N", help="translator: score only the first N test pairs "
                                "(default: all)")

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        from ..data.paired import load_pairs

        d = config.data
        pairs = load_pairs(d.name, split, d.data_dir, d.direction, d.image_size, d.classes, d.bad_files, d.paths_outside)
        return pairs.fields(), pairs.spec()

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        """The label (when the pairs have one) conditions G and D only with model.use_label: an edge map
        should be enough to say which garment it is, and the evaluator checks that it is."""
        labelled = config.model.use_label
        if labelled and "label" not in spec:
            raise ConfigError("model.use_label needs pairs with class labels (the built-in fashion-mnist-* pairs have them)")
        cond = ("source", "label") if labelled else ("source",)
        return Roles("image", cond, cond, "label" if labelled else None)

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        m = config.model
        k = spec["label"].num_classes if m.use_label else 0
        return build_translator(spec["source"], spec["image"], k, m.z_dim, m.g_width, m.d_width, class_head)

    @staticmethod
    def preview(run, path: Path) -> torch.Tensor:
        cond = ("label",) if "label" in run.step.g_fields else ()
        return pair_rows(run, run.step.G_ema, "source", cond, path)

    @classmethod
    def sample(cls, tr: Translator, args, out: Path) -> int:
        """A sheet of --n pairs of a data split: source | output | target."""
        if out.suffix.lower() != ".png":
            raise UserError(f"a translator's sample sheet is a .png, not {printable(out.name, 80)!r} "
                            f"(for arrays: condgan apply RUN --split test --out x.npz)")
        split = args.split or "test"
        n = args.n if args.n is not None else 8
        check_count(n, "--n", MAX_SHEET)
        pairs = tr.pairs(split)
        n = min(n, len(pairs))
        labels = pairs.labels[:n] if pairs.labels is not None and tr.uses_label else None
        outputs = tr.translate(pairs.sources[:n], seed=args.seed, labels=labels.tolist() if labels is not None else None)
        save_sheet([pairs.sources[:n], outputs, pairs.targets[:n]], ["source", "output", "target"], out,
                   title=f"{n} {split} pairs of {printable(pairs.name, 60)}")
        print(f"wrote a sheet of {n} {split} pairs (source | output | target) to {out}")
        return 0

    @classmethod
    def evaluate(cls, tr: Translator, args, out: Path) -> int:
        from ..eval.translation import evaluate_translator

        if args.max_pairs is not None and args.max_pairs < 2:
            raise UserError(f"--max-pairs must be at least 2, not {args.max_pairs}")
        r = evaluate_translator(tr, out, seed=args.seed, progress=not args.quiet, source=str(args.run), max_pairs=args.max_pairs)
        m, f = r["model"], r["real_floor"]
        line = f"L1 {m['l1']:.4f}  SSIM {m['ssim']:.3f}  sharpness {m['sharpness_ratio']:.2f}x real"
        if m.get("fid") is not None:
            line += f"  FID {versus(m, f, 'fid', '.3f')}  recall {versus(m, f, 'recall', '.3f')}"
        if m.get("class_accuracy") is not None:
            line += f"  class accuracy {versus(m, f, 'class_accuracy', '.1%')}"
        print(line)
        print(f"report: {Path(out) / 'report.md'}")
        return 0

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        return f"condgan eval {run}   |   condgan apply {run} INPUT_FOLDER --out OUT_FOLDER"
