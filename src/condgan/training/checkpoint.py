"""The one place that knows condgan's file formats: checkpoints and exports.

Checkpoint (format 2; a torch file, loaded with `weights_only=True`, so a
crafted pickle is refused instead of executed):
    format, version, task, spec (field specs), networks ({'G': {'class', 'arguments'}, 'D': ...}),
    state (G, D, G_ema, opt_G, opt_D, steps_done), config (the training recipe, for resume),
    rng, batches_done, elapsed, step
    A two-stage joint run holds two GAN steps' networks and states under numbered keys
    (networks G1, D1, G2, D2 and the label classifier C; state G1, G1_ema, opt_G1, ..., C, opt_C).
Export (a folder; safetensors + JSON, no code can run):
    condgan.json  {format, version, task, spec, data, components: {name: {file, class, arguments}}}
    <name>.safetensors, one per component (generator; two-stage: generator1 and generator2)
    (model_card.py adds README.md, sample.png and config.yaml for people; loading never reads them)
Format 1 files (before named fields: class_names + config + gan) are upgraded
on load, so runs trained by older condgan still sample, resume and evaluate.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then atomically renamed: a checkpoint file either exists complete or not at
all, whatever kills the process.
"""

from __future__ import annotations

import os
import pickle
import re
import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from .atomic import atomic_save
from .format_v1 import upgrade_v1, v1_networks

FORMAT = "condgan-checkpoint"
VERSION = 2
EXPORT_FORMAT = "condgan-export"
EXPORT_VERSION = 2
MANIFEST = "condgan.json"
V1_EXPORT_CONFIG, V1_EXPORT_WEIGHTS = "generator.json", "generator.safetensors"
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def safe_load(path: Path) -> dict:
    """Load a condgan checkpoint without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((ln.strip() for ln in str(e).splitlines() if "unsupported" in ln.lower()), "")
        if "global" not in detail.lower():  # not an object reference: the bytes are simply damaged
            raise CheckpointError(f"{path} is corrupt or not a checkpoint ({detail or 'unpickling failed'})") from None
        raise CheckpointError(
            f"refusing to load {path}: it references Python objects that could run code when unpickled "
            f"({detail[:160]}). Only checkpoints with plain tensors and numbers are loaded."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, MemoryError) as e:
        # whatever the bytes made torch's reader trip on: say which file, not where in torch
        detail = str(e).splitlines()[0][:200] if str(e) else ""
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({type(e).__name__}{': ' + detail if detail else ''})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a condgan checkpoint")
    version = obj.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: checkpoint version must be an integer, not {str(version)[:40]!r}")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer condgan (format {version}); upgrade condgan")
    try:
        return upgrade_v1(obj) if version < 2 else obj
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: a format-{version} checkpoint with missing or malformed parts ({e!r:.160})") from None


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(folder: Path) -> tuple[dict, Path]:
    """The newest checkpoint that loads; a damaged newest one falls back to the previous."""
    found = list_checkpoints(folder)
    if not found:
        raise CheckpointError(f"no checkpoints in {folder}")
    errors = []
    for path in reversed(found):
        try:
            return safe_load(path), path
        except CheckpointError as e:
            if "refusing to load" in str(e):
                raise
            errors.append(str(e))
            warnings.warn(f"skipping unreadable checkpoint: {e}", stacklevel=2)
    raise CheckpointError(f"no readable checkpoint in {folder}: {errors[0]}")


def prune(folder: Path, keep: int) -> None:
    for path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
    for stale in Path(folder).glob(".step_*.tmp-*"):  # left by a killed writer
        try:
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1])):
                stale.unlink(missing_ok=True)
        except ValueError:
            pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----- a checkpoint as the trainer writes and reads it -------------------------------------------------------
@dataclass
class Checkpoint:
    """One checkpoint of a run. The step declares what is in it: its networks (described, to rebuild them), its
    state (weights, EMA, optimisers, counters) and its components (what a pipeline is made of: name -> (network,
    state key), e.g. generator -> (G, G_ema)); the trainer adds the recipe, RNG states and counters. Only this
    module knows how that becomes a file and back."""

    task: str
    spec: dict
    config: dict
    networks: dict
    state: dict
    rng: dict
    batches_done: int
    elapsed: float
    step: int
    components: dict | None = None  # None in checkpoints written before they were recorded: see _components
    path: Path | None = None

    def save(self, path: Path) -> Path:
        fields = {k: getattr(self, k) for k in ("task", "spec", "networks", "state", "config", "rng", "batches_done",
                                                "elapsed", "step", "components")}
        atomic_save({"format": FORMAT, "version": VERSION, **fields}, path)
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> "Checkpoint":
        return cls.of(safe_load(path), Path(path))

    @classmethod
    def latest(cls, folder: Path) -> "Checkpoint":
        obj, path = load_latest(folder)
        return cls.of(obj, path)

    @classmethod
    def of(cls, obj: dict, path: Path) -> "Checkpoint":
        try:
            return cls(task=obj["task"], spec=obj["spec"], config=obj["config"], networks=obj["networks"],
                       state=obj["state"], rng=obj.get("rng") or {}, batches_done=int(obj.get("batches_done", 0)),
                       elapsed=float(obj.get("elapsed", 0.0)), step=int(obj.get("step", 0)),
                       components=obj.get("components"), path=path)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: checkpoint lacks or mangles {e}") from None

    @property
    def arch(self) -> str | None:
        return (self.config.get("model") or {}).get("arch")

    @property
    def stage(self) -> str | None:
        """A two-stage run's stage (stage1, stage2, joint), from its recipe."""
        return (self.config.get("stages") or {}).get("stage")

    def network(self, name: str, ema: bool = False) -> tuple[dict, dict]:
        """(description, weights) of network `name`; ema: its averaged weights (a generator's, for sampling)."""
        return self.networks[name], self.state[f"{name}_ema" if ema else name]

    def optimiser(self, name: str) -> dict:
        return self.state[f"opt_{name}"]

    def renamed(self, **names: str) -> "Checkpoint":
        """This checkpoint with its components renamed (old=new): a stage run's generator in a pipeline of two."""
        parts = self.components or _components(self)
        return dataclasses.replace(self, components={names.get(c, c): part for c, part in parts.items()})

    def pipeline_parts(self) -> dict[str, tuple[dict, dict]]:
        """component -> (description, weights): what a pipeline built from this checkpoint is made of."""
        return {c: (self.networks[net], self.state[key]) for c, (net, key) in (self.components or _components(self)).items()}


