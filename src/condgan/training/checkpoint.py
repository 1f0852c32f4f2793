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
Format 1 files (before named fields: class_names + config + gan) are upgraded
on load, so runs trained by older condgan still sample, resume and evaluate.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then atomically renamed: a checkpoint file either exists complete or not at
all, whatever kills the process.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError

FORMAT = "condgan-checkpoint"
VERSION = 2
EXPORT_FORMAT = "condgan-export"
EXPORT_VERSION = 2
MANIFEST = "condgan.json"
V1_EXPORT_CONFIG, V1_EXPORT_WEIGHTS = "generator.json", "generator.safetensors"
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def atomic_save(obj, path: Path) -> None:
    """torch.save `obj` to `path` atomically; on failure the old file is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(e):
            raise CheckpointError(f"disk full while writing {path}; nothing was overwritten — free space and resume") from None
        if isinstance(e, PermissionError):
            raise CheckpointError(f"cannot write {path}: permission denied (choose a writable --out)") from None
        raise CheckpointError(f"could not write {path}: {e}") from None


def _is_disk_full(e: BaseException) -> bool:
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in str(e) or "file write failed" in str(e)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# ----- format 1 -> 2 ---------------------------------------------------------------------------------------
V1_NETWORKS = {"resnet": ("ResNetGenerator", "ProjectionDiscriminator"), "dcgan": ("DCGANGenerator", "DCGANDiscriminator"),
               "mlp": ("MLPGenerator", "MLPDiscriminator")}


def v1_networks(config: dict, num_classes: int) -> dict:
    """The {'class', 'arguments'} of a format-1 run's G and D, read from its config (format 1 recorded no more)."""
    m, d = config["model"], config["data"]
    g_class, d_class = V1_NETWORKS[m["arch"]]
    networks = {"G": {"class": g_class, "arguments": {"num_classes": num_classes, "z_dim": m["z_dim"], "channels": d["channels"],
                                                      "image_size": d["image_size"], "width": m["g_width"]}},
                "D": {"class": d_class, "arguments": {"num_classes": num_classes, "channels": d["channels"],
                                                      "image_size": d["image_size"], "width": m["d_width"]}}}
    if m["arch"] == "resnet":  # format 1 always built the class head; now it exists only when trained
        aux = config.get("train", {}).get("aux_weight")
        networks["D"]["arguments"]["class_head"] = aux is None or aux > 0
    return networks


def upgrade_v1(obj: dict) -> dict:
    """A format-1 checkpoint (class_names, config, gan) as format 2."""
    from ..conditions import class_spec

    config, names = dict(obj["config"]), list(obj["class_names"])
    networks = v1_networks(config, len(names))
    state = dict(obj["gan"])
    if networks["D"]["arguments"].get("class_head") is False:  # drop the unused head and its optimiser slots
        state["D"] = {k: v for k, v in state["D"].items() if not k.startswith("classifier.")}
        state["opt_D"] = _drop_last_params(state["opt_D"], 2)
    config.setdefault("task", "cgan")
    upgraded = {k: v for k, v in obj.items() if k not in ("gan", "class_names")}
    upgraded.update(version=VERSION, task="cgan", config=config, networks=networks, state=state,
                    spec=class_spec(names, config["data"]["channels"], config["data"]["image_size"]).to_dict())
    return upgraded


def _drop_last_params(opt_state: dict, n: int) -> dict:
    params = opt_state["param_groups"][0]["params"]
    dropped = set(params[-n:])
    groups = [dict(opt_state["param_groups"][0], params=params[:-n])] + opt_state["param_groups"][1:]
    return {"state": {k: v for k, v in opt_state["state"].items() if k not in dropped}, "param_groups": groups}


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


