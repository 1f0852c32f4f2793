"""A run's config: the task, the three shared sections and the task's own, filled in and checked."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import registry
from ..errors import ConfigError, UserError
from ..untrusted import MAX_SEED, PATHS_OUTSIDE, device, shown
from .sections import (_SECTIONS, AUX_FORMS, CGAN_DIVERSITY_WEIGHT, FORM_DEFAULTS, DataConfig, ModelConfig, TrainConfig,
                       check_image_size, size_defaults)


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
        size, known once the data is loaded), the task's defaults that are functions of the size, then the class
        term's own defaults; returns the keys it filled."""
        by_task = {k: v(image_size) for k, v in self.task_class.defaults.items() if callable(v)}
        return self.fill_unset({**size_defaults(self.model.arch, image_size), **by_task}) + self.resolve_form_defaults()

    def explain_filled(self, filled: list[str], image_size: int) -> list[str]:
        """Log lines for the defaults resolve_for_size filled that a user would want to know were chosen for them."""
        t, lines = self.train, []
        form_keys = ["train.aux_form", *FORM_DEFAULTS.get(t.aux_form, {})]
        if "train.aux_form" in filled and "train.aux_form" not in self.task_class.unused:  # similarity: no G
            extra = "".join(f", {k} {self.get(k)}" for k in form_keys[1:] if k in filled)
            why = " (more varied images of each class than ce)" if t.aux_form == "adc" else ""
            lines.append(f"model: G's class term (train.aux_form) {t.aux_form} by default{extra}{why}")
        if "train.standing_stats" in filled and not t.standing_stats and t.ema_decay:
            lines.append(f"model: {image_size} px images: G_ema keeps G's BatchNorm statistics by default "
                         "(train.standing_stats 0: its own scored worse above 64 px, docs/benchmarks.md)")
        sized = [k for k in filled if k not in (*form_keys, "train.standing_stats")]
        if sized and self.model.arch == "resnet" and image_size > 32:
            lines.append(f"model: {image_size} px images: " + ", ".join(f"{k} {self.get(k)}" for k in sized) +
                         " by default (thinner layers where they cost most CPU time, more steps; set them to change)")
        return lines

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
        self.fill_unset({k: v for k, v in task.defaults.items() if not callable(v)})  # (the size's: resolve_for_size)
        task.resolve(self)
        self.fill_unset({k: v for k, v in {"train.lr_decay": 0.0, "train.standing_stats": 0}.items()
                         if k not in task.defaults})  # where the task chose nothing else
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
        finite = {k: getattr(t, k) for k in ("lr_g", "lr_d", "lr_decay", "beta1", "beta2", "aux_weight", "diversity_weight",
                                             "l1_weight", "adversarial_weight", "feature_matching", "r1_weight", "lecam_weight", "ema_decay", "epochs",
                                             "budget_minutes", "checkpoint_minutes")}
        for key, value in finite.items():
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"train.{key} must be a finite number, not {value}")
        sizes = {"model.z_dim": (m.z_dim, 1, 4096), "model.g_width": (m.g_width, 1, 4096), "model.d_width": (m.d_width, 1, 4096),
                 "model.d_mbstd": (m.d_mbstd, 0, 64),
                 "train.d_steps": (t.d_steps, 1, 100), "train.seed": (t.seed, 0, MAX_SEED),
                 "train.threads": (t.threads, 1, 1024), "train.keep_checkpoints": (t.keep_checkpoints, 1, 10_000),
                 "train.fake_term_start": (t.fake_term_start, 0, 10**9), "train.standing_stats": (t.standing_stats, 0, 10**7)}
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
            (0 <= t.lr_decay <= 1, f"train.lr_decay must be in [0, 1] (the share of the run, at its end, over which the "
                                   f"learning rates fall to 0; 0 keeps them constant), not {t.lr_decay}"),
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
            ((t.l1_weight or 0) >= 0 and t.feature_matching >= 0 and t.adversarial_weight >= 0 and t.r1_weight >= 0
             and t.lecam_weight >= 0, "train.l1_weight, train.feature_matching, train.adversarial_weight, train.r1_weight "
             "and train.lecam_weight must be >= 0"),
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
