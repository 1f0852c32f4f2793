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

from . import registry
from .errors import ConfigError, UserError
from .untrusted import MAX_SEED, MAX_TEXT_VALUE, PATHS_OUTSIDE, device, load_yaml, printable, read_text, shown


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
    paths_outside: str = "warn"       # CSV rows (two-stage manifests, similarity.pairs) naming files outside the
                                      # CSV's folder ('../x.png', '/abs/x.png'): 'warn' (one warning) or 'error'


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


def check_image_size(arch: str, height: int, width: int | None = None, given: bool = True) -> None:
    """Refuse an image size the networks of `arch` cannot be built at, as a ConfigError naming data.image_size,
    instead of a ValueError from a constructor: the resnet and DCGAN halve the image until a 4 to 7 px base,
    so it must be even and at least 8; the U-Net, patch D and embedder pool it to a few pixels (at least 4).
    given: the size is the config's data.image_size (checked before any data is read), else the data's own."""
    width = height if width is None else width
    halving = arch in ("resnet", "dcgan")
    low = 8 if halving else 4 if arch in ("unet", "embedder") else 1
    if min(height, width) >= low and not (halving and (height % 2 or width % 2)):
        return
    allowed = f"an even number of at least {low} (e.g. 28, 32, 64)" if halving else f"at least {low}"
    if given:
        raise ConfigError(f"data.image_size {height} does not fit model.arch {arch}: it must be {allowed}")
    shape = f"{height}" if height == width else f"{height}x{width}"
    raise ConfigError(f"the images are {shape} px (data.image_size unset: their own size), but model.arch {arch} "
                      f"needs a size of {allowed}: set data.image_size to resize them")


SMALL_DATA = 10_000  # below this many training images, a cgan augments D's inputs by default (train.augment)
SMALL_DATA_AUGMENT = ["translation", "cutout"]
# Keys that may change when a run is resumed: when and how to stop, log and save, and where and how to run.
# Everything else is the run's recipe (model, data, optimiser) and is fixed by its checkpoint.
RUNTIME_KEYS = {f"train.{k}" for k in ("steps", "epochs", "budget_minutes", "log_every", "sample_every",
                                        "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
                                        "on_divergence", "device", "threads", "deterministic", "precision",
                                        "sync_batchnorm", "channels_last", "compile")} | {"data.cache", "data.paths_outside"}


