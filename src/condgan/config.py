"""Typed run configuration: dataclasses with YAML on top.

A config file names its `task` (cgan: class-conditional generation; translate:
paired image-to-image translation; two-stage: label A -> intermediate -> image
with label B) and has three sections (data, model, train) mirroring the
pipeline, plus `stages` and `joint` for task two-stage. Keys left at None take
the task's default (TASK_DEFAULTS). Unknown keys and wrong types are errors that name the key, because a typo in a
config silently ignored can waste hours of training.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError, UserError
from .untrusted import MAX_SEED, MAX_TEXT_VALUE, load_yaml, printable, read_text, shown


@dataclass
class DataConfig:
    name: str = "fashion-mnist"       # 'fashion-mnist', 'mnist', or a folder path
    data_dir: str | None = None       # where the IDX files live, if not the default
    classes: list[str] | None = None  # train on a subset, relabelled 0..k-1
    image_size: int | None = None     # resize to this (default: native; 64 for folders)
    channels: int | None = None       # 1 or 3 (default: from the data)
    bad_files: str = "skip"           # unreadable images in folders: 'skip' (warn) or 'error'
    cache: str = "auto"               # folders of images: 'memory' (decode all into RAM), 'disk' (decode once into
                                      # $CONDGAN_CACHE/decoded, read batches from there: memory stays flat), or
                                      # 'auto': disk when the decoded images would exceed 2 GiB
    direction: str = "AtoB"           # translate: AtoB (A is the source) or BtoA
    jitter: list[str] = field(default_factory=list)  # translate: random 'flip', 'shift' of each pair, the same for source and target


@dataclass
class ModelConfig:
    arch: str | None = None           # cgan: 'resnet' (default) | 'dcgan' | 'mlp'; translate: 'unet'
    z_dim: int | None = None          # noise size (cgan 64; translate 8, injected at the U-Net's bottleneck)
    g_width: int | None = None        # G channels at full resolution (doubles per lower level); cgan 16, translate 32
    d_width: int | None = None        # D channels at full resolution; cgan 16, translate 32
    use_label: bool = False           # translate: also condition G (conditional norm) and D (projection) on the
                                      # pairs' class label; off, labels are only used to evaluate


@dataclass
class TrainConfig:
    loss: str = "hinge"               # 'hinge' | 'lsgan' | 'bce'
    batch_size: int | None = None     # 64; a resnet cgan above 32 px: 32 (more steps in the same minutes)
    lr_g: float = 4e-4
    lr_d: float = 8e-4                # D learns twice as fast as G (TTUR): measured better in 10 minutes
    beta1: float = 0.0
    beta2: float = 0.99
    d_steps: int = 1                  # D updates per G update
    aux_weight: float | None = None   # auxiliary class loss in D and G; default 2.5 for resnet (the
                                      # only D with a class head), 0 for the classic recipes
    aux_form: str | None = None       # G's class term: 'ce' (AC-GAN cross-entropy) | 'margin' (stops once D gives the
                                      # class aux_confidence: less prototypical) | 'twin' (TAC-GAN: a twin class head
                                      # on generated images cancels the pull towards prototypes; resnet cgan only) |
                                      # 'adc' (ADC-GAN: one head tells real and generated images of each class
                                      # apart; G is rewarded for real-of-its-class over generated-of-its-class) |
                                      # 'd2d' (ReACGAN's data-to-data cross-entropy on a class embedding in D:
                                      # stops pulling near the class proxy).
                                      # None: adc for the resnet cgan up to 32 px (more recall, better FID and
                                      # per-class FID on Fashion-MNIST), ce above (better FID at 64 px) and elsewhere
    aux_confidence: float = 0.9       # aux_form margin: D's probability of the requested class that is enough
    twin_weight: float | None = None  # aux_form twin: share of the twin term in G's class loss (1 = TAC-GAN, which
                                      # mixes similar classes; default 0.35 keeps most of AC-GAN's pull towards its
                                      # class)
    adc_weight: float | None = None   # aux_form adc: share of the generated-class term in G's class loss (1 = ADC-GAN;
                                      # default 0.1: more gives up class accuracy, docs/benchmarks.md). Older
                                      # condgan read train.twin_weight here; from_dict migrates old configs
    fake_term_start: int = 0          # aux_form twin/adc: G steps on plain cross-entropy before the generated-image
                                      # class term (twin's twin head, adc's generated classes) joins (G first learns
                                      # the classes; D's heads train from the start). Was train.twin_start
    diversity_weight: float | None = None  # mode-seeking term in G's loss: keeps samples of one class varied
                                      # (it offsets the sameness that a strong aux_weight brings); cgan 0.5,
                                      # 0.75 with aux_form adc (FORM_DEFAULTS)
    l1_weight: float | None = None    # translate: weight of L1 to the target, 10 (pix2pix used 100: blurrier here,
                                      # docs/benchmarks.md); cgan: 0
    adversarial_weight: float = 1.0   # weight of the adversarial term in G's loss (0 = a plain L1 regressor)
    feature_matching: float = 0.0     # translate: weight of matching D's features of real and generated pairs
    ema_decay: float = 0.99           # EMA of G's weights, used for sampling; 0 disables
    ema_start: int = 500              # steps before the EMA starts tracking
    augment: list[str] | None = None  # DiffAugment ops for D's inputs: translation, cutout, brightness; [] = none.
                                      # None (default): cgan on < 10,000 images gets translation,cutout (small data
                                      # overfits D), otherwise none; the choice is logged and written to config.yaml
    steps: int | None = None          # stop after this many G steps ...
    epochs: float | None = None       # ... or this many passes over the data ...
    budget_minutes: float | None = None  # ... or this much training time (first reached wins)
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500           # write a class grid every N steps
    checkpoint_every: int = 1000      # steps between checkpoints
    checkpoint_minutes: float = 5.0   # ... and at least this often in wall-clock time
    keep_checkpoints: int = 3         # older checkpoints are deleted
    on_divergence: str = "stop"       # NaN/Inf: 'stop', or 'rollback' to the last good checkpoint
    deterministic: bool = False       # bit-reproducible on CPU (slower)
    device: str = "auto"              # 'auto' | 'cpu' | 'cuda' | 'cuda:N'
    threads: int | None = None        # CPU threads (default: torch's choice; torchrun sets 1 per process)
    precision: str = "auto"           # 'auto' (bf16 where the CPU/GPU computes it natively, else fp32) | 'fp32' |
                                      # 'bf16' (autocast) | 'fp16' (GPU only, with gradient scaling); weights and
                                      # optimiser state stay fp32 (docs/distributed.md, docs/benchmarks.md)
    channels_last: bool | None = None  # NHWC memory format (default: on for CPU, where oneDNN is faster with it)
    compile: bool = False             # torch.compile G and D: minutes of compiling first (docs/benchmarks.md)
    sync_batchnorm: bool = False      # several processes (torchrun): G's BatchNorm statistics over the whole batch,
                                      # not each process's share (slower: one all_reduce per BatchNorm layer)


@dataclass
class StagesConfig:
    """Task two-stage: G1(label A) -> intermediate, G2(intermediate, label B) -> image (docs/two-stage.md).
    model.* and train.* describe stage 1 (G1, D1) and the shared optimiser settings; G2/D2 are set here."""
    stage: str = "all"                # what a run trains: all (stage1, stage2, joint in turn) | stage1 | stage2 | joint
    fractions: list[float] = field(default_factory=lambda: [0.45, 0.25, 0.3])  # shares of a --budget-minutes
                                      # for stage1, stage2 and joint when stage is all
    g2_width: int = 32                # G2 (U-Net) channels at full resolution
    d2_width: int = 32                # D2 (patch D on image + intermediate) channels at full resolution
    z2_dim: int = 8                   # G2's noise, at its bottleneck
    l1_weight: float = 10.0           # stage 2: L1 of G2's output to the real image (teacher forcing)
    class_b_weight: float = 1.0       # stage 2: label-B class loss (D2's class head) in D2 and G2
    from_scratch: bool = False        # joint: start from untrained networks instead of the stage runs
                                      # (the "no stages" baseline of benchmarks/two_stage.py)


@dataclass
class JointConfig:
    """The joint stage: G1 -> G2 on G1's own intermediates. Each loss term of the generators has a weight
    (0 turns it off; None: the weight the same term had in its stage) and `*_updates`: which generators its
    gradient updates (G1, G2 or both)."""
    lr_g: float = 1e-4                # both generators (fine-tuning: lower than the stages' rates)
    lr_d: float = 2e-4                # both discriminators
    lr_c: float = 1e-3                # the label-A classifier C (learns from real images, from scratch)
    adv_mask: float = 1.0             # D1's adversarial loss on G1's intermediates
    adv_mask_updates: list[str] = field(default_factory=lambda: ["G1"])
    class_mask: float | None = None   # D1's class head: G1's intermediate shows label A (stage 1: train.aux_weight)
    class_mask_updates: list[str] = field(default_factory=lambda: ["G1"])
    diversity: float | None = None    # mode seeking among G1's intermediates of one label A (train.diversity_weight)
    diversity_updates: list[str] = field(default_factory=lambda: ["G1"])
    adv_image: float = 1.0            # D2's adversarial loss on (final image, G1's intermediate, label B)
    adv_image_updates: list[str] = field(default_factory=lambda: ["G2"])
    class_b: float | None = None      # D2's class head: the final image shows label B (stages.class_b_weight)
    class_b_updates: list[str] = field(default_factory=lambda: ["G2"])
    class_a: float = 1.0              # classifier C (trained on real images' grey detail): the final image shows label A
    class_a_updates: list[str] = field(default_factory=lambda: ["G1", "G2"])
    l1_teacher: float | None = None   # G2 on the real intermediate: L1 to the real image, keeps G2 on real data
                                      # (stages.l1_weight)
    l1_teacher_updates: list[str] = field(default_factory=lambda: ["G2"])

    TERMS = ("adv_mask", "class_mask", "diversity", "adv_image", "class_b", "class_a", "l1_teacher")


STAGES = ("all", "stage1", "stage2", "joint")
GENERATORS = ("G1", "G2")


@dataclass
class SimilarityConfig:
    """Keys of the similarity task (an embedding network) and of the exemplar task that uses one."""

    recipe: str = "triplet"           # similarity: siamese (contrastive loss on pairs) | triplet (margin loss, mined
                                      # in the batch) | frozen (the evaluator network frozen, a learned head) |
                                      # selfsup (two augmented views are the positive pair; no labels)
    embed_dim: int = 64               # size of an embedding (L2-normalised; similarity = cosine)
    margin: float | None = None       # siamese: distance negatives are pushed beyond (1.4: about orthogonal);
                                      # triplet/frozen: 0.2
    pos_margin: float | None = None   # siamese: distance within which similar pairs stop being pulled together
                                      # (0.7; 0 pulls every image of a class onto one point: ROC AUC 0.905 vs 0.982
                                      # in docs/similarity.md)
    mining: str = "semihard"          # triplet/frozen: which in-batch triplets count: semihard | hard | all
    per_class: int = 8                # images per class in a batch: batch_size // per_class classes of per_class
                                      # images each (class-balanced; with labels only)
    temperature: float = 0.1          # selfsup: NT-Xent temperature
    projector: int | None = None      # selfsup: hidden width of a projection MLP between the embedding and the
                                      # NT-Xent loss (SimCLR; 256: ROC AUC 0.82 vs 0.69 without, docs/similarity.md);
                                      # 0 = the loss sees the embedding itself
    lr: float = 1e-3                  # Adam learning rate of the embedding network
    width: int = 32                   # channels of the embedding CNN's first block (doubles twice)
    pairs: str | None = None          # a CSV of image_a,image_b,similar or of anchor,positive,negative (paths
                                      # relative to the CSV) instead of pairs made from class labels
    embedder: str | None = None       # exemplar: the similarity run (or export) whose embedder conditions G
    neighbours: int = 10              # exemplar: real images for an exemplar are its k nearest neighbours


AUX_FORMS = ("ce", "margin", "twin", "adc", "d2d")
# Settings measured together with a class term: filled in when left unset, once train.aux_form is known.
FORM_DEFAULTS = {"twin": {"train.twin_weight": 0.35},
                 "adc": {"train.adc_weight": 0.1, "train.diversity_weight": 0.75}}
CGAN_DIVERSITY_WEIGHT = 0.5  # the cgan's mode-seeking weight with the other class terms


def size_defaults(arch: str, image_size: int) -> dict:
    """A cgan's widths (G and D channels at full resolution) and batch size: 16 and 64, but 8 and 32 for the
    resnet above 32 px, where the full-resolution layers take most of the CPU time: at 64 px that model made
    3.4x the steps of the wider one in the same minutes, with a third of its FID (docs/benchmarks.md, "Your
    own folder at 64 px"). G's class term: the resnet's adc form up to 32 px, where it lifted recall, FID and
    per-class FID on Fashion-MNIST; ce above, where the twin form's FID was worse on the shoe folder (adc was
    not measured there)."""
    large = arch == "resnet" and image_size > 32
    return {"model.g_width": 8 if large else 16, "model.d_width": 8 if large else 16, "train.batch_size": 32 if large else 64,
            "train.aux_form": "adc" if arch == "resnet" and not large else "ce"}
TASKS = ("cgan", "translate", "two-stage", "similarity", "exemplar")
RECIPES = ("siamese", "triplet", "frozen", "selfsup")
MINING = ("semihard", "hard", "all")
SMALL_DATA = 10_000  # below this many training images, a cgan augments D's inputs by default (train.augment)
SMALL_DATA_AUGMENT = ["translation", "cutout"]
# None in a config means "the task's default"; validate() fills these in, so config.yaml shows what ran.
TASK_DEFAULTS = {
    "cgan": {"model.arch": "resnet", "model.z_dim": 64,  # widths, batch size, class terms: size_defaults(), once
             "train.l1_weight": 0.0},                    # the size is known
    "translate": {"train.batch_size": 64, "model.arch": "unet", "model.z_dim": 8, "model.g_width": 32, "model.d_width": 32,
                  "train.diversity_weight": 0.0, "train.l1_weight": 10.0, "train.aux_weight": 0.0},
    "two-stage": {"train.batch_size": 64, "model.arch": "resnet", "model.z_dim": 64, "model.g_width": 16, "model.d_width": 16,
                  "train.diversity_weight": 0.5, "train.l1_weight": 0.0},
    "similarity": {"train.batch_size": 64, "model.arch": "embedder", "model.z_dim": 1, "model.g_width": 1, "model.d_width": 1,
                   "train.diversity_weight": 0.0, "train.l1_weight": 0.0, "train.aux_weight": 0.0, "train.augment": []},
    "exemplar": {"train.batch_size": 64, "model.arch": "resnet", "model.z_dim": 64, "model.g_width": 16, "model.d_width": 16,
                 "train.diversity_weight": 0.0, "train.l1_weight": 0.0, "train.aux_weight": 0.0},
}
TASK_ARCHS = {"cgan": ("resnet", "dcgan", "mlp"), "translate": ("unet",), "two-stage": ("resnet",),
              "similarity": ("embedder",), "exemplar": ("resnet",)}
# Keys that may change when a run is resumed: when and how to stop, log and save, and where and how to run.
# Everything else is the run's recipe (model, data, optimiser) and is fixed by its checkpoint.
RUNTIME_KEYS = {f"train.{k}" for k in ("steps", "epochs", "budget_minutes", "log_every", "sample_every",
                                        "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
                                        "on_divergence", "device", "threads", "deterministic", "precision",
                                        "sync_batchnorm", "channels_last", "compile")} | {"data.cache"}


@dataclass
class Config:
    task: str = "cgan"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)  # task two-stage only
    joint: JointConfig = field(default_factory=JointConfig)     # task two-stage only
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)  # tasks similarity, exemplar

    def aux_weight(self) -> float:
        """train.aux_weight with its architecture-dependent default resolved."""
        if self.train.aux_weight is not None:
            return self.train.aux_weight
        return 2.5 if self.model.arch == "resnet" else 0.0

    def to_dict(self) -> dict:
        """As nested dicts; the two-stage sections only for task two-stage (other runs' config.yaml stay as they were)."""
        out = dataclasses.asdict(self)
        if self.task != "two-stage":
            del out["stages"], out["joint"]
        return out

    def resolve_for_size(self, image_size: int) -> list[str]:
        """Fill model.g_width/d_width and train.batch_size left unset (a cgan's defaults depend on the image
        size, known once the data is loaded), then the class term's own defaults; returns the keys it filled."""
        return self.fill_unset(size_defaults(self.model.arch, image_size)) + self.resolve_form_defaults()

    def fill_unset(self, defaults: dict) -> list[str]:
        """Set each 'section.key' of `defaults` that is still None; returns the keys it set."""
        filled = [key for key in defaults if self.get(key) is None]
        for key in filled:
            section, name = key.split(".")
            setattr(getattr(self, section), name, defaults[key])
        return filled

    def resolve_form_defaults(self) -> list[str]:
        """Fill the unset keys that go with the chosen class term (FORM_DEFAULTS); returns those it filled.
        Nothing before train.aux_form is known (the resnet cgan's depends on the image size)."""
        t = self.train
        if t.aux_form is None:
            return []
        filled = self.fill_unset(FORM_DEFAULTS.get(t.aux_form, {}))
        t.twin_weight = 0.0 if t.twin_weight is None else t.twin_weight  # (a form without a twin term)
        t.adc_weight = 0.0 if t.adc_weight is None else t.adc_weight  # (a form without generated classes)
        t.diversity_weight = CGAN_DIVERSITY_WEIGHT if t.diversity_weight is None else t.diversity_weight  # (cgan)
        return filled

    def get(self, key: str):
        section, name = key.split(".")
        return getattr(getattr(self, section), name)

    def validate(self) -> "Config":
        from .losses import LOSSES
        from .training.augment import JITTER, POLICIES
        from .untrusted import device

        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {shown(self.task)}")
        self.fill_unset(TASK_DEFAULTS[self.task])
        if self.task == "two-stage":  # joint terms left at None weigh what they weighed in their stage
            for term, key in (("class_mask", None), ("diversity", "train.diversity_weight"),
                              ("class_b", "stages.class_b_weight"), ("l1_teacher", "stages.l1_weight")):
                if getattr(self.joint, term) is None:
                    setattr(self.joint, term, self.aux_weight() if key is None else self.get(key))
        archs = TASK_ARCHS[self.task]
        t, m = self.train, self.model
        if t.aux_form is None and not (self.task == "cgan" and m.arch == "resnet"):
            t.aux_form = "ce"  # the resnet cgan's default depends on the image size: size_defaults()
        self.resolve_form_defaults()
        finite = {k: getattr(t, k) for k in ("lr_g", "lr_d", "beta1", "beta2", "aux_weight", "diversity_weight", "l1_weight",
                                             "adversarial_weight", "feature_matching", "ema_decay", "epochs",
                                             "budget_minutes", "checkpoint_minutes")}
        for key, value in finite.items():
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"train.{key} must be a finite number, not {value}")
        sizes = {"model.z_dim": (m.z_dim, 1, 4096), "model.g_width": (m.g_width, 1, 4096), "model.d_width": (m.d_width, 1, 4096),
                 "train.d_steps": (t.d_steps, 1, 100), "train.seed": (t.seed, 0, MAX_SEED),
                 "train.threads": (t.threads, 1, 1024), "train.keep_checkpoints": (t.keep_checkpoints, 1, 10_000),
                 "train.fake_term_start": (t.fake_term_start, 0, 10**9)}
        for key, (value, low, high) in sizes.items():
            if value is not None and not low <= value <= high:
                raise ConfigError(f"{key} must be between {low:,} and {high:,}, not {shown(value)}")
        if self.data.classes is not None and not self.data.classes:
            raise ConfigError("data.classes (--classes) is empty; name at least 2 classes, or leave it out to train on every class")
        checks = [
            (bool(self.data.name.strip()), "data.name must not be empty (fashion-mnist, mnist, or a folder)"),
            (0 <= t.beta1 < 1, f"train.beta1 must be in [0, 1), not {t.beta1}"),
            (0 <= t.beta2 < 1, f"train.beta2 must be in [0, 1), not {t.beta2}"),
            (t.ema_start >= 0, f"train.ema_start must be >= 0, not {t.ema_start}"),
            (t.checkpoint_minutes > 0, "train.checkpoint_minutes must be positive"),
            (self.task == "translate" or self.data.direction == "AtoB",
             "--direction is for --task translate (data.direction); a cgan has no source image"),
            (self.model.arch in archs, f"model.arch for task {self.task} must be one of {', '.join(archs)}, not {self.model.arch!r}"),
            (self.train.loss in LOSSES, f"train.loss must be one of {', '.join(LOSSES)}, not {self.train.loss!r}"),
            (all(a in POLICIES for a in self.train.augment or []), f"train.augment items must be among {', '.join(POLICIES)}, not {self.train.augment}"),
            (self.train.on_divergence in ("stop", "rollback"), "train.on_divergence must be 'stop' or 'rollback'"),
            (self.data.bad_files in ("skip", "error"), "data.bad_files must be 'skip' or 'error'"),
            (self.data.cache in ("auto", "memory", "disk"), f"data.cache must be auto, memory or disk, not {self.data.cache!r}"),
            (self.train.precision in ("auto", "fp32", "bf16", "fp16"),
             f"train.precision must be auto, fp32, bf16 or fp16, not {self.train.precision!r}"),
            (self.data.channels in (None, 1, 3), "data.channels must be 1 or 3"),
            (self.data.image_size is None or 8 <= self.data.image_size <= 1024, "data.image_size must be between 8 and 1024"),
            (self.train.batch_size is None or 1 <= self.train.batch_size <= 65536, "train.batch_size must be between 1 and 65536"),
            (self.model.z_dim >= 1 and all(w is None or w >= 1 for w in (self.model.g_width, self.model.d_width)),
             "model sizes must be positive"),
            (self.train.lr_g > 0 and self.train.lr_d > 0, "learning rates must be positive"),
            (0 <= self.train.ema_decay < 1, "train.ema_decay must be in [0, 1)"),
            (self.train.aux_weight is None or self.train.aux_weight >= 0, "train.aux_weight must be >= 0"),
            (self.train.diversity_weight is None or self.train.diversity_weight >= 0, "train.diversity_weight must be >= 0"),
            (t.aux_form is None or t.aux_form in AUX_FORMS, f"train.aux_form must be one of {', '.join(AUX_FORMS)}, not {shown(t.aux_form)}"),
            (math.isfinite(t.aux_confidence) and 0 < t.aux_confidence < 1,
             f"train.aux_confidence must be between 0 and 1 (exclusive), not {t.aux_confidence}"),
            *[(w is None or (math.isfinite(w) and 0 <= w <= 1), f"train.{k} must be in [0, 1], not {w}")
              for k, w in (("twin_weight", t.twin_weight), ("adc_weight", t.adc_weight))],
            (t.aux_form not in ("twin", "adc", "d2d") or (self.task == "cgan" and self.model.arch == "resnet"),
             f"train.aux_form={t.aux_form} needs --task cgan with model.arch=resnet (the D with class heads)"),
            (not self.train.aux_weight or self.model.arch in ("resnet", "unet"),
             "train.aux_weight needs model.arch=resnet (the only class-conditional D with a class head)"),
            (self.train.l1_weight >= 0 and self.train.feature_matching >= 0 and self.train.adversarial_weight >= 0,
             "train.l1_weight, train.feature_matching and train.adversarial_weight must be >= 0"),
            (self.task == "translate" or not (self.train.l1_weight or self.train.feature_matching),
             "train.l1_weight and train.feature_matching are for task translate (a cgan has no paired target)"),
            (self.task == "translate" or self.train.adversarial_weight > 0, "train.adversarial_weight=0 is for task translate"),
            (self.task == "translate" or not self.model.use_label, "model.use_label is for task translate (a cgan always uses its label)"),
            (self.data.direction in ("AtoB", "BtoA"), f"data.direction must be AtoB or BtoA, not {self.data.direction!r}"),
            (all(j in JITTER for j in self.data.jitter), f"data.jitter items must be among {', '.join(JITTER)}, not {self.data.jitter}"),
            (self.train.d_steps >= 1, "train.d_steps must be at least 1"),
            (self.train.keep_checkpoints >= 1, "train.keep_checkpoints must be at least 1"),
            (all(v is None or v > 0 for v in (self.train.steps, self.train.epochs, self.train.budget_minutes)),
             "train.steps, train.epochs and train.budget_minutes must be positive"),
            (min(self.train.log_every, self.train.sample_every, self.train.checkpoint_every) >= 1, "train.*_every must be at least 1"),
            *self._two_stage_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._validate_similarity()
        try:
            device(t.device, "train.device")
        except UserError as e:
            raise ConfigError(str(e)) from None
        return self


    def _two_stage_checks(self) -> list[tuple[bool, str]]:
        st, j = self.stages, self.joint
        changed = [f"{name}.{f.name}" for name, section, default in (("stages", st, StagesConfig()), ("joint", j, JointConfig()))
                   for f in dataclasses.fields(section) if getattr(section, f.name) != getattr(default, f.name)
                   and not (name == "stages" and f.name == "stage")]
        if self.task != "two-stage":
            return [(not changed, f"{changed[0] if changed else ''} is for task two-stage")]
        return [
            (st.stage in STAGES, f"stages.stage must be one of {', '.join(STAGES)}, not {st.stage!r}"),
            (len(st.fractions) == 3 and all(f >= 0 for f in st.fractions) and sum(st.fractions) > 0,
             f"stages.fractions must be three shares >= 0 (stage1, stage2, joint), not {st.fractions}"),
            (min(st.g2_width, st.d2_width, st.z2_dim) >= 1, "stages.g2_width, d2_width and z2_dim must be positive"),
            (st.l1_weight >= 0 and st.class_b_weight >= 0, "stages.l1_weight and stages.class_b_weight must be >= 0"),
            (j.lr_g > 0 and j.lr_d > 0 and j.lr_c > 0, "joint.lr_g, joint.lr_d and joint.lr_c must be positive"),
            *[(getattr(j, t) is not None and getattr(j, t) >= 0, f"joint.{t} must be >= 0 (0 turns the term off)")
              for t in JointConfig.TERMS],
            *[(bool(getattr(j, f"{t}_updates")) and all(g in GENERATORS for g in getattr(j, f"{t}_updates")),
               f"joint.{t}_updates must name the generators the term updates: G1, G2 or G1,G2; not {getattr(j, f'{t}_updates')}")
              for t in JointConfig.TERMS],
            (not self.model.use_label, "model.use_label is for task translate (two-stage always uses both labels)"),
            (not self.data.jitter and self.data.direction == "AtoB", "data.jitter and data.direction are for task translate"),
        ]

    def _validate_similarity(self) -> None:
        s = self.similarity
        if self.task not in ("similarity", "exemplar"):
            if s != SimilarityConfig():
                raise ConfigError(f"the similarity section is for --task similarity or exemplar, not {self.task}")
            return
        if s.margin is None:
            s.margin = 1.4 if s.recipe == "siamese" else 0.2
        if s.pos_margin is None:
            s.pos_margin = 0.7 if s.recipe == "siamese" else 0.0
        if s.projector is None:
            s.projector = 256 if s.recipe == "selfsup" else 0
        checks = [
            (s.recipe in RECIPES, f"similarity.recipe must be one of {', '.join(RECIPES)}, not {shown(s.recipe)}"),
            (s.mining in MINING, f"similarity.mining must be one of {', '.join(MINING)}, not {shown(s.mining)}"),
            (2 <= s.embed_dim <= 4096, f"similarity.embed_dim must be between 2 and 4,096, not {s.embed_dim}"),
            (1 <= s.width <= 1024, f"similarity.width must be between 1 and 1,024, not {s.width}"),
            (math.isfinite(s.margin) and s.margin > 0, f"similarity.margin must be a positive number, not {s.margin}"),
            (s.recipe == "siamese" or s.pos_margin == 0, "similarity.pos_margin is for recipe siamese"),
            (math.isfinite(s.pos_margin) and 0 <= s.pos_margin < s.margin,
             f"similarity.pos_margin must be at least 0 and below similarity.margin ({s.margin}), not {s.pos_margin}"),
            (math.isfinite(s.temperature) and s.temperature > 0, "similarity.temperature must be a positive number"),
            (0 <= s.projector <= 4096, f"similarity.projector must be between 0 and 4,096, not {s.projector}"),
            (s.recipe == "selfsup" or s.projector == 0, "similarity.projector is for recipe selfsup"),
            (math.isfinite(s.lr) and s.lr > 0, "similarity.lr must be a positive number"),
            (self.task != "similarity" or 2 <= s.per_class <= self.train.batch_size,
             f"similarity.per_class must be between 2 and train.batch_size ({self.train.batch_size}), not {s.per_class}"),
            (1 <= s.neighbours <= 1000, f"similarity.neighbours must be between 1 and 1,000, not {s.neighbours}"),
            (not (s.pairs and s.recipe == "selfsup"), "similarity.pairs is a CSV of labelled pairs; recipe selfsup uses no "
             "labels (leave out similarity.pairs, or choose recipe siamese, triplet or frozen)"),
            (self.task == "exemplar" or s.embedder is None, "similarity.embedder is for --task exemplar"),
            (self.task == "exemplar" or self.train.d_steps == 1, "train.d_steps is for GANs; a similarity run takes 1"),
            (self.task != "exemplar" or s.pairs is None, "similarity.pairs is for --task similarity"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def from_dict(raw: dict | None) -> Config:
    """Build a Config from nested dicts, rejecting unknown keys and wrong types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("a config file must be a mapping with sections data, model, train")
    raw = migrate_renamed_keys(raw)
    sections = {}
    task = raw.get("task", "cgan")
    if not isinstance(task, str):
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {shown(task)}")
    for section in dataclasses.fields(Config):
        if section.name == "task":
            continue
        value = raw.get(section.name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config section {section.name!r} must be a mapping of keys, not {shown(value)}")
        sections[section.name] = _build(_SECTIONS[section.name], value, section.name)
    unknown = [k for k in raw if k not in _SECTIONS and k != "task"]
    if unknown:
        raise ConfigError(f"unknown config section {printable(unknown[0], 60)!r}; a config has task and sections {', '.join(_SECTIONS)}")
    return Config(task=task, **sections).validate()


# train keys renamed because their old name said less (or two things): old name -> today's
RENAMED_TRAIN_KEYS = {"twin_start": "fake_term_start"}


def migrate_renamed_keys(raw: dict) -> dict:
    """`raw` with old key names moved to today's, so old runs and configs load and train as they did, and one
    notice naming the moves. train.twin_weight was also adc's weight: with aux_form adc, or unset (which never
    resolves to twin: the key could only mean adc's weight there), it becomes train.adc_weight."""
    train = raw.get("train")
    if not isinstance(train, dict):
        return raw
    train, moved = dict(train), []
    if (train.get("aux_form") in (None, "adc") and train.get("twin_weight") is not None
            and train.get("adc_weight") is None):
        train["adc_weight"] = train.pop("twin_weight")
        moved.append("train.twin_weight -> train.adc_weight (the weight of aux_form adc's generated-class term)")
    for old, new in RENAMED_TRAIN_KEYS.items():
        if old in train:
            if new in train:
                raise ConfigError(f"train.{old} is the old name of train.{new}; give train.{new} only")
            train[new] = train.pop(old)
            moved.append(f"train.{old} -> train.{new}")
    if moved:
        warnings.warn(f"config keys renamed: {'; '.join(moved)}. Read under the new names (the old ones still "
                      f"load; write the new ones)", FutureWarning, stacklevel=3)
    return {**raw, "train": train}


# Keys added after runs were first made, with what a run's config.yaml without them was trained with (today's
# defaults differ). A run keeps its recipe when resumed or evaluated: see load_config(of_run=True).
ADDED_KEYS = {"similarity": {"pos_margin": 0.0, "projector": 0}, "train": {"aux_form": "ce"}}


def load_config(path: str | Path | None = None, overrides: list[str] = (), of_run: bool = False) -> Config:
    """Read a YAML config (or the defaults) and apply `key=value` overrides. of_run: the file is a run's own
    config.yaml (resume, evaluate), so keys an older condgan did not write keep the meaning they had then."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist (copy one from configs/)")
        try:
            raw = load_yaml(read_text(path, "config file"), str(path))
        except UserError as e:
            raise ConfigError(str(e)) from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must be a mapping with task and sections data, model, train, "
                              f"not a YAML {type(raw).__name__}")
        if of_run:
            for section, keys in ADDED_KEYS.items():
                if isinstance(raw.get(section), dict) and (section != "similarity" or raw.get("task") in ("similarity", "exemplar")):
                    for key, old in keys.items():
                        raw[section].setdefault(key, old)
    for key, parsed in parse_overrides(overrides):
        if key == "task":
            raw["task"] = parsed
            continue
        parts = key.split(".")
        raw.setdefault(parts[0], {})
        if not isinstance(raw[parts[0]], dict):
            raise ConfigError(f"config section {parts[0]!r} must be a mapping")
        raw[parts[0]][parts[1]] = parsed
    return from_dict(raw)


def parse_overrides(overrides) -> list[tuple[str, object]]:
    """`section.key=value` strings (or `task=...`) as (key, YAML-parsed value) pairs."""
    parsed_items = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or (key != "task" and len(key.split(".")) != 2):
            raise ConfigError(f"--set expects section.key=value (e.g. train.lr_g=1e-4) or task=NAME, got {item!r}")
        try:
            parsed = load_yaml(value, "--set") if value.strip() else None
        except ConfigError:
            parsed = value
        parsed_items.append((key, parsed))
    return parsed_items


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "stages": StagesConfig, "joint": JointConfig,
             "similarity": SimilarityConfig}


def _build(cls, values: dict, section: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=2)
            hint = f"did you mean {' or '.join(f'{section}.{c}' for c in close)}?" if close else \
                f"known keys in {section}: {printable(', '.join(sorted(known)), 240)}"
            raise ConfigError(f"unknown config key '{section}.{printable(key, 60)}'; {hint}")
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**kwargs)


def _coerce(value, hint, name: str):
    """Check `value` against a type hint; accept ints for floats and 'a,b' for lists."""
    args = typing.get_args(hint)
    if isinstance(value, str) and len(value) > MAX_TEXT_VALUE:
        raise ConfigError(f"{name} is longer than {MAX_TEXT_VALUE} characters ({shown(value)})")
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name)
    if value is None:
        raise ConfigError(f"{name} must be given a value (got nothing)")
    if typing.get_origin(hint) is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list, got {shown(value)}")
        if len(value) > 10_000:
            raise ConfigError(f"{name} has {len(value)} items; that is not a config value")
        return [_coerce(v, args[0], name) for v in value]
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads '1e-4' (no dot) as a string
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {shown(value)}") from None
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. classes given as digits
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be {hint.__name__}, got {shown(value)}")
    return value