def _components(cp: Checkpoint) -> dict:
    """The components of a checkpoint written before they were recorded (format 2 until issue 22): a GAN's
    generator is its EMA copy; a joint two-stage run holds two (G1, G2); other networks (embedder) by name;
    D and the joint's label classifier C are trained against, never used to make anything."""
    if "G1" in cp.networks:
        return {"generator1": ("G1", "G1_ema"), "generator2": ("G2", "G2_ema")}
    return {"generator" if n == "G" else n: (n, "G_ema" if n == "G" else n) for n in cp.networks if n not in ("D", "C")}


# ----- exports and "what do I need to use this model" ------------------------------------------------------
MAX_MANIFEST_BYTES = 1_000_000


def write_export(folder: Path, task: str, spec: dict, data: dict, components: dict) -> Path:
    """components: name -> network (with .describe()); one safetensors file each, then the manifest last,
    so a folder with a manifest is always complete."""
    import json

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "task": task, "spec": spec, "data": data,
                "components": {}}
    for name, net in components.items():
        file = f"{name}.safetensors"
        tmp = folder / f".{file}.tmp-{os.getpid()}"
        save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / file)
        manifest["components"][name] = {"file": file, **net.describe()}
    tmp = folder / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return folder


@dataclass
class ModelFiles:
    """What using a model needs, read from a run, a checkpoint or an export of any format."""

    task: str
    spec: dict
    data: dict
    networks: dict  # component -> {'class', 'arguments'}
    weights: dict  # component -> state dict
    source: str
    run: str | None = None  # the run directory it was read from (its summary, samples and eval for a model card)


def read_model(path: str | Path) -> ModelFiles:
    """What using a model needs, from a run directory, a checkpoint file or an export folder (any format).
    In a run directory, its checkpoints win over any export folder written inside it. (A task whose runs are
    folders of several runs reads those itself first: registry.Task.locate.)"""
    path = Path(path)
    if path.is_dir() and not (path / "checkpoints").is_dir() and ((path / MANIFEST).is_file() or (path / V1_EXPORT_CONFIG).is_file()):
        return _read_export(path)
    if path.is_dir() and not (path / "checkpoints").is_dir() and not list_checkpoints(path):
        raise CheckpointError(_neither_run_nor_export(path))
    if path.is_dir() and (path / "checkpoints").is_dir():
        return dataclasses.replace(model_of(Checkpoint.latest(path / "checkpoints")), run=str(path))
    if path.is_dir():
        cp = Checkpoint.latest(path)
    elif path.is_file():
        cp = Checkpoint.read(path)
    else:
        raise CheckpointError(f"{path} does not exist (give a run directory, a checkpoint file, or an exported folder)")
    return model_of(cp)


