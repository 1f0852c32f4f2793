"""The two calls a Python user starts with: `condgan.load` (a trained model) and `condgan.train` (a new one)."""

from __future__ import annotations

from pathlib import Path

import torch

from . import registry, untrusted
from .errors import CheckpointError
from .pipelines import Pipeline, assemble
from .training import checkpoint as ckpt, hub


def load(path: str | Path, device: str | torch.device = "auto") -> Pipeline:
    """The pipeline for a run directory, a checkpoint (.pt), an exported folder or an export on the Hugging Face Hub
    ("hf://owner/name" or "hf://owner/name@revision"; needs `pip install 'condgan[hub]'`), whatever its task or format.
    device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""
    device = untrusted.device(device)
    if hub.is_hub(path):  # downloaded, then read like any export: the same closed registry and checks
        model = ckpt.read_model(hub.download(path))
    else:  # a task whose runs are folders of runs reads those first (two-stage)
        model = next((found for task in registry.tasks() if (found := task.locate(Path(path))) is not None), None)
        model = model or ckpt.read_model(path)
    task = model.task
    known = registry.names()
    if not isinstance(task, str) or task not in known or registry.get(task).pipeline is None:
        raise CheckpointError(f"{untrusted.printable(model.source, 200)}: unknown task {untrusted.shown(task, 40)}; "
                              f"this condgan knows {', '.join(known)} (a newer condgan, or a task plug-in, may know more)")
    return assemble(model, registry.get(task).pipeline, device)


def train(config=None, data=None, out: str | Path = "runs/default", *, steps: int | None = None,
          epochs: float | None = None, budget_minutes: float | None = None, resume: bool = False,
          overrides: list[str] = (), quiet: bool = True) -> Pipeline:
    """Train (or resume) a run and return its pipeline, as `condgan.load(out)` would.

    config: a Config, a dict like a config file ({"task": "cgan", "train": {...}}), a YAML path, or None (defaults).
    data: a dataset name or path (as --data), uint8 arrays (images, labels, class_names), a torch Dataset of
    (image, label) with a `.classes` list, or (dataset, class_names). Arrays and datasets are written once to
    OUT/data.npz, so the run resumes and evaluates like any other. steps / epochs / budget_minutes: when to stop
    (with resume: how much more). overrides: 'section.key=value' strings, as --set.
    """
    from .config import Config, from_dict, load_config, parse_overrides
    from .errors import UserError
    from .training import train as run

    out = Path(out)
    stops = {"steps": steps, "epochs": epochs, "budget_minutes": budget_minutes}
    if resume:
        if config is not None or data is not None:
            raise UserError("resume=True continues the run in `out` with its own recipe and data; leave config and data out")
        run(out=out, resume=True, stop_overrides=stops, quiet=quiet, overrides=list(overrides))
        return load(out)
    config = _as_config(config, list(overrides), Config, from_dict, load_config, parse_overrides)
    if data is not None:
        config.data.name = _data_name(data, out)
        config.validate()
    run(config, out, stop_overrides=stops, quiet=quiet)
    return load(out)


def _as_config(config, overrides, Config, from_dict, load_config, parse_overrides):
    from .errors import UserError

    if config is None or isinstance(config, (str, Path)):
        return load_config(config, overrides)
    if isinstance(config, dict):
        raw = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
        for key, value in parse_overrides(overrides):
            if key == "task":
                raw["task"] = value
            else:
                section, name = key.split(".")
                raw.setdefault(section, {})[name] = value
        return from_dict(raw)
    if isinstance(config, Config):
        if overrides:
            raise UserError("overrides are for a config given as a dict or a YAML path; change the Config itself")
        return config
    raise UserError(f"config must be a Config, a dict, a YAML path or None, not {type(config).__name__}")


def _data_name(data, out: Path) -> str:
    """What config.data.name should say for `data`: a name as it is; arrays and datasets saved to OUT/data.npz."""
    from .data.arrays import from_arrays, from_dataset, save_npz
    from .errors import UserError
    from .training import checkpoint as ckpt

    if isinstance(data, (str, Path)):
        return str(data)
    if ckpt.list_checkpoints(out / "checkpoints"):
        raise UserError(f"{out} already holds a run; continue it with resume=True, or choose another out")
    if isinstance(data, torch.utils.data.Dataset):
        images = from_dataset(data)
    elif isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.utils.data.Dataset):
        images = from_dataset(data[0], class_names=data[1])
    elif isinstance(data, tuple) and len(data) == 3:
        images = from_arrays(*data)
    else:
        raise UserError("data must be a dataset name or path, (images, labels, class_names), a torch Dataset, or "
                        f"(dataset, class_names); got {type(data).__name__}")
    out.mkdir(parents=True, exist_ok=True)
    return str(save_npz(images, out / "data.npz").resolve())
