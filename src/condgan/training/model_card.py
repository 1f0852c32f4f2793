"""An export's model card: README.md with Hugging Face Hub front matter, and the run's files it shows.

Written beside condgan.json by Pipeline.save_pretrained. The card is for people (and the Hub's search):
loading an export never reads it, nor sample.png or config.yaml, so nothing in them can change what a
model does. What the card says comes from the pipeline (its kind, fields, tags, a usage line) and, when
the pipeline knows its run directory, from the run: summary.json (how it was trained), eval/report.json
(the latest `condgan eval`, beside the real floor), samples/latest.png and config.yaml. Like the
manifest, the card and the copied config carry no local paths (checkpoint.portable_data).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..conditions import Spec
from .checkpoint import portable_data

CARD, SAMPLE, CONFIG = "README.md", "sample.png", "config.yaml"
LICENSE = "mit"


@dataclass(frozen=True)
class CardFacts:
    """What a pipeline says about itself on its card."""

    task: str
    kind: str  # the pipeline class condgan.load returns
    title: str = ""  # the task's phrase (registry.Task.title)
    tags: tuple[str, ...] = ()  # beyond condgan and the task name
    pipeline_tag: str | None = None  # the Hub's task category, where one fits
    usage: str | None = None  # Python lines that use `model`
    data: dict = field(default_factory=dict)  # the portable data record (as in condgan.json)
    repo: str | None = None  # the Hub repository (owner/name) it is pushed to, for the usage lines


def write_card(folder: Path, facts: CardFacts, spec: Spec, run: Path | None) -> Path | None:
    """Write README.md (and, from `run`, sample.png and config.yaml) into the export `folder`. Not into a run
    directory (save_pretrained into one is allowed): its config.yaml is the run's own."""
    folder = Path(folder)
    run = Path(run) if run is not None else None
    if (folder / "checkpoints").is_dir() or (run is not None and folder.resolve() == run.resolve()):
        return None
    sample = _copy_sample(run, folder)
    config = _copy_config(run, folder)
    summary = _read_json(run / "summary.json") if run else None
    report = _read_json(run / "eval" / "report.json") if run else None
    parts = [_front_matter(facts), _heading(facts), _usage(facts), _fields(spec),
             _training(facts.data, summary), _evaluation(report),
             f"## Samples\n\n![samples from the model]({SAMPLE})\n" if sample else "",
             f"## Config\n\nThe resolved training config ({CONFIG}; local paths cut to their last part):\n\n```yaml\n{config}```\n" if config else "",
             _files(folder)]
    text = "\n".join(p for p in parts if p)
    tmp = folder / f".{CARD}.tmp-{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / CARD)
    return folder / CARD


def _front_matter(facts: CardFacts) -> str:
    meta = {"library_name": "condgan", "license": LICENSE,
            "tags": list(dict.fromkeys(["condgan", facts.task, *facts.tags]))}
    if facts.pipeline_tag:
        meta["pipeline_tag"] = facts.pipeline_tag
    meta.update({"condgan_task": facts.task, "condgan_pipeline": facts.kind})
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _heading(facts: CardFacts) -> str:
    title = f": {facts.title}" if facts.title else ""
    return (f"# condgan {facts.task} model{title}\n\nA `{facts.kind}` pipeline exported by `condgan export`: "
            "`condgan.json` and one `.safetensors` file per network. Loading it runs no code from the folder.\n")


def _usage(facts: CardFacts) -> str:
    where = f'"hf://{facts.repo}")  # or condgan.load(FOLDER) of a copy' if facts.repo else \
        '".")  # this folder; on the Hugging Face Hub: condgan.load("hf://OWNER/NAME")'
    lines = ["import condgan", "", f"model = condgan.load({where}", *(facts.usage or "").splitlines()]
    return "## Use it\n\n```python\n" + "\n".join(lines) + "\n```\n"


