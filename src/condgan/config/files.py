"""Configs as files and flags: YAML in and out, `--set key=value`, renamed keys, and what a resumed run may
change. Unknown keys and wrong types are errors that name the key."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
import warnings
from pathlib import Path

import yaml

from .. import registry
from ..errors import ConfigError, UserError
from ..untrusted import MAX_TEXT_VALUE, load_yaml, printable, read_text, shown
from .run_config import Config
from .sections import _SECTIONS, RUNTIME_KEYS


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
            if not _at_defaults(built, cls):  # older condgan wrote every task's sections, with their defaults: fine
                raise ConfigError(f"the {name} section is for --task {' or '.join(owners)}, not {task.name}")
            continue
        sections[name] = built
    core = {name: sections.pop(name) for name in _SECTIONS if name in sections}
    return Config(task=task.name, **core, sections=sections).validate()


def _at_defaults(built, cls) -> bool:
    """A section equal to its defaults, or to a former default where one changed (cls.CHANGED_DEFAULTS)."""
    changed = getattr(cls, "CHANGED_DEFAULTS", ())
    return all(getattr(built, f.name) == getattr(cls(), f.name) for f in dataclasses.fields(cls) if f.name not in changed)


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
# their own (Task.added_keys); a value may be a function of the section's other keys (an old run's recipe).
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
            own = registry.get(raw.get("task", "cgan")).added_keys
            added = {name: {**ADDED_KEYS.get(name, {}), **own.get(name, {})} for name in {*ADDED_KEYS, *own}}
            for section, keys in added.items():
                if isinstance(raw.get(section), dict):
                    for key, old in keys.items():  # a value, or a function of the section's raw keys
                        if key not in raw[section]:
                            raw[section][key] = old(raw[section]) if callable(old) else old
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