def read_model(path: str | Path) -> dict:
    """What using a model needs, from a run directory, a checkpoint file or an export folder (any format):
    {task, spec, data, networks: {name: {'class', 'arguments'}}, weights: {name: state_dict}, source}.
    In a run directory, its checkpoints win over any export folder written inside it. A two-stage pipeline
    directory (stage1/, stage2/, joint/ runs) gives its joint run, or else its two stage runs together."""
    path = Path(path)
    if path.is_dir() and not (path / "checkpoints").is_dir() and ((path / MANIFEST).is_file() or (path / V1_EXPORT_CONFIG).is_file()):
        return _read_export(path)
    if path.is_dir() and not (path / "checkpoints").is_dir() and any((path / s).is_dir() for s in PIPELINE_STAGES):
        return _read_pipeline(path)
    if path.is_dir() and not (path / "checkpoints").is_dir() and not list_checkpoints(path):
        raise CheckpointError(_neither_run_nor_export(path))
    if path.is_dir():
        state, found = load_latest(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
    elif path.is_file():
        state, found = safe_load(path), path
    else:
        raise CheckpointError(f"{path} does not exist (give a run directory, a checkpoint file, or an exported folder)")
    if state.get("task") == "two-stage":
        return _read_two_stage(state, found)
    try:
        networks, weights = {}, {}
        for name, description in state["networks"].items():
            if name == "D":  # trained against, never used to make anything
                continue
            # a GAN's generator is used through its EMA copy; other networks (embedder) under their own name
            component = "generator" if name == "G" else name
            networks[component] = description
            weights[component] = state["state"]["G_ema" if name == "G" else name]
        return {"task": state["task"], "spec": state["spec"], "data": dict(state["config"]["data"]),
                "networks": networks, "weights": weights, "source": str(found)}
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{found}: checkpoint lacks {e}") from None


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


PIPELINE_STAGES = ("stage1", "stage2", "joint")


def _read_two_stage(state: dict, found: Path) -> dict:
    """A two-stage checkpoint: the joint run holds both generators (G1, G2); a stage run holds one,
    so it is read together with its sibling stage run (the pipeline before joint fine-tuning)."""
    try:
        stage = state["config"]["stages"]["stage"]
        if stage == "joint":
            return {"task": "two-stage", "spec": state["spec"], "data": dict(state["config"]["data"]),
                    "networks": {"generator1": state["networks"]["G1"], "generator2": state["networks"]["G2"]},
                    "weights": {"generator1": state["state"]["G1_ema"], "generator2": state["state"]["G2_ema"]},
                    "source": str(found)}
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{found}: two-stage checkpoint lacks {e}") from None
    run_dir = found.parent.parent if found.parent.name == "checkpoints" else found.parent
    return _read_pipeline(run_dir.parent, stages_only=True)


def _read_pipeline(folder: Path, stages_only: bool = False) -> dict:
    """The generators of a two-stage pipeline directory: from its joint run if it has one (and not
    stages_only), else G1 from its stage1 run and G2 from its stage2 run."""
    if not stages_only and list_checkpoints(folder / "joint" / "checkpoints"):
        return read_model(folder / "joint")
    missing = [s for s in ("stage1", "stage2") if not list_checkpoints(folder / s / "checkpoints")]
    if missing:
        have = [s for s in ("stage1", "stage2") if s not in missing]
        raise CheckpointError(f"{folder} is a two-stage pipeline with {' and '.join(have) or 'no trained stage'} only; "
                              f"sampling needs G1 and G2: train {' and '.join(missing)} (condgan train --task two-stage "
                              f"--stage {missing[0]} --data DATA --out {folder})")
    (s1, p1), (s2, p2) = load_latest(folder / "stage1" / "checkpoints"), load_latest(folder / "stage2" / "checkpoints")
    try:
        if s1["spec"] != s2["spec"]:
            raise CheckpointError(f"{p1} and {p2} were trained on different data ({s1['spec']} vs {s2['spec']}); "
                                  f"they do not make one pipeline")
        return {"task": "two-stage", "spec": s2["spec"], "data": dict(s2["config"]["data"]),
                "networks": {"generator1": s1["networks"]["G"], "generator2": s2["networks"]["G"]},
                "weights": {"generator1": s1["state"]["G_ema"], "generator2": s2["state"]["G_ema"]},
                "source": f"{p1} + {p2}"}
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{folder}: a stage checkpoint lacks {e}") from None


def _read_export(folder: Path) -> dict:
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
            return {"task": "cgan", "spec": class_spec(names, config["data"]["channels"], config["data"]["image_size"]).to_dict(),
                    "data": dict(config["data"]), "networks": {"generator": v1_networks(config, len(names))["G"]},
                    "weights": {"generator": weights(V1_EXPORT_WEIGHTS)}, "source": str(folder)}
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
        return {"task": meta["task"], "spec": meta["spec"], "data": data,
                "networks": {n: {"class": c["class"], "arguments": c["arguments"]} for n, c in components.items()},
                "weights": {n: weights(c["file"]) for n, c in components.items()}, "source": str(folder)}
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{meta_file} lacks or mangles {printable(e, 80)}; re-export the model with `condgan export`") from None