def _fields(spec: Spec) -> str:
    rows = []
    for name, f in spec.items():
        if f.kind == "class":
            names = ", ".join(f"`{_md(c)}`" for c in f.class_names)
            rows.append(f"- `{name}`: a class label, {len(f.class_names)} classes: {names}")
        elif f.kind == "image":
            rows.append(f"- `{name}`: an image, {f.channels} channel{'s' if f.channels != 1 else ''}, {f.width}×{f.height} px")
        else:
            rows.append(f"- `{name}`: a vector of {getattr(f, 'dim', '?')} numbers")
    return "## Fields\n\n" + "\n".join(rows) + "\n"


def _training(data: dict, summary: dict | None) -> str:
    name = data.get("name")
    where = f"`{_md(name)}` (built in)" if name else (
        f"a local folder or file (`{_md(data['folder_hint'])}`; its path is not recorded)" if data.get("folder_hint")
        else "local data (its path is not recorded)")
    lines = [f"- data: {where}"]
    if summary:
        for key, label, form in (("steps", "steps", "{:,}"), ("train_minutes", "minutes", "{:g}"),
                                 ("images_per_s", "images/s", "{:,.0f}"), ("precision", "precision", "{}")):
            value = summary.get(key)
            if value is not None and not isinstance(value, (dict, list)):
                lines.append(f"- {label}: {form.format(value) if isinstance(value, (int, float)) else _md(value)}")
    return "## Training\n\n" + "\n".join(lines) + "\n"


def _evaluation(report: dict | None) -> str:
    """The numbers of the latest `condgan eval` that the model and the real floor share (real held-out data
    scored the same way: the best a model could do)."""
    if not isinstance(report, dict) or not isinstance(report.get("model"), dict):
        return ""
    model, floor = report["model"], report.get("real_floor")
    if not isinstance(floor, dict):
        return ""
    keys = [k for k, v in model.items() if _number(v) and _number(floor.get(k))]
    if not keys:
        return ""
    rows = [f"| {_md(k)} | {_fmt(model[k])} | {_fmt(floor[k])} |" for k in keys]
    return ("## Evaluation\n\nFrom the run's latest `condgan eval`, beside the same numbers for real held-out images "
            "(the real floor):\n\n| metric | model | real floor |\n|---|---|---|\n" + "\n".join(rows) + "\n")


def _files(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) + [CARD]
    return ("## Files\n\n" + ", ".join(f"`{n}`" for n in sorted(set(names))) +
            f"\n\n`condgan.load` reads only `condgan.json` and the `.safetensors` files; this card, `{SAMPLE}` and "
            f"`{CONFIG}` are for people.\n")


def _copy_sample(run: Path | None, folder: Path) -> bool:
    grid = run / "samples" / "latest.png" if run else None
    if grid is None or not grid.is_file():
        (folder / SAMPLE).unlink(missing_ok=True)  # an earlier export's picture would show another model
        return False
    shutil.copyfile(grid, folder / SAMPLE)
    return True


def _copy_config(run: Path | None, folder: Path) -> str:
    """The run's config.yaml without local paths (the text shown in the card), or '' when there is none."""
    raw = _read_yaml(run / "config.yaml") if run else None
    if not isinstance(raw, dict):
        (folder / CONFIG).unlink(missing_ok=True)
        return ""
    clean = {k: _no_paths(v) for k, v in raw.items()}
    if isinstance(raw.get("data"), dict):  # still a config `condgan train --config` takes: a folder by its last part
        portable = portable_data(raw["data"])
        clean["data"] = {**clean["data"], "name": portable["name"] or portable.get("folder_hint"), "data_dir": None}
    text = yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)
    (folder / CONFIG).write_text(text, encoding="utf-8")
    return text


def _no_paths(value):
    """A config value with any path cut to its last part (a similarity run's pairs CSV, an exemplar's embedder)."""
    if isinstance(value, dict):
        return {k: _no_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_paths(v) for v in value]
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value.replace("\\", "/")).name
    return value


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _fmt(v) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"


def _md(text) -> str:
    """A name from the run shown in Markdown: no backticks, pipes or line breaks to break the card."""
    return " ".join(str(text).split()).replace("`", "'").replace("|", "/")