def model_of(*checkpoints: Checkpoint) -> ModelFiles:
    """The pipeline in one checkpoint, or made of several runs' (their components together; the last one's data)."""
    last = checkpoints[-1]
    try:
        parts = {c: part for cp in checkpoints for c, part in cp.pipeline_parts().items()}
        return ModelFiles(last.task, last.spec, dict(last.config["data"]), {c: d for c, (d, _) in parts.items()},
                          {c: w for c, (_, w) in parts.items()}, " + ".join(str(cp.path) for cp in checkpoints))
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{last.path}: checkpoint lacks {e}") from None


def _neither_run_nor_export(folder: Path) -> str:
    """Why a folder is no model, and what would be: 'no checkpoints in X' made users look for the wrong thing."""
    from ..untrusted import printable

    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    hint = (f" It holds {printable(weights[0], 60)} but no {MANIFEST}: an incomplete export? Export the run again."
            if weights else "")
    return (f"{printable(folder, 200)} is neither a run (no checkpoints/ folder) nor an export (no {MANIFEST}); "
            f"give a run directory, a checkpoint file or an exported folder.{hint}")


def builtin_data_names() -> set[str]:
    from ..data.paired import BUILTIN_PAIRS
    from ..data.registry import DEFAULT_DIRS
    from ..data.twolabel import BUILTIN as TWO_LABEL

    return set(DEFAULT_DIRS) | set(BUILTIN_PAIRS) | set(TWO_LABEL)


def portable_data(data: dict) -> dict:
    """An export's record of its training data, without the author's local paths: a built-in dataset by
    name; a folder only by its last part, as a hint (`condgan eval EXPORT --data FOLDER` points at it)."""
    data = dict(data or {})
    name = data.get("name")
    data.pop("data_dir", None)
    if not (isinstance(name, str) and name.lower() in builtin_data_names()):
        data["name"] = None
        data["folder_hint"] = Path(str(name)).name if name else None
    return data


def _read_export(folder: Path) -> ModelFiles:
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..errors import UserError
    from ..untrusted import inside, printable

    def weights(file) -> dict:
        try:
            f = inside(folder, file)
        except UserError as e:
            raise CheckpointError(f"{e} (component files must be inside the export folder)") from None
        if not f.is_file():
            raise CheckpointError(f"{folder}: component file {printable(file, 80)!r} is missing (the export is incomplete)")
        try:
            return load_file(str(f))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{f} is not a readable safetensors file ({printable(e, 160)})") from None

    v1 = not (folder / MANIFEST).is_file()
    meta_file = folder / (V1_EXPORT_CONFIG if v1 else MANIFEST)
    try:
        if meta_file.stat().st_size > MAX_MANIFEST_BYTES:
            raise CheckpointError(f"{meta_file} is larger than {MAX_MANIFEST_BYTES} bytes; not a condgan export")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{meta_file} is not readable JSON ({printable(e, 120)})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_file} must hold a JSON object")
    try:
        if v1:
            from ..conditions import class_spec

            config, names = meta["config"], list(meta["class_names"])
            return ModelFiles("cgan", class_spec(names, config["data"]["channels"], config["data"]["image_size"]).to_dict(),
                              dict(config["data"]), {"generator": v1_networks(config, len(names))["G"]},
                              {"generator": weights(V1_EXPORT_WEIGHTS)}, str(folder))
        if meta.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{meta_file} is not a condgan export manifest")
        version = meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise CheckpointError(f"{meta_file}: export version must be an integer, not {printable(repr(version), 20)}")
        if version > EXPORT_VERSION:
            raise CheckpointError(f"{meta_file}: export version {version} is newer than this condgan reads; upgrade condgan")
        components = meta.get("components")
        if not isinstance(components, dict) or not components:
            raise CheckpointError(f"{meta_file} lacks its components (which networks, in which files); re-export the model")
        data = meta.get("data") or {}
        if not isinstance(data, dict):
            raise CheckpointError(f"{meta_file}: 'data' must be a JSON object")
        data = {k: v for k, v in data.items() if k in ("name", "classes", "image_size", "channels", "direction", "folder_hint")}
        if not (isinstance(data.get("name"), str) and data["name"].lower() in builtin_data_names()):
            data["name"] = None  # an export never points at a local path: eval asks for --data instead
        return ModelFiles(meta["task"], meta["spec"], data,
                          {n: {"class": c["class"], "arguments": c["arguments"]} for n, c in components.items()},
                          {n: weights(c["file"]) for n, c in components.items()}, str(folder))
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{meta_file} lacks or mangles {printable(e, 80)}; re-export the model with `condgan export`") from None