@dataclass
class Config:
    task: str = "cgan"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sections: dict = field(default_factory=dict)  # the task's own sections by name (two-stage: stages, joint)

    def __post_init__(self):
        """Every section the task declares exists (with its defaults) from the start."""
        try:
            declared = registry.get(self.task).sections
        except ConfigError:  # an unknown task: validate() says so
            return
        self.sections = {name: self.sections.get(name) or cls() for name, cls in declared.items()}

    def __getattr__(self, name: str):
        """A task's section as an attribute: config.stages, config.similarity."""
        sections = self.__dict__.get("sections") or {}
        if name in sections:
            return sections[name]
        raise AttributeError(f"the {self.__dict__.get('task')!r} config has no section {name!r}")

    @property
    def task_class(self):
        return registry.get(self.task)

    def aux_weight(self) -> float:
        """train.aux_weight with its architecture-dependent default resolved."""
        if self.train.aux_weight is not None:
            return self.train.aux_weight
        return 2.5 if self.model.arch == "resnet" else 0.0

    def to_dict(self) -> dict:
        """As nested dicts: the keys the task uses, and its own sections (a run's config.yaml records no more)."""
        task = self.task_class
        dropped = set(task.unused) | {k for other in registry.tasks() if other is not task for k in other.owns
                                      if k not in task.owns}
        out = {"task": self.task}
        for name in ("data", "model", "train"):
            out[name] = {k: v for k, v in dataclasses.asdict(getattr(self, name)).items() if f"{name}.{k}" not in dropped}
        out.update({name: dataclasses.asdict(section) for name, section in self.sections.items()})
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
        task = registry.get(self.task)
        self.fill_unset(task.defaults)
        task.resolve(self)
        self.resolve_form_defaults()
        self._check_ranges()
        checks = [*self._general_checks(), *self._foreign_key_checks(task), *task.checks(self)]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.data.image_size is not None:  # before any data is read: a size the networks cannot take
            check_image_size(self.model.arch, self.data.image_size)
        try:
            device(self.train.device, "train.device")
        except UserError as e:
            raise ConfigError(str(e)) from None
        return self

    def _check_ranges(self) -> None:
        t, m = self.train, self.model
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

    def _general_checks(self) -> list[tuple[bool, str]]:
        t, archs = self.train, registry.get(self.task).archs
        return [
            (bool(self.data.name.strip()), "data.name must not be empty (fashion-mnist, mnist, or a folder)"),
            (0 <= t.beta1 < 1, f"train.beta1 must be in [0, 1), not {t.beta1}"),
            (0 <= t.beta2 < 1, f"train.beta2 must be in [0, 1), not {t.beta2}"),
            (t.ema_start >= 0, f"train.ema_start must be >= 0, not {t.ema_start}"),
            (t.checkpoint_minutes > 0, "train.checkpoint_minutes must be positive"),
            (self.model.arch in archs, f"model.arch for task {self.task} must be one of {', '.join(archs)}, not {self.model.arch!r}"),
            (t.on_divergence in ("stop", "rollback"), "train.on_divergence must be 'stop' or 'rollback'"),
            (self.data.bad_files in ("skip", "error"), "data.bad_files must be 'skip' or 'error'"),
            (self.data.cache in ("auto", "memory", "disk"), f"data.cache must be auto, memory or disk, not {self.data.cache!r}"),
            (self.data.paths_outside in PATHS_OUTSIDE,
             f"data.paths_outside must be {' or '.join(PATHS_OUTSIDE)}, not {shown(self.data.paths_outside)}"),
            (t.precision in ("auto", "fp32", "bf16", "fp16"), f"train.precision must be auto, fp32, bf16 or fp16, not {t.precision!r}"),
            (self.data.channels in (None, 1, 3), "data.channels must be 1 or 3"),
            (self.data.image_size is None or 8 <= self.data.image_size <= 1024, "data.image_size must be between 8 and 1024"),
            (t.batch_size is None or 1 <= t.batch_size <= 65536, "train.batch_size must be between 1 and 65536"),
            ((self.model.z_dim or 1) >= 1 and all(w is None or w >= 1 for w in (self.model.g_width, self.model.d_width)),
             "model sizes must be positive"),
            (t.lr_g > 0 and t.lr_d > 0, "learning rates must be positive"),
            (0 <= t.ema_decay < 1, "train.ema_decay must be in [0, 1)"),
            (t.aux_weight is None or t.aux_weight >= 0, "train.aux_weight must be >= 0"),
            (t.diversity_weight is None or t.diversity_weight >= 0, "train.diversity_weight must be >= 0"),
            (t.aux_form is None or t.aux_form in AUX_FORMS, f"train.aux_form must be one of {', '.join(AUX_FORMS)}, not {shown(t.aux_form)}"),
            (math.isfinite(t.aux_confidence) and 0 < t.aux_confidence < 1,
             f"train.aux_confidence must be between 0 and 1 (exclusive), not {t.aux_confidence}"),
            *[(w is None or (math.isfinite(w) and 0 <= w <= 1), f"train.{k} must be in [0, 1], not {w}")
              for k, w in (("twin_weight", t.twin_weight), ("adc_weight", t.adc_weight))],
            (not t.aux_weight or self.model.arch in ("resnet", "unet"),
             "train.aux_weight needs model.arch=resnet (the only class-conditional D with a class head)"),
            ((t.l1_weight or 0) >= 0 and t.feature_matching >= 0 and t.adversarial_weight >= 0,
             "train.l1_weight, train.feature_matching and train.adversarial_weight must be >= 0"),
            (self.data.direction in ("AtoB", "BtoA"), f"data.direction must be AtoB or BtoA, not {self.data.direction!r}"),
            (t.d_steps >= 1, "train.d_steps must be at least 1"),
            (t.keep_checkpoints >= 1, "train.keep_checkpoints must be at least 1"),
            (all(v is None or v > 0 for v in (t.steps, t.epochs, t.budget_minutes)),
             "train.steps, train.epochs and train.budget_minutes must be positive"),
            (min(t.log_every, t.sample_every, t.checkpoint_every) >= 1, "train.*_every must be at least 1"),
        ]

    def _foreign_key_checks(self, task) -> list[tuple[bool, str]]:
        """Keys another task owns (a translator's data.direction, say) keep their defaults in this task's config."""
        checks = []
        for other in registry.tasks():
            for key, what in other.owns.items():
                if other is task or key in task.owns:
                    continue
                value, default = self.get(key), _field_default(key)
                fine = value == default or value == task.defaults.get(key) or (default is None and not value)
                checks.append((fine, f"{what or key} is for --task {other.name}" + (f" ({key})" if what else "")))
        return checks


