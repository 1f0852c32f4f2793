"""Tasks by name: what a run trains, and everything condgan needs to know about it.

A task is one class, declared in one module and registered with `@register`:
its config sections and defaults, its data, its training step and preview,
what `condgan.load` returns for it, how `condgan sample` and `condgan eval`
use it, and how `condgan serve` offers it. The rest of condgan asks the task
and never names one. condgan's own tasks live in condgan/tasks/; a package of
yours adds one through the `condgan.tasks` entry-point group (docs/extending.md):

    [project.entry-points."condgan.tasks"]
    denoise = "my_package.denoise"      # a module that registers a Task when imported

This module sits low in the layers (beside config), so it imports nothing of
condgan's upper layers: the task modules are found by import name at run time.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable, ClassVar

from .errors import ConfigError, UserError

ENTRY_POINTS = "condgan.tasks"
BUILTIN = "condgan.tasks"  # importing it registers condgan's own tasks


@dataclass(frozen=True)
class Controls:
    """How `condgan serve` offers a task's models: the fields a user supplies and the calls that use the model.

    `generate(pipeline, values, n, seed)` receives values already checked against the pipeline's Spec: a class
    field as a list of class indices (several only for the `rows` field: one grid row per value, and the `columns`
    field: one grid column per value), an image field as a decoded PIL image. It returns float images in [-1, 1]
    ordered by row value, then column value, then the n draws. A model that makes no images leaves it None and
    offers `compare` and `search` instead (the page's Compare and Search tabs)."""

    title: str
    conditions: Callable  # pipeline -> the Spec field names the user supplies, in the page's order
    generate: Callable | None = None  # (pipeline, values, n, seed) -> float images in [-1, 1]
    rows: str | None = None  # the class field that may take several values, one grid row each
    columns: str | None = None  # another class field that may take several values, one grid column each
    output: str = "image"  # the Spec field of its images: those it makes (or, to compare and search, those it reads)
    hints: dict[str, str] = field(default_factory=dict)  # a line of help per field
    # (pipeline, values, seed_a, seed_b, steps) -> float images: per row value, `steps` images whose noise goes from
    # seed_a's to seed_b's (the seed-to-seed strip)
    interpolate: Callable | None = None
    compare: Callable | None = None  # (pipeline, image_a, image_b) -> pipelines.embedder.Comparison
    index: Callable | None = None  # (pipeline, folder) -> search.SearchIndex of its images (`--search-folder`)
    query: Callable | None = None  # (pipeline, image) -> the embedding that the index's nearest() takes

    @property
    def tools(self) -> list[str]:
        """What the API and the page offer for its models: generate, interpolate, compare, search."""
        offered = {"generate": self.generate, "interpolate": self.interpolate, "compare": self.compare,
                   "search": self.index and self.query}
        return [name for name, call in offered.items() if call is not None]


class Task:
    """Everything about one task. Subclass it, fill in what applies, and decorate the class with @register.

    Class attributes are declarations; methods are called with a config, a training run, or a pipeline."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # a phrase for --help, logs and the serve page
    models: ClassVar[str] = ""  # what its models are called in messages ("translators"); default "<name> models"
    sections: ClassVar[dict[str, type]] = {}  # config sections beyond data/model/train: name -> dataclass
    defaults: ClassVar[dict[str, object]] = {}  # 'section.key' -> value, filled in where the config leaves None;
                                                # a function of the image size (px) is filled once that is known
    archs: ClassVar[tuple[str, ...]] = ()  # model.arch values it trains (the first is the default)
    owns: ClassVar[dict[str, str]] = {}  # data/model/train keys only it uses -> their flag ('' if none); other
                                         # tasks refuse them when set and do not record them
    unused: ClassVar[tuple[str, ...]] = ()  # data/model/train keys it ignores: not recorded in its config.yaml
    added_keys: ClassVar[dict[str, dict]] = {}  # section -> {key: value older runs without the key trained with,
                                                # or a function of the section's raw dict giving it}
    pipeline: ClassVar[type | None] = None  # what condgan.load returns for its runs
    controls: ClassVar[Controls | None] = None  # None: condgan serve does not offer it
    augments_small_data: ClassVar[bool] = False  # DiffAugment by default below config.SMALL_DATA images
    flags: ClassVar[dict[str, tuple[str, ...]]] = {}  # command -> the flags (dest names) of its own it takes
    flag_keys: ClassVar[dict[str, str]] = {}  # `condgan train` flag (dest) -> the config key it sets

    # ----- config -------------------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, config) -> None:
        """Fill in defaults that depend on other keys (after `defaults`)."""

    @classmethod
    def checks(cls, config) -> list[tuple[bool, str]]:
        """(condition, message) pairs: each condition must hold for the config to be valid."""
        return []

    # ----- command line -------------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, command: str, parser: argparse.ArgumentParser) -> None:
        """Add this task's own flags to `condgan COMMAND` (list their dest names in `flags`)."""

    # ----- training -----------------------------------------------------------------------------------------
    @classmethod
    def trains(cls, config) -> type["Task"]:
        """The task whose step trains this config (two-stage: the class of its current stage)."""
        return cls

    @classmethod
    def fit(cls, config, out, *, resume: bool, quiet: bool, more: dict | None) -> dict | None:
        """Train a run made of several runs and return its summary; None: one ordinary run (the default)."""
        return None

    @classmethod
    def describe(cls, config) -> str:
        """What the progress bar calls this run."""
        return f"{cls.name} {config.model.arch}"

    @classmethod
    def load_data(cls, config, split: str = "train"):
        """(fields, spec): named tensors of equal length, and their Spec."""
        raise NotImplementedError(f"task {cls.name} does not load data")

    @classmethod
    def load_run_data(cls, config, out):
        """(fields, spec) of a training run writing to `out`: load_data(config, 'train'), unless the task keeps
        costly derived fields in the run directory (the exemplar task's neighbours) to reuse on resume."""
        return cls.load_data(config, "train")

    @classmethod
    def make_step(cls, run):
        """The training step for a Run (tasks/gan.py GANStep for generators)."""
        raise NotImplementedError(f"task {cls.name} has no training step")

    @classmethod
    def preview(cls, run, path):
        """Write the preview picture to `path`; return the images it shows."""
        raise NotImplementedError

    # ----- using a trained model ----------------------------------------------------------------------------
    @classmethod
    def locate(cls, path):
        """What using a model at `path` needs (training/checkpoint.ModelFiles) when `path` is one of this task's
        runs made of several runs (two-stage: a pipeline folder, or one of its stage runs); else None."""
        return None

    @classmethod
    def sample(cls, pipeline, args, out) -> int:
        """`condgan sample`: write what `args` asks for to `out`."""
        raise UserError(f"{cls.noun()} make no images to sample")

    @classmethod
    def evaluate(cls, pipeline, args, out) -> int:
        """`condgan eval`: write report.md/report.json to `out` and print a summary line."""
        raise ConfigError(f"condgan eval does not know how to evaluate {cls.noun()}")

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        """What to run after training, shown at the end of `condgan train`."""
        return f"condgan eval {run}"

    @classmethod
    def noun(cls) -> str:
        return cls.models or f"{cls.name} models"


_TASKS: dict[str, type[Task]] = {}
_loaded = False


def register(task: type[Task]) -> type[Task]:
    """Class decorator: make `task` known by its name (a later registration of the same name replaces it)."""
    if not isinstance(task, type) or not issubclass(task, Task) or not task.name:
        raise TypeError("register() takes a Task subclass with a name")
    _TASKS[task.name] = task
    return task


def _load() -> None:
    """Import condgan's tasks and every installed package's (entry points), once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module(BUILTIN)
    for ep in entry_points(group=ENTRY_POINTS):
        try:
            loaded = ep.load()
        except Exception as e:  # a broken plug-in must not break condgan's own tasks
            import warnings

            warnings.warn(f"task plug-in {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}", stacklevel=2)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Task) and loaded.name not in _TASKS:
            register(loaded)


def get(name) -> type[Task]:
    """The task called `name`, or a ConfigError that lists the known ones."""
    _load()
    task = _TASKS.get(name) if isinstance(name, str) else None
    if task is None:
        from .untrusted import shown

        raise ConfigError(f"task must be one of {', '.join(_TASKS)}, not {shown(name)}")
    return task


def names() -> list[str]:
    _load()
    return list(_TASKS)


def tasks() -> list[type[Task]]:
    _load()
    return list(_TASKS.values())
