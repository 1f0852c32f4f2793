"""Typed run configuration: dataclasses with YAML on top.

A config file names its `task` and has three sections every task shares (data, model, train:
sections.py), plus the sections its task declares (two-stage: stages, joint; similarity and exemplar:
similarity). Keys left at None take the task's default (registry.Task.defaults). Unknown keys and wrong
types are errors that name the key, because a typo in a config silently ignored can waste hours of training.
run_config.py is the Config, files.py reads and writes it.
"""

from .files import (ADDED_KEYS, from_dict, load_config, migrate_renamed_keys, parse_overrides, recipe_change,
                    save_config)
from .run_config import Config
from .sections import (AUX_FORMS, CGAN_DIVERSITY_WEIGHT, FORM_DEFAULTS, RUNTIME_KEYS, SMALL_DATA, SMALL_DATA_AUGMENT,
                       DataConfig, ModelConfig, TrainConfig, check_image_size, size_defaults)

__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "load_config", "from_dict", "save_config",
           "parse_overrides", "recipe_change", "migrate_renamed_keys", "check_image_size", "size_defaults",
           "AUX_FORMS", "FORM_DEFAULTS", "CGAN_DIVERSITY_WEIGHT", "RUNTIME_KEYS", "SMALL_DATA", "SMALL_DATA_AUGMENT",
           "ADDED_KEYS"]