def _field_default(key: str):
    section, name = key.split(".")
    f = next(f for f in dataclasses.fields(_SECTIONS[section]) if f.name == name)
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def from_dict(raw: dict | None) -> Config:
    """Build a Config from nested dicts, rejecting unknown keys and wrong types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("a config file must be a mapping with sections data, model, train")
    raw = migrate_renamed_keys(raw)
    task = registry.get(raw.get("task", "cgan"))
    sections = {}
    for name, value in raw.items():
        if name == "task":
            continue
        owners = [t.name for t in registry.tasks() if name in t.sections]
        if name not in _SECTIONS and name not in task.sections and not owners:
            known = ", ".join([*_SECTIONS, *task.sections])
            raise ConfigError(f"unknown config section {printable(name, 60)!r}; a {task.name} config has task and sections {known}")
        value = value or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config section {name!r} must be a mapping of keys, not {shown(value)}")
        cls = _SECTIONS.get(name) or task.sections.get(name) or registry.get(owners[0]).sections[name]
        built = _build(cls, value, name)
        if name not in _SECTIONS and name not in task.sections:
            if built != cls():  # older condgan wrote every task's sections, with their defaults: those are fine
                raise ConfigError(f"the {name} section is for --task {' or '.join(owners)}, not {task.name}")
            continue
        sections[name] = built
    core = {name: sections.pop(name) for name in _SECTIONS if name in sections}
    return Config(task=task.name, **core, sections=sections).validate()


# train keys renamed because their old name said less (or two things): old name -> today's
RENAMED_TRAIN_KEYS = {"twin_start": "fake_term_start"}


def migrate_renamed_keys(raw: dict, quiet: bool = False) -> dict:
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
    if moved and not quiet:
        warnings.warn(f"config keys renamed: {'; '.join(moved)}. Read under the new names (the old ones still "
                      f"load; write the new ones)", FutureWarning, stacklevel=3)
    return {**raw, "train": train}


# Keys added after runs were first made, with what a run's config.yaml without them was trained with (today's
# defaults differ). A run keeps its recipe when resumed or evaluated: see load_config(of_run=True). Tasks add
# their own (Task.added_keys).
ADDED_KEYS = {"train": {"aux_form": "ce"}}


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
            added = {**ADDED_KEYS, **registry.get(raw.get("task", "cgan")).added_keys}
            for section, keys in added.items():
                if isinstance(raw.get(section), dict):
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


def recipe_change(saved: dict, config: Config) -> tuple[str, object, object] | None:
    """The first recipe key (any but RUNTIME_KEYS) whose value in `config` differs from `saved`, a checkpoint's
    config as written: (key, saved value, value now), or None. A key the checkpoint lacks or left unset
    (None: a default filled in since) was not chosen when it was written, and is not compared."""
    now = config.to_dict()
    for section, values in migrate_renamed_keys(saved, quiet=True).items():
        if not isinstance(values, dict) or not isinstance(now.get(section), dict):
            continue  # task is compared on its own (with its own message)
        for key, old in values.items():
            if f"{section}.{key}" in RUNTIME_KEYS or key not in now[section] or old is None:
                continue
            if now[section][key] != old:
                return f"{section}.{key}", old, now[section][key]
    return None


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}  # every task's; tasks add their own


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
