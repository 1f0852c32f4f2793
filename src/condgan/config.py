"""Typed run configuration: dataclasses with YAML on top.

A config file names its `task` (cgan: class-conditional generation; translate:
paired image-to-image translation) and has three sections (data, model, train)
mirroring the pipeline. Keys left at None take the task's default (TASK_DEFAULTS).
Unknown keys and wrong types are errors that name the key, because a typo in a
config silently ignored can waste hours of training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError


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
    batch_size: int = 64
    lr_g: float = 4e-4
    lr_d: float = 8e-4                # D learns twice as fast as G (TTUR): measured better in 10 minutes
    beta1: float = 0.0
    beta2: float = 0.99
    d_steps: int = 1                  # D updates per G update
    aux_weight: float | None = None   # auxiliary class loss in D and G; default 2.5 for resnet (the
                                      # only D with a class head), 0 for the classic recipes
    diversity_weight: float | None = None  # mode-seeking term in G's loss: keeps samples of one class varied
                                      # (it offsets the sameness that a strong aux_weight brings); cgan 0.5
    l1_weight: float | None = None    # translate: weight of L1 to the target, 10 (pix2pix used 100: blurrier here,
                                      # docs/benchmarks.md); cgan: 0
    adversarial_weight: float = 1.0   # weight of the adversarial term in G's loss (0 = a plain L1 regressor)
    feature_matching: float = 0.0     # translate: weight of matching D's features of real and generated pairs
    ema_decay: float = 0.99           # EMA of G's weights, used for sampling; 0 disables
    ema_start: int = 500              # steps before the EMA starts tracking
    augment: list[str] = field(default_factory=list)  # DiffAugment ops: translation, cutout, brightness
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


TASKS = ("cgan", "translate")
# None in a config means "the task's default"; validate() fills these in, so config.yaml shows what ran.
TASK_DEFAULTS = {
    "cgan": {"model.arch": "resnet", "model.z_dim": 64, "model.g_width": 16, "model.d_width": 16,
             "train.diversity_weight": 0.5, "train.l1_weight": 0.0},
    "translate": {"model.arch": "unet", "model.z_dim": 8, "model.g_width": 32, "model.d_width": 32,
                  "train.diversity_weight": 0.0, "train.l1_weight": 10.0, "train.aux_weight": 0.0},
}
TASK_ARCHS = {"cgan": ("resnet", "dcgan", "mlp"), "translate": ("unet",)}
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

    def aux_weight(self) -> float:
        """train.aux_weight with its architecture-dependent default resolved."""
        if self.train.aux_weight is not None:
            return self.train.aux_weight
        return 2.5 if self.model.arch == "resnet" else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def get(self, key: str):
        section, name = key.split(".")
        return getattr(getattr(self, section), name)

    def validate(self) -> "Config":
        from .losses import LOSSES
        from .train.augment import JITTER, POLICIES

        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        for key, value in TASK_DEFAULTS[self.task].items():
            section, name = key.split(".")
            if getattr(getattr(self, section), name) is None:
                setattr(getattr(self, section), name, value)
        archs = TASK_ARCHS[self.task]
        checks = [
            (self.model.arch in archs, f"model.arch for task {self.task} must be one of {', '.join(archs)}, not {self.model.arch!r}"),
            (self.train.loss in LOSSES, f"train.loss must be one of {', '.join(LOSSES)}, not {self.train.loss!r}"),
            (all(a in POLICIES for a in self.train.augment), f"train.augment items must be among {', '.join(POLICIES)}, not {self.train.augment}"),
            (self.train.on_divergence in ("stop", "rollback"), "train.on_divergence must be 'stop' or 'rollback'"),
            (self.data.bad_files in ("skip", "error"), "data.bad_files must be 'skip' or 'error'"),
            (self.data.cache in ("auto", "memory", "disk"), f"data.cache must be auto, memory or disk, not {self.data.cache!r}"),
            (self.train.precision in ("auto", "fp32", "bf16", "fp16"),
             f"train.precision must be auto, fp32, bf16 or fp16, not {self.train.precision!r}"),
            (self.data.channels in (None, 1, 3), "data.channels must be 1 or 3"),
            (self.data.image_size is None or 8 <= self.data.image_size <= 1024, "data.image_size must be between 8 and 1024"),
            (1 <= self.train.batch_size <= 65536, "train.batch_size must be between 1 and 65536"),
            (self.model.z_dim >= 1 and self.model.g_width >= 1 and self.model.d_width >= 1, "model sizes must be positive"),
            (self.train.lr_g > 0 and self.train.lr_d > 0, "learning rates must be positive"),
            (0 <= self.train.ema_decay < 1, "train.ema_decay must be in [0, 1)"),
            (self.train.aux_weight is None or self.train.aux_weight >= 0, "train.aux_weight must be >= 0"),
            (self.train.diversity_weight >= 0, "train.diversity_weight must be >= 0"),
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
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


def from_dict(raw: dict | None) -> Config:
    """Build a Config from nested dicts, rejecting unknown keys and wrong types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("a config file must be a mapping with sections data, model, train")
    sections = {}
    task = raw.get("task", "cgan")
    if not isinstance(task, str):
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    for section in dataclasses.fields(Config):
        if section.name == "task":
            continue
        value = raw.get(section.name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config section {section.name!r} must be a mapping")
        sections[section.name] = _build(_SECTIONS[section.name], value, section.name)
    unknown = set(raw) - set(_SECTIONS) - {"task"}
    if unknown:
        raise ConfigError(f"unknown config section {sorted(unknown)[0]!r}; a config has task and sections {', '.join(_SECTIONS)}")
    return Config(task=task, **sections).validate()


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (or the defaults) and apply `key=value` overrides."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (copy one from configs/)")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
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
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = value
        parsed_items.append((key, parsed))
    return parsed_items


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _build(cls, values: dict, section: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key '{section}.{key}'; known keys in {section}: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**kwargs)


def _coerce(value, hint, name: str):
    """Check `value` against a type hint; accept ints for floats and 'a,b' for lists."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name)
    if typing.get_origin(hint) is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [_coerce(v, args[0], name) for v in value]
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads '1e-4' (no dot) as a string
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. classes given as digits
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be {hint.__name__}, got {value!r}")
    return value
