"""The similarity task: an embedding network in which similar images are close (docs/similarity.md).

metric.py trains it (recipes siamese, triplet, frozen, selfsup); config.py is its config section, which
the exemplar task reads too.
"""

from __future__ import annotations

from pathlib import Path

from ...config import Config, DataConfig, load_config
from ...errors import UserError
from ...pipelines import Embedder
from ...registry import Controls, Task, register
from ...search import SearchIndex
from . import config as section
from .config import MINING, RECIPES, SimilarityConfig
from .metric import ClassBalanced, MetricLearning, MetricStep, SymmetricNTXent, embed_all, load_images, read_csv

# the GAN keys a similarity run does not use: not recorded in its config.yaml
GAN_KEYS = ("model.z_dim", "model.g_width", "model.d_width", "train.loss", "train.lr_g", "train.lr_d", "train.beta1",
            "train.beta2", "train.d_steps",
            "train.aux_weight", "train.aux_form", "train.aux_confidence", "train.twin_weight", "train.adc_weight", "train.fake_term_start",
            "train.diversity_weight", "train.l1_weight", "train.ema_decay", "train.ema_start", "train.augment",
            "train.compile", "train.sync_batchnorm")


@register
class SimilarityTask(MetricLearning, Task):
    name = "similarity"
    title = "similarity (an embedding network: which images are alike)"
    models = "embedders (--task similarity)"
    sections = {"similarity": SimilarityConfig}
    defaults = {"train.batch_size": 64, "model.arch": "embedder", "train.diversity_weight": 0.0, "train.l1_weight": 0.0,
                "train.aux_weight": 0.0, "train.augment": []}
    archs = ("embedder",)
    unused = GAN_KEYS
    added_keys = {"similarity": {"pos_margin": 0.0, "projector": 0, "augment": section.old_augment, "neighbour_views": 0.0,
                                 "features": 0, "graph": 0},
                  "train": {"lr_decay": 0.0}}  # runs from before the labelled recipes decayed their rate
    pipeline = Embedder
    flags = {"eval": ("pairs",)}
    flag_keys = {"recipe": "similarity.recipe", "pairs": "similarity.pairs"}
    controls = Controls(title="similarity model (compare two images, search folders)", conditions=lambda p: [],
                        compare=lambda p, a, b: p.compare(a, b),
                        index=lambda p, folder: SearchIndex.of_folder(p, folder, progress=True),
                        query=lambda p, image: p.embed(image)[0])

    @classmethod
    def resolve(cls, config: Config) -> None:
        section.resolve(config.similarity)
        if config.train.lr_decay is None:
            config.train.lr_decay = section.LABELLED_LR_DECAY if config.similarity.recipe != "selfsup" else 0.0
        if config.similarity.recipe == "selfsup" and config.train.precision == "auto":
            config.train.precision = section.SELFSUP_PRECISION

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        s, t = config.similarity, config.train
        return [*section.checks(s),
                (2 <= s.per_class <= t.batch_size,
                 f"similarity.per_class must be between 2 and train.batch_size ({t.batch_size}), not {s.per_class}"),
                (s.embedder is None, "similarity.embedder is for --task exemplar"),
                (t.d_steps == 1, "train.d_steps is for GANs; a similarity run takes 1")]

    @classmethod
    def add_arguments(cls, command: str, parser) -> None:
        if command == "train":
            parser.add_argument("--recipe", choices=RECIPES, help="--task similarity: siamese (contrastive loss on pairs), "
                                "triplet (default: margin loss, in-batch mining), frozen (the evaluator network frozen + a "
                                "learned head) or selfsup (no labels: two augmented views of an image are similar) "
                                "(sets similarity.recipe)")
            parser.add_argument("--pairs", metavar="CSV", help="--task similarity: a CSV of image_a,image_b,similar or of "
                                "anchor,positive,negative (paths relative to the CSV) instead of pairs from class labels "
                                "(sets similarity.pairs)")
        if command == "eval":
            parser.add_argument("--pairs", metavar="CSV", help="similarity run: score verification on the held-out rows "
                                "(every 10th) of this CSV of pairs or triplets (default: the run's own --pairs CSV, or its "
                                "dataset's labelled test split)")

    @classmethod
    def describe(cls, config: Config) -> str:
        return f"{cls.name} {config.similarity.recipe}"

    @classmethod
    def sample(cls, model, args, out: Path) -> int:
        raise UserError(f"{args.run} is an embedder (--task similarity): it makes no images; use condgan compare or "
                        f"condgan search")

    @classmethod
    def evaluate(cls, model: Embedder, args, out: Path) -> int:
        """Verification (LFW protocol) and retrieval on held-out images, or on the held-out rows of a CSV."""
        from ...eval.similarity import evaluate_embedder, evaluate_pairs

        run = Path(args.run)
        pairs, outside = args.pairs, "warn"
        if pairs is None and run.is_dir() and (run / "config.yaml").is_file():
            run_config = load_config(run / "config.yaml", of_run=True)
            pairs, outside = run_config.similarity.pairs, run_config.data.paths_outside
        if pairs:
            fields, _ = read_csv(pairs, "test", model.spec["image"].height, model.spec["image"].channels, outside)
            r = evaluate_pairs(model, fields, out, progress=not args.quiet, source=str(run), seed=args.seed)
        else:
            test = load_images(Config(data=DataConfig(**{k: v for k, v in model.data.items() if v is not None})), "test")
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
        if m.get("roc_auc_flipped") is not None:  # one side of each pair (each query) mirrored, or moved a few pixels
            print("  ".join(f"{change}: ROC AUC {m[f'roc_auc_{change}']:.4f}  EER {m[f'eer_{change}']:.2%}" +
                            (f"  precision@1 {m[f'precision_at_1_{change}']:.2%}" if f"precision_at_1_{change}" in m else "")
                            for change in ("flipped", "shifted")))
        print(f"report: {Path(out) / 'report.md'}")
        return 0

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        return f"condgan eval {run}   |   condgan compare {run} A.png B.png   |   condgan search {run} QUERY.png --in FOLDER"


__all__ = ["SimilarityTask", "SimilarityConfig", "RECIPES", "MINING", "ClassBalanced", "MetricStep", "SymmetricNTXent",
           "embed_all", "load_images", "read_csv"]
