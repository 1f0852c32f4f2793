"""`condgan sample`, `condgan apply` and `condgan export`: using a trained model. What sampling means is the
task's (registry.Task.sample); the command loads the model and checks that the flags given apply to it."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import registry
from ..errors import UserError
from .common import (add_device_argument, add_task_arguments, check_flags_apply, check_writable, load_on_device,
                     say_device, seed_int)


def add_use_commands(sub) -> None:
    s = sub.add_parser("sample", help="generate images from a trained model (a translator: a source | output | target sheet)",
                       description="Generate images. Writes a PNG grid (one row per label) or, for a .npz --out, "
                       "an NPZ with images (uint8 N×H×W[×C]), labels (int64) and class_names for external tools. "
                       "For a translator: a sheet of --n pairs of a data split, source | output | target. "
                       "For a two-stage pipeline: a grid with one row per label A and one column per label B, each "
                       "image beside its intermediate, or an NPZ with images (uint8 N×H×W×3), intermediates "
                       "(uint8 N×H×W), labels_a, labels_b, label_a_names, label_b_names and label_b_rgb (K×3 uint8), "
                       "--n-per-pair images of every (A, B) pair. Flags marked with a task apply to its models only.")
    s.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder")
    s.add_argument("--n", type=int, default=None, help="images per label in a PNG grid, at most 256 (default 8; "
                   "a translator: pairs in the sheet; two-stage: rows per label A, default 1)")
    s.add_argument("--seed", type=seed_int, default=0, help="random seed: same seed, same images (default 0)")
    s.add_argument("--out", default="samples.png", help="output file: .png for a grid, .npz for arrays (default samples.png)")
    add_device_argument(s)
    add_task_arguments("sample", s)
    s.set_defaults(func=cmd_sample)

    a = sub.add_parser("apply", help="translate images with a trained translator",
                       description="Translate your own images (files or folders; outputs keep the input names, as PNG) "
                       "or a whole data split (--split test --out x.npz writes images = outputs, sources, targets, "
                       "uint8 N×H×W or N×H×W×3, plus labels and class_names when the data has classes).")
    a.add_argument("run", help="run directory, checkpoint file (.pt) or exported folder of a translator")
    a.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders of images to translate")
    a.add_argument("--split", choices=("train", "test"), help="translate this split of the run's own dataset instead of INPUTs")
    a.add_argument("--out", required=True, help="output folder for INPUTs, or an .npz file for --split")
    a.add_argument("--label", help="class name for every input, for translators trained with model.use_label=true")
    a.add_argument("--seed", type=seed_int, default=0, help="noise seed: same seed, same outputs (default 0)")
    add_device_argument(a)
    a.set_defaults(func=cmd_apply)

    e = sub.add_parser("export", help="save a run's model as safetensors + JSON (shareable, safe to load)",
                       description="Write OUT/condgan.json (task, fields, class names, data) and one OUT/<component>.safetensors "
                       "per network (generator; generator1 and generator2 for a two-stage pipeline; embedder for similarity "
                       "runs; generator and embedder for exemplar runs) and a model card, OUT/README.md (Hugging Face Hub "
                       "front matter, the classes, the training, the latest `condgan eval`, OUT/sample.png and OUT/config.yaml "
                       "without local paths); condgan.load(OUT) gives the same pipeline as the run and never reads the card.")
    e.add_argument("run", help="run directory (or two-stage pipeline directory) or checkpoint file")
    e.add_argument("out", help="folder to write condgan.json and the .safetensors files into (not the run directory)")
    e.add_argument("--push-to-hub", metavar="OWNER/NAME", help="then upload the folder to this Hugging Face Hub model "
                   "repository (created if needed; needs `pip install 'condgan[hub]'` and `hf auth login`); "
                   "load it anywhere with condgan.load('hf://OWNER/NAME')")
    e.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    e.set_defaults(func=cmd_export)


def cmd_sample(args: argparse.Namespace) -> int:
    model = load_on_device(args, say=False)
    out = Path(args.out)
    check_writable(out)
    task = registry.get(model.task)
    check_flags_apply("sample", args, task)
    say_device(args, model.device)
    return task.sample(model, args, out)


def cmd_apply(args: argparse.Namespace) -> int:
    from ..apply import apply_to_files, apply_to_split

    tr = load_on_device(args, say=False)
    if not hasattr(tr, "translate") or not hasattr(tr, "uses_label"):
        raise UserError(f"{args.run} is a {tr.task} model: `condgan apply` is for translators; use `condgan sample` to generate")
    if (args.split is None) == (not args.inputs):
        raise UserError("give INPUT files/folders to translate, or --split train|test with --out FILE.npz (not both)")
    out = Path(args.out)
    if args.split:
        if out.suffix.lower() != ".npz":
            raise UserError(f"with --split, --out must be an .npz file, not {out.name!r}")
        check_writable(out)
        say_device(args, tr.device)
        n = apply_to_split(tr, args.split, out, seed=args.seed)
        print(f"wrote {n} {args.split} pairs (images = outputs, sources, targets) to {out}")
    else:
        if args.label is not None and not tr.uses_label:
            raise UserError("--label does not apply: this translator was trained without labels (model.use_label=false)")
        say_device(args, tr.device)
        written, skipped = apply_to_files(tr, [Path(p) for p in args.inputs], out, seed=args.seed, label=args.label)
        print(f"translated {len(written)} image(s) into {out}" + (f"; skipped {len(skipped)} unreadable file(s)" if skipped else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..api import load
    from ..training import hub
    from ..training.checkpoint import MANIFEST

    run, out = Path(args.run), Path(args.out)
    if args.private and not args.push_to_hub:
        raise UserError("--private is for --push-to-hub")
    if args.push_to_hub:  # before exporting: a typo or a missing extra should not wait for the export
        hub.repo_id(args.push_to_hub, "--push-to-hub")
        hub.client()
    if out.resolve() == (run if run.is_dir() else run.parent).resolve():
        raise UserError(f"export into a folder of its own, not into the run directory {run}")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(f"{out} is not empty and is not an earlier export; export into a new or empty folder")
    folder = load(args.run, device="cpu").save_pretrained(out, repo=args.push_to_hub)  # nothing to compute: no GPU
    print(f"exported to {folder} (load it with condgan.load({str(folder)!r}))")
    if args.push_to_hub:
        url = hub.push(folder, args.push_to_hub, private=args.private)
        print(f"uploaded to {url} (load it with condgan.load('hf://{args.push_to_hub}'))")
    return 0
