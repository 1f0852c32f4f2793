"""The bad-input table: careless and hostile inputs, each with the answer condgan must give.

Every case goes through the real CLI (`condgan.cli.main`, in-process) or the Python API.
Most must end with exit code 2 and exactly one `condgan: error:` line naming the problem;
a few were silently mishandled once and are now honoured (they carry a `verify`).
Nothing any case touches may be written over: the protected run, export and data folders
are hashed before and after.

`attempt()` classifies what happened, so `benchmarks/bad_input_census.py` can count the
outcomes of any condgan version (the before/after figures in docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import struct
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from conftest import tiny_overrides, tiny_translate_overrides, write_folders, write_pairs

MAX_LINE = 400  # an error line longer than this is printing something it should have cut


@dataclass
class Case:
    category: str
    name: str
    action: Callable  # env -> argv list (CLI), or env -> callable (Python API)
    expect: str | None  # fragment of the error line (case-insensitive); None: must succeed and `verify`
    code: int = 2
    verify: Callable | None = None  # env -> None; asserts what a succeeding case must have done
    protect: tuple[str, ...] = ("run", "trun", "srun", "export", "data", "pairs")


@dataclass
class Outcome:
    kind: str  # clear | vague | traceback | silent | noisy | damaged | honoured | wrong
    code: int | None
    lines: list[str] = field(default_factory=list)
    detail: str = ""


class Env:
    """A tiny class-conditional run, a tiny translator run, their exports and data, built once."""

    def __init__(self, root: Path):
        from condgan.cli import main
        from condgan.config import load_config
        from condgan.training import train

        self.root = root
        self.data = write_folders(root / "shoes")
        self.pairs = write_pairs(root / "pairs")
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            train(load_config(None, tiny_overrides(self.data, steps=2)), root / "run", quiet=True)
            train(load_config(None, tiny_translate_overrides(self.pairs, steps=2)), root / "trun", quiet=True)
            train(load_config(None, ["task=similarity", f"data.name={self.data}", "data.image_size=16", "similarity.width=4",
                                     "similarity.embed_dim=8", "similarity.per_class=2", "train.batch_size=6",
                                     "train.steps=2"]), root / "srun", quiet=True)
            assert main(["export", str(root / "run"), str(root / "export")]) == 0
            assert main(["export", str(root / "trun"), str(root / "texport")]) == 0
        self.run, self.trun, self.srun = root / "run", root / "trun", root / "srun"
        self.export, self.texport = root / "export", root / "texport"
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        self._n = 0

    def path(self, name: str) -> Path:
        """A fresh path in the scratch folder (nothing there yet)."""
        self._n += 1
        folder = self.scratch / f"{self._n:03d}"
        folder.mkdir()
        return folder / name

    def file(self, name: str, content: bytes | str) -> Path:
        p = self.path(name)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    def copy_export(self, source: str = "export") -> Path:
        import shutil

        dest = self.path("export")
        shutil.copytree(getattr(self, source), dest)
        return dest

    def checkpoint(self, run: str = "run") -> Path:
        return sorted((getattr(self, run) / "checkpoints").glob("step_*.pt"))[-1]

    def edited_checkpoint(self, edit: Callable[[dict], None], name: str = "edited.pt") -> Path:
        state = torch.load(self.checkpoint(), weights_only=True)
        edit(state)
        p = self.path(name)
        torch.save(state, p)
        return p

    def edited_manifest(self, edit: Callable[[dict], object], source: str = "export") -> Path:
        folder = self.copy_export(source)
        manifest = json.loads((folder / "condgan.json").read_text())
        result = edit(manifest)
        (folder / "condgan.json").write_text(json.dumps(manifest if result is None else result))
        return folder

    def tiny_train(self, *extra: str, data: Path | None = None) -> list[str]:
        return ["train", "--data", str(data or self.data), "--out", str(self.path("out")), "--steps", "1", "--quiet",
                "--set", "data.image_size=16", "model.g_width=4", "model.d_width=4", "model.z_dim=8",
                "train.batch_size=4", *extra]

    def config(self, text: str | bytes, *extra: str) -> list[str]:
        return ["train", "--config", str(self.file("c.yaml", text)), "--out", str(self.path("out")), "--steps", "1",
                "--quiet", *extra]

    def snapshot(self, names) -> dict:
        digest = {}
        for name in names:
            for p in sorted(Path(getattr(self, name)).rglob("*")):
                if p.is_file() and "tb" not in p.parts:
                    digest[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        return digest


# ----- helpers that make hostile files ---------------------------------------------------------------------
def anchor_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\ntrain:\n  batch_size: *a8\n"


def png_bytes(size=(8, 8), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 100_000) -> bytes:
    """A valid PNG header claiming side x side pixels (a decompression bomb's calling card)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def folder_with(env: Env, files: dict[str, bytes], good: int = 3) -> Path:
    """Two class folders a/ and b/ with `good` readable images each, plus `files` (relative path -> bytes)."""
    root = env.path("data")
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(good):
            Image.fromarray(np.full((16, 16), 40 + 150 * (c == "b") + i, np.uint8)).save(root / c / f"{i}.png")
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return root


def npz(env: Env, **arrays) -> Path:
    p = env.path("s.npz")
    np.savez(p, **arrays)
    return p


def good_samples(**override) -> dict:
    arrays = {"images": np.zeros((4, 16, 16), np.uint8), "labels": np.array([0, 1, 2, 0]),
              "class_names": np.array(["boot", "sandal", "sneaker"])}
    arrays.update(override)
    return arrays


def nan_everywhere(state: dict) -> None:
    for k in ("G", "G_ema"):
        for v in state["state"][k].values():
            if v.is_floating_point():
                v.fill_(float("nan"))


def _nan_export(env: Env) -> Path:
    from safetensors.torch import load_file, save_file

    folder = env.copy_export()
    weights = load_file(str(folder / "generator.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()},
              str(folder / "generator.safetensors"))
    return folder


def _wrong_shape_export(env: Env) -> Path:
    from safetensors.torch import load_file, save_file

    folder = env.copy_export()
    weights = load_file(str(folder / "generator.safetensors"))
    key = next(k for k, v in weights.items() if v.dim() >= 2)
    weights[key] = torch.zeros(3, 3)
    save_file(weights, str(folder / "generator.safetensors"))
    return folder


def _idx_folder(env: Env, images: bytes | None = None, labels_n: int | None = None) -> Path:
    root = env.path("idx")
    root.mkdir()
    n = 8
    data = struct.pack(">BBBB3I", 0, 0, 8, 3, n, 8, 8) + bytes(n * 64)
    for prefix in ("train", "t10k"):
        with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(data if images is None else images)
        m = n if labels_n is None else labels_n
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBBI", 0, 0, 8, 1, m) + bytes(i % 2 for i in range(m)))
    return root


def _exif_rotated(env: Env) -> Path:
    """A 'phone photo': stored sideways (wide), with EXIF orientation 6 saying 'rotate to show it tall'."""
    root = env.path("photos")
    arr = np.zeros((20, 40), np.uint8)
    arr[:, :20] = 255  # stored: left half white; shown upright (rotated 90° clockwise): top half white
    exif = Image.Exif()
    exif[0x0112] = 6
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(arr).save(root / c / f"{i}.jpg", exif=exif, quality=95)
    return root


def _verify_exif(env: Env, root: Path) -> None:
    from condgan.data import load_dataset

    data = load_dataset(str(root), split="all", image_size=20, channels=1)
    img = data.images[0, 0].float()
    assert img[:10].mean() > 200 and img[10:].mean() < 50, "EXIF orientation was not applied"


# ----- the table ------------------------------------------------------------------------------------------
def cases() -> list[Case]:
    C = Case
    out = []
    add = out.append

    # --- config files: encoding, structure, duplicate keys, value sizes
    cat = "config file"
    add(C(cat, "not UTF-8", lambda e: e.config(b"train:\n  lr_g: \xff\xfe\n"), "not UTF-8"))
    add(C(cat, "binary file (a PNG)", lambda e: e.config(png_bytes()), "not UTF-8"))
    add(C(cat, "YAML list", lambda e: e.config("- 1\n- 2\n"), "must be a mapping"))
    add(C(cat, "YAML list with --set", lambda e: e.config("- 1\n- 2\n", "--set", "train.lr_g=1e-4"), "must be a mapping"))
    add(C(cat, "YAML scalar", lambda e: e.config("hello\n"), "must be a mapping"))
    add(C(cat, "duplicate key", lambda e: e.config("train:\n  lr_g: 1e-4\n  lr_g: 2e-4\n"), "train.lr_g appears twice"))
    add(C(cat, "duplicate section", lambda e: e.config("train:\n  lr_g: 1e-4\ntrain:\n  lr_d: 2e-4\n"), "train appears twice"))
    add(C(cat, "anchor bomb in a typed key", lambda e: e.config(anchor_bomb()), "aliases"))
    add(C(cat, "config is a folder", lambda e: ["train", "--config", str(e.scratch), "--steps", "1"], "is not a file"))
    add(C(cat, "config missing", lambda e: ["train", "--config", str(e.scratch / "none.yaml"), "--steps", "1"], "does not exist"))
    add(C(cat, "invalid YAML", lambda e: e.config("train: [1, 2\n"), "not valid YAML"))
    add(C(cat, "tab indentation", lambda e: e.config("train:\n\tlr_g: 1\n"), "not valid YAML"))
    add(C(cat, "config over 1 MB", lambda e: e.config("#" * 1_100_000 + "\n"), "larger than"))
    add(C(cat, "section not a mapping", lambda e: e.config("train: 5\n"), "'train' must be a mapping"))
    add(C(cat, "unknown section", lambda e: e.config("trian:\n  lr_g: 1\n"), "unknown config section 'trian'"))
    add(C(cat, "unknown task", lambda e: e.config("task: paint\n"), "task must be one of"))
    add(C(cat, "key not a string", lambda e: e.config("train:\n  1: 2\n"), "unknown config key"))
    add(C(cat, "huge string value", lambda e: e.config("data:\n  name: " + "x" * 50_000 + "\n"), "data.name is longer than"))
    add(C(cat, "NaN learning rate", lambda e: e.config("train:\n  lr_g: .nan\n"), "train.lr_g must be a finite number"))
    add(C(cat, "infinite learning rate", lambda e: e.config("train:\n  lr_d: .inf\n"), "train.lr_d must be a finite number"))
    add(C(cat, "beta1 above 1", lambda e: e.config("train:\n  beta1: 1.5\n"), "train.beta1 must be in [0, 1)"))
    add(C(cat, "negative beta2", lambda e: e.config("train:\n  beta2: -0.1\n"), "train.beta2 must be in [0, 1)"))
    add(C(cat, "lr_decay above 1", lambda e: e.config("train:\n  lr_decay: 1.5\n"), "train.lr_decay must be in [0, 1]"))
    add(C(cat, "negative lr_decay", lambda e: e.config("train:\n  lr_decay: -0.2\n"), "train.lr_decay must be in [0, 1]"))
    add(C(cat, "NaN lr_decay", lambda e: e.config("train:\n  lr_decay: .nan\n"), "train.lr_decay must be a finite number"))
    add(C(cat, "absurd z_dim", lambda e: e.config("model:\n  z_dim: 1000000000\n"), "model.z_dim must be between"))
    add(C(cat, "absurd width", lambda e: e.config("model:\n  g_width: 1000000\n"), "model.g_width must be between"))
    add(C(cat, "bool for an int", lambda e: e.config("train:\n  batch_size: true\n"), "train.batch_size must be int"))
    add(C(cat, "zero threads", lambda e: e.config("train:\n  threads: 0\n"), "train.threads must be between"))
    add(C(cat, "absurd threads", lambda e: e.config("train:\n  threads: 100000\n"), "train.threads must be between"))
    add(C(cat, "negative seed", lambda e: e.config("train:\n  seed: -1\n"), "train.seed must be between"))
    add(C(cat, "seed beyond 64 bits", lambda e: e.config("train:\n  seed: 100000000000000000000000\n"), "train.seed must be between"))
    add(C(cat, "device 'gpu'", lambda e: e.config("train:\n  device: gpu\n"), "train.device must be"))
    add(C(cat, "negative ema_start", lambda e: e.config("train:\n  ema_start: -5\n"), "train.ema_start must be"))
    add(C(cat, "empty data.name", lambda e: e.config("data:\n  name: ''\n"), "data.name must not be empty"))
    add(C(cat, "negative checkpoint_minutes", lambda e: e.config("train:\n  checkpoint_minutes: -1\n"), "train.checkpoint_minutes must be positive"))
    add(C(cat, "absurd d_steps", lambda e: e.config("train:\n  d_steps: 1000000\n"), "train.d_steps must be between"))
    add(C(cat, "list of non-strings for classes", lambda e: e.config("data:\n  classes: [[1], [2]]\n"), "data.classes must be str"))

    # --- flags: ranges, and flags that do not apply to what was asked
    cat = "flag"
    add(C(cat, "--steps 0", lambda e: e.tiny_train("--steps", "0"), "--steps must be"))
    add(C(cat, "--steps -5", lambda e: e.tiny_train("--steps", "-5"), "--steps must be"))
    add(C(cat, "--budget-minutes nan", lambda e: e.tiny_train("--budget-minutes", "nan"), "--budget-minutes must be"))
    add(C(cat, "--budget-minutes inf", lambda e: e.tiny_train("--budget-minutes", "inf"), "--budget-minutes must be"))
    add(C(cat, "--epochs -1", lambda e: e.tiny_train("--epochs", "-1"), "--epochs must be"))
    add(C(cat, "--steps abc", lambda e: e.tiny_train("--steps", "abc"), "--steps must be a positive integer, not 'abc'"))
    add(C(cat, "misspelt flag", lambda e: e.tiny_train("--stpes", "3"), "unrecognized arguments: --stpes"))
    add(C(cat, "no command", lambda e: [], "required: COMMAND"))
    add(C(cat, "unknown command", lambda e: ["trian"], "invalid choice: 'trian'"))
    add(C(cat, "--set without =", lambda e: e.tiny_train("--set", "train.lr_g"), "--set expects"))
    add(C(cat, "--set with three parts", lambda e: e.tiny_train("--set", "a.b.c=1"), "--set expects"))
    add(C(cat, "--set empty value", lambda e: e.tiny_train("--set", "train.lr_g="), "train.lr_g must be"))
    add(C(cat, "--direction for a cgan", lambda e: e.tiny_train("--direction", "BtoA"), "--direction is for --task translate"))
    add(C(cat, "--arch unet for a cgan", lambda e: e.tiny_train("--arch", "unet"), "model.arch for task cgan"))
    add(C(cat, "--classes ''", lambda e: e.tiny_train("--classes", ""), "--classes is empty"))
    add(C(cat, "--classes ',,'", lambda e: e.tiny_train("--classes", ",,"), "--classes is empty"))
    add(C(cat, "--classes twice the same", lambda e: e.tiny_train("--classes", "boot,boot"), "names a class twice"))
    add(C(cat, "--device tpu", lambda e: e.tiny_train("--device", "tpu"), "train.device must be"))
    add(C(cat, "--device cuda without a GPU", lambda e: e.tiny_train("--device", "cuda:7"), "cuda"))
    add(C(cat, "--resume with --data", lambda e: ["train", "--resume", str(e.run), "--data", "mnist"], "cannot be used with --resume"))
    add(C(cat, "--resume changing the recipe", lambda e: ["train", "--resume", str(e.run), "--set", "model.z_dim=3"], "cannot change when resuming"))
    add(C(cat, "--resume a folder that is not a run", lambda e: ["train", "--resume", str(e.scratch)], "not a condgan run directory"))
    add(C(cat, "sample --n 0", lambda e: ["sample", str(e.run), "--n", "0", "--out", str(e.path("x.png"))], "--n must be"))
    add(C(cat, "sample --n 100000 in a grid", lambda e: ["sample", str(e.run), "--n", "100000", "--out", str(e.path("x.png"))], "--n must be"))
    add(C(cat, "sample --seed -1", lambda e: ["sample", str(e.run), "--seed", "-1", "--out", str(e.path("x.png"))], "--seed must be"))
    add(C(cat, "sample --seed 2**70", lambda e: ["sample", str(e.run), "--seed", str(2 ** 70), "--out", str(e.path("x.png"))], "--seed must be"))
    add(C(cat, "sample --n-per-class for a PNG", lambda e: ["sample", str(e.run), "--n-per-class", "5", "--out", str(e.path("x.png"))],
          "--n-per-class is for .npz"))
    add(C(cat, "sample --split for a cgan", lambda e: ["sample", str(e.run), "--split", "train", "--out", str(e.path("x.png"))],
          "--split is for translators"))
    add(C(cat, "sample --out .gif", lambda e: ["sample", str(e.run), "--out", str(e.path("x.gif"))], "must end in"))
    add(C(cat, "sample --out in a missing folder", lambda e: ["sample", str(e.run), "--out", str(e.scratch / "no" / "x.png")], "does not exist"))
    add(C(cat, "sample --device tpu", lambda e: ["sample", str(e.run), "--device", "tpu", "--out", str(e.path("x.png"))], "--device must be"))
    add(C(cat, "sample --device cuda without a GPU", lambda e: ["sample", str(e.run), "--device", "cuda", "--out", str(e.path("x.png"))], "cuda"))
    add(C(cat, "sample unknown class", lambda e: ["sample", str(e.run), "--label", "loafer", "--out", str(e.path("x.png"))], "unknown class 'loafer'"))
    add(C(cat, "sample --label for a translator", lambda e: ["sample", str(e.trun), "--label", "boot", "--out", str(e.path("x.png"))],
          "--label does not apply"))
    add(C(cat, "sample --n-per-class for a translator", lambda e: ["sample", str(e.trun), "--n-per-class", "3", "--out", str(e.path("x.png"))],
          "--n-per-class does not apply"))
    for value, target in (("0", "x.png"), ("-1.5", "x.png"), ("nan", "x.npz"), ("abc", "x.png")):
        add(C(cat, f"sample --truncation {value}",
              lambda e, value=value, target=target: ["sample", str(e.run), "--truncation", value, "--out", str(e.path(target))],
              "--truncation must be a number of at least"))
    add(C(cat, "sample --truncation for a translator", lambda e: ["sample", str(e.trun), "--truncation", "1.5", "--out",
                                                                  str(e.path("x.png"))], "--truncation is for"))
    add(C(cat, "sample a translator to .npz", lambda e: ["sample", str(e.trun), "--out", str(e.path("x.npz"))], "sheet is a .png"))
    add(C(cat, "apply a cgan", lambda e: ["apply", str(e.run), str(e.data), "--out", str(e.path("o"))], "is for translators"))
    add(C(cat, "apply inputs and --split", lambda e: ["apply", str(e.trun), str(e.pairs), "--split", "test", "--out", str(e.path("o"))], "not both"))
    add(C(cat, "apply a missing input", lambda e: ["apply", str(e.trun), str(e.scratch / "nope.png"), "--out", str(e.path("o"))], "does not exist"))
    add(C(cat, "apply --split to a PNG", lambda e: ["apply", str(e.trun), "--split", "test", "--out", str(e.path("x.png"))], "must be an .npz"))
    add(C(cat, "apply --label to a label-free translator", lambda e: ["apply", str(e.trun), str(e.pairs / "A"), "--label", "boot",
                                                                      "--out", str(e.path("o"))], "--label does not apply"))
    add(C(cat, "apply only unreadable files", lambda e: ["apply", str(e.trun), str(e.file("x.png", b"not a png")), "--out", str(e.path("o"))],
          "no readable images"))
    add(C(cat, "apply over its own inputs", lambda e: ["apply", str(e.trun), str(e.pairs / "A"), "--out", str(e.pairs / "A")],
          "would overwrite"))
    add(C(cat, "export into the run", lambda e: ["export", str(e.run), str(e.run)], "not into the run directory"))
    add(C(cat, "export into a non-empty folder", lambda e: ["export", str(e.run), str(e.data)], "is not empty"))
    add(C(cat, "eval --n-per-class 100000000", lambda e: ["eval", str(e.run), "--n-per-class", "100000000"], "--n-per-class must be"))
    add(C(cat, "eval --n-per-class 0", lambda e: ["eval", str(e.run), "--n-per-class", "0"], "--n-per-class must be"))
    add(C(cat, "eval --truncation 0", lambda e: ["eval", str(e.run), "--truncation", "0"], "--truncation must be"))
    add(C(cat, "eval --truncation nan", lambda e: ["eval", str(e.run), "--truncation", "nan"], "--truncation must be"))
    add(C(cat, "eval --truncation with --samples", lambda e: ["eval", "--samples", "x.npz", "--data", str(e.data),
                                                             "--truncation", "1.5"], "--truncation is for"))
    add(C(cat, "eval --max-pairs for a cgan", lambda e: ["eval", str(e.run), "--max-pairs", "5"], "--max-pairs is for translators"))
    add(C(cat, "eval --max-pairs 1", lambda e: ["eval", str(e.trun), "--max-pairs", "1"], "--max-pairs must be"))
    add(C(cat, "eval --seed -3", lambda e: ["eval", str(e.run), "--seed", "-3"], "--seed must be"))
    add(C(cat, "eval a run and --samples", lambda e: ["eval", str(e.run), "--samples", "x.npz"], "either a run"))
    add(C(cat, "eval --image-size 100000", lambda e: ["eval", "--samples", "x.npz", "--data", str(e.data), "--image-size", "100000"],
          "--image-size must be"))
    add(C(cat, "evaluator --epochs 0", lambda e: ["evaluator", "train", "--data", str(e.data), "--epochs", "0"], "--epochs must be"))
    add(C(cat, "evaluator --epochs 10**9", lambda e: ["evaluator", "train", "--data", str(e.data), "--epochs", "1000000000"], "--epochs must be"))
    add(C(cat, "evaluator --image-size 100000", lambda e: ["evaluator", "train", "--data", str(e.data), "--image-size", "100000"],
          "--image-size must be"))

    # --- checkpoints: schema, types, sizes before allocating, finite weights
    cat = "checkpoint"
    add(C(cat, "a text file", lambda e: ["sample", str(e.file("x.pt", "hello\n")), "--out", str(e.path("x.png"))], "not a checkpoint"))
    add(C(cat, "an empty file", lambda e: ["sample", str(e.file("x.pt", b"")), "--out", str(e.path("x.png"))], "not a checkpoint"))
    add(C(cat, "truncated", lambda e: ["sample", str(e.file("x.pt", e.checkpoint().read_bytes()[:5000])), "--out", str(e.path("x.png"))],
          "not a checkpoint"))
    add(C(cat, "pickle that runs code", lambda e: ["sample", str(_exploit(e)), "--out", str(e.path("x.png"))], "refusing to load"))
    add(C(cat, "a list", lambda e: ["sample", str(_saved(e, [1, 2])), "--out", str(e.path("x.png"))], "not a condgan checkpoint"))
    add(C(cat, "version '2' as text", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s.update(version="2"))), "--out", str(e.path("x.png"))],
          "version must be an integer"))
    add(C(cat, "version 99", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s.update(version=99))), "--out", str(e.path("x.png"))],
          "newer condgan"))
    add(C(cat, "no networks", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s.pop("networks"))), "--out", str(e.path("x.png"))],
          "lacks"))
    add(C(cat, "network class os.system", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s["networks"]["G"].update({"class": "os.system"}))),
                                                     "--out", str(e.path("x.png"))], "unknown network class"))
    add(C(cat, "network a billion channels wide", lambda e: ["sample", str(e.edited_checkpoint(
        lambda s: s["networks"]["G"]["arguments"].update(width=1_000_000_000))), "--out", str(e.path("x.png"))], "too large"))
    add(C(cat, "network argument of the wrong type", lambda e: ["sample", str(e.edited_checkpoint(
        lambda s: s["networks"]["G"]["arguments"].update(width="wide"))), "--out", str(e.path("x.png"))], "width must be"))
    add(C(cat, "unknown network argument", lambda e: ["sample", str(e.edited_checkpoint(
        lambda s: s["networks"]["G"]["arguments"].update(evil=1))), "--out", str(e.path("x.png"))], "unexpected argument"))
    add(C(cat, "weights all NaN", lambda e: ["sample", str(e.edited_checkpoint(nan_everywhere)), "--out", str(e.path("x.png"))], "NaN"))
    add(C(cat, "weights of the wrong shape", lambda e: ["sample", str(e.edited_checkpoint(
        lambda s: s["state"]["G_ema"].update({next(iter(s["state"]["G_ema"])): torch.zeros(3, 3)}))), "--out", str(e.path("x.png"))],
        "do not fit"))
    add(C(cat, "spec that is text", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s.update(spec="x"))), "--out", str(e.path("x.png"))],
          "spec"))
    add(C(cat, "task that is a list", lambda e: ["sample", str(e.edited_checkpoint(lambda s: s.update(task=["cgan"]))), "--out", str(e.path("x.png"))],
          "unknown task"))
    add(C(cat, "run with an empty checkpoints folder", lambda e: ["sample", str(_empty_run(e)), "--out", str(e.path("x.png"))], "no checkpoints"))
    add(C(cat, "resume a run whose config.yaml is broken", lambda e: ["train", "--resume", str(_broken_config_run(e)), "--steps", "1"],
          "not valid YAML"))

    # --- exports: manifest schema, paths that stay inside, finite weights, no author paths
    cat = "export"
    add(C(cat, "manifest not JSON", lambda e: ["sample", str(_with_manifest(e, "{not json")), "--out", str(e.path("x.png"))], "not readable JSON"))
    add(C(cat, "manifest a list", lambda e: ["sample", str(e.edited_manifest(lambda m: [m])), "--out", str(e.path("x.png"))], "JSON object"))
    add(C(cat, "manifest without components", lambda e: ["sample", str(e.edited_manifest(lambda m: m.pop("components") and None)),
                                                         "--out", str(e.path("x.png"))], "components"))
    add(C(cat, "component file outside the folder", lambda e: ["sample", str(e.edited_manifest(
        lambda m: m["components"]["generator"].update(file="../../run/config.yaml"))), "--out", str(e.path("x.png"))], "inside the export"))
    add(C(cat, "component file an absolute path", lambda e: ["sample", str(e.edited_manifest(
        lambda m: m["components"]["generator"].update(file="/etc/passwd"))), "--out", str(e.path("x.png"))], "inside the export"))
    add(C(cat, "weights file is text", lambda e: ["sample", str(_text_weights(e)), "--out", str(e.path("x.png"))], "not a readable safetensors"))
    add(C(cat, "weights of the wrong shape", lambda e: ["sample", str(_wrong_shape_export(e)), "--out", str(e.path("x.png"))], "do not fit"))
    add(C(cat, "weights all NaN", lambda e: ["sample", str(_nan_export(e)), "--out", str(e.path("x.png"))], "NaN"))
    add(C(cat, "version as text", lambda e: ["sample", str(e.edited_manifest(lambda m: m.update(version="2"))), "--out", str(e.path("x.png"))],
          "version"))
    add(C(cat, "manifest over 1 MB", lambda e: ["sample", str(_with_manifest(e, "{" + " " * 1_100_000 + "}")), "--out", str(e.path("x.png"))],
          "larger than"))
    add(C(cat, "manifest not UTF-8", lambda e: ["sample", str(_with_manifest(e, b"{\xff}")), "--out", str(e.path("x.png"))], "not readable JSON"))
    add(C(cat, "data name that walks out", lambda e: ["eval", str(e.edited_manifest(lambda m: m.update(data={"name": "../../../etc"}))),
                                                      "--n-per-class", "2"], "pass --data"))
    add(C(cat, "class names not strings", lambda e: ["sample", str(e.edited_manifest(
        lambda m: m["spec"]["label"].update(class_names=[1, 2, 3]))), "--out", str(e.path("x.png"))], "class names must be"))
    add(C(cat, "image size of a million", lambda e: ["sample", str(e.edited_manifest(
        lambda m: m["components"]["generator"]["arguments"].update(image_size=1_000_000))), "--out", str(e.path("x.png"))], "image_size must be"))
    add(C(cat, "unknown task", lambda e: ["sample", str(e.edited_manifest(lambda m: m.update(task="evil"))), "--out", str(e.path("x.png"))],
          "unknown task"))
    add(C(cat, "translator export without source field", lambda e: ["apply", str(e.edited_manifest(
        lambda m: m["spec"].pop("source") and None, "texport")), str(e.pairs / "A"), "--out", str(e.path("o"))], "source"))

    # --- images and data folders
    cat = "data"
    add(C(cat, "empty class folder", lambda e: e.tiny_train(data=_empty_class(e)), "is empty"))
    add(C(cat, "data folder is a file", lambda e: e.tiny_train(data=e.file("f.png", png_bytes())), "not a folder"))
    add(C(cat, "only unreadable images", lambda e: e.tiny_train(data=folder_with(e, {"a/x.png": b"junk", "b/y.png": b"junk"}, good=0)),
          "no readable images"))
    add(C(cat, "decompression bomb with bad_files=error", lambda e: e.tiny_train("--set", "data.bad_files=error",
                                                                                 data=folder_with(e, {"a/bomb.png": bomb_png()})), "decompression bomb"))
    add(C(cat, "zero-byte image with bad_files=error", lambda e: e.tiny_train("--set", "data.bad_files=error",
                                                                              data=folder_with(e, {"a/empty.png": b""})), "not a readable image"))
    add(C(cat, "class folders Boot and boot, --classes BOOT", lambda e: e.tiny_train("--classes", "BOOT,a",
                                                                                    data=folder_with(e, {"Boot/0.png": png_bytes(), "boot/0.png": png_bytes()})),
          "ambiguous"))
    add(C(cat, "IDX images truncated", lambda e: e.tiny_train(data=_idx_folder(e, images=struct.pack(">BBBB3I", 0, 0, 8, 3, 8, 8, 8) + bytes(10))),
          "truncated"))
    add(C(cat, "IDX labels fewer than images", lambda e: e.tiny_train(data=_idx_folder(e, labels_n=5)), "labels"))
    add(C(cat, "fashion-mnist --data-dir empty", lambda e: ["train", "--data", "fashion-mnist", "--data-dir", str(e.path("none")), "--steps", "1"],
          "not found"))
    add(C(cat, "pairs without B", lambda e: ["train", "--task", "translate", "--data", str(_only_a(e)), "--steps", "1", "--out", str(e.path("o"))],
          "pairs"))

    # --- NPZ files from elsewhere
    cat = "npz"
    add(C(cat, "not a zip", lambda e: ["eval", "--samples", str(e.file("s.npz", "hello")), "--data", str(e.data)], "not a readable .npz"))
    add(C(cat, "missing labels", lambda e: ["eval", "--samples", str(npz(e, images=np.zeros((2, 8, 8), np.uint8))), "--data", str(e.data)], "lacks"))
    add(C(cat, "object array (pickle)", lambda e: ["eval", "--samples", str(_pickled_npz(e)), "--data", str(e.data)], "not a readable .npz"))
    add(C(cat, "float images", lambda e: ["eval", "--samples", str(npz(e, **good_samples(images=np.zeros((4, 16, 16))))), "--data", str(e.data)],
          "must be uint8"))
    add(C(cat, "labels out of range", lambda e: ["eval", "--samples", str(npz(e, **good_samples(labels=np.array([0, 1, 9, 0])))),
                                                 "--data", str(e.data)], "out of range"))
    add(C(cat, "5-D images", lambda e: ["eval", "--samples", str(npz(e, **good_samples(images=np.zeros((4, 1, 16, 16, 1), np.uint8)))),
                                        "--data", str(e.data)], "shape"))
    add(C(cat, "array header claiming 10**12 pixels", lambda e: ["eval", "--samples", str(_huge_header_npz(e)), "--data", str(e.data)],
          "too large"))

    # --- text from data and files is made safe
    cat = "text"
    add(C(cat, "terminal escape in --label", lambda e: ["sample", str(e.run), "--label", "\x1b[2J\x1b[31mboot", "--out", str(e.path("x.png"))],
          "unknown class '\\x1b[2J"))
    add(C(cat, "newline in a config value", lambda e: e.config("data:\n  name: \"a\\nb\\x1b[31m\"\n"), "a\\nb\\x1b[31m"))
    add(C(cat, "class folder names with escapes and non-Latin script", lambda e: e.tiny_train(
        data=folder_with(e, {"\x1b[31mred/0.png": png_bytes(), "靴/0.png": png_bytes()}, good=2)), None,
        code=0, verify=_verify_safe_names))
    add(C(cat, "class folders Boot and boot, --classes boot,Boot", lambda e: e.tiny_train("--classes", "boot,Boot", data=_boot_boot(e)),
          None, code=0))

    # --- silently mishandled once, honoured now
    cat = "honoured"
    add(C(cat, "sample --label boot to an NPZ writes only boots", lambda e: ["sample", str(e.run), "--label", "boot", "--n-per-class", "3",
                                                                             "--out", str(e.scratch / "boots.npz")], None, code=0,
          verify=lambda e: _check_npz_labels(e.scratch / "boots.npz", {"boot"}, 3)))
    add(C(cat, "EXIF orientation applied", lambda e: _api(lambda: _verify_exif(e, _exif_rotated(e))), None, code=0))

    # --- similarity and "more like this one": compare, search, CSVs of pairs, exemplar runs
    cat = "similarity"
    png = lambda e: e.file("a.png", png_bytes((16, 16)))  # noqa: E731
    sim = lambda e, *extra, **kw: e.tiny_train("--task", "similarity", *extra, "--set", "similarity.per_class=2", **kw)  # noqa: E731
    add(C(cat, "compare a non-image", lambda e: ["compare", str(e.srun), str(png(e)), str(e.file("notes.png", "just text"))],
          "not a readable image"))
    add(C(cat, "compare a missing file", lambda e: ["compare", str(e.srun), str(png(e)), str(e.scratch / "none.png")], "does not exist"))
    add(C(cat, "compare a folder", lambda e: ["compare", str(e.srun), str(png(e)), str(e.scratch)], "is not a file"))
    add(C(cat, "compare with a cgan run", lambda e: ["compare", str(e.run), str(png(e)), str(png(e))], "need a run of --task similarity"))
    add(C(cat, "search an empty folder", lambda e: ["search", str(e.srun), str(png(e)), "--in", str(e.path("empty").parent),
                                                    "--out", str(e.path("s.png"))], "no images to search"))
    add(C(cat, "search a folder of non-images", lambda e: ["search", str(e.srun), str(png(e)), "--in",
                                                          str(e.file("x.png", "text").parent), "--out", str(e.path("s.png"))],
          "could be read"))
    add(C(cat, "search --in a file", lambda e: ["search", str(e.srun), str(png(e)), "--in", str(png(e)), "--out", str(e.path("s.png"))],
          "is a file"))
    add(C(cat, "search --k 0", lambda e: ["search", str(e.srun), str(png(e)), "--in", str(e.data), "--k", "0"], "--k must be between"))
    add(C(cat, "search --out .txt", lambda e: ["search", str(e.srun), str(png(e)), "--out", str(e.path("s.txt"))], "--out must end in"))
    add(C(cat, "CSV naming missing files", lambda e: [*sim(e, "--pairs", str(
        e.file("p.csv", "image_a,image_b,similar\nnone1.png,none2.png,1\n")))], "line 2: image 'none1.png' does not exist"))
    add(C(cat, "CSV without a header", lambda e: [*sim(e, "--pairs", str(
        e.file("p.csv", "a.png,b.png,1\n")))], "first line must be the header"))
    add(C(cat, "CSV similar=maybe", lambda e: [*sim(e, "--pairs", str(_csv_with(e, "maybe")))],
          "'similar' must be"))
    add(C(cat, "CSV that is binary", lambda e: [*sim(e, "--pairs", str(e.file("p.csv", png_bytes())))],
          "not UTF-8"))
    add(C(cat, "selfsup with a CSV", lambda e: [*sim(e, "--recipe", "selfsup", "--pairs", "x.csv")],
          "selfsup uses no labels"))
    add(C(cat, "triplet on a folder without classes", lambda e: [*sim(e, data=_flat_folder(e))],
          "use similarity.recipe=selfsup"))
    add(C(cat, "exemplar without --embedder", lambda e: [*e.tiny_train("--task", "exemplar")], "needs an embedding network"))
    add(C(cat, "exemplar --embedder a cgan run", lambda e: [*e.tiny_train("--task", "exemplar", "--embedder", str(e.run))],
          "must be a --task similarity run"))
    add(C(cat, "exemplar --embedder missing", lambda e: [*e.tiny_train("--task", "exemplar", "--embedder", str(e.scratch / "no"))],
          "does not exist"))
    add(C(cat, "similarity.mining typo", lambda e: [*sim(e, "--set", "similarity.mining=hardest")],
          "similarity.mining must be one of"))
    add(C(cat, "similarity keys on a cgan", lambda e: [*e.tiny_train("--set", "similarity.recipe=siamese")],
          "similarity section is for --task similarity"))
    add(C(cat, "similarity.augment typo", lambda e: [*sim(e, "--set", "similarity.augment=[mirror]")],
          "similarity.augment items must be among flip, shift, crop, colour"))
    add(C(cat, "neighbour_views above 1", lambda e: [*sim(e, "--recipe", "selfsup", "--set", "similarity.neighbour_views=2")],
          "similarity.neighbour_views must be a share between 0 and 1"))
    add(C(cat, "neighbour_views on a labelled recipe", lambda e: [*sim(e, "--set", "similarity.neighbour_views=0.5")],
          "similarity.neighbour_views is for recipe selfsup"))
    add(C(cat, "search cache bound not a number", lambda e: _api(lambda: _search_cache_limits("CONDGAN_SEARCH_CACHE_MB", "lots")),
          "CONDGAN_SEARCH_CACHE_MB must be a number"))
    add(C(cat, "sample an embedder", lambda e: ["sample", str(e.srun), "--out", str(e.path("x.png"))], "makes no images"))
    add(C(cat, "sample --like on a cgan", lambda e: ["sample", str(e.run), "--like", str(png(e)), "--out", str(e.path("x.png"))],
          "--like is for exemplar models"))
    add(C(cat, "eval --exemplars on an embedder", lambda e: ["eval", str(e.srun), "--exemplars", "5"], "--exemplars is for exemplar models"))
    add(C(cat, "embed a string", lambda e: _api(lambda: _load(e.srun).embed("a.png")), "cannot embed a str"))
    add(C(cat, "similarity of 2 and 3 images", lambda e: _api(lambda: _load(e.srun).similarity(
        np.zeros((2, 16, 16), np.uint8), np.zeros((3, 16, 16), np.uint8))), "cannot pair 2 images with 3"))
    add(C(cat, "search k=0", lambda e: _api(lambda: _load(e.srun).search(np.zeros((16, 16), np.uint8), k=0)), "k must be"))

    # --- the Python API
    cat = "python api"
    add(C(cat, "load a text file", lambda e: _api(lambda: _load(e.file("x.pt", "hi"))), "not a checkpoint"))
    add(C(cat, "sample an unknown class", lambda e: _api(lambda: _load(e.run).sample("loafer")), "unknown class"))
    add(C(cat, "sample n=0", lambda e: _api(lambda: _load(e.run).sample("boot", n=0)), "n must be"))
    add(C(cat, "sample seed as text", lambda e: _api(lambda: _load(e.run).sample("boot", seed="x")), "seed must be"))
    add(C(cat, "sample truncation=0", lambda e: _api(lambda: _load(e.run).sample("boot", truncation=0)),
          "truncation must be"))
    add(C(cat, "sample truncation=nan", lambda e: _api(lambda: _load(e.run).sample("boot", truncation=float("nan"))),
          "truncation must be"))
    add(C(cat, "sample output_type jpeg", lambda e: _api(lambda: _load(e.run).sample("boot", output_type="jpeg")), "output_type must be"))
    add(C(cat, "translate float64 array", lambda e: _api(lambda: _load(e.trun).translate(np.zeros((16, 16)))), "must be uint8"))
    add(C(cat, "translate an empty list", lambda e: _api(lambda: _load(e.trun).translate([])), "no images"))
    add(C(cat, "translate a string", lambda e: _api(lambda: _load(e.trun).translate("edges.png")), "cannot translate a str"))
    add(C(cat, "translate 10000 x 10000 pixels", lambda e: _api(lambda: _load(e.trun).translate(torch.zeros(1, 1, 10_000, 10_000))),
          "too large"))
    add(C(cat, "load a NaN export", lambda e: _api(lambda: _load(_nan_export(e))), "NaN"))
    add(C(cat, "load with device tpu", lambda e: _api(lambda: _load(e.run, device="tpu")), "device must be"))
    return out


def _csv_with(env: Env, similar: str) -> Path:
    folder = env.path("csv").parent
    (folder / "a.png").write_bytes(png_bytes((16, 16)))
    (folder / "p.csv").write_text(f"image_a,image_b,similar\na.png,a.png,{similar}\n")
    return folder / "p.csv"


def _flat_folder(env: Env) -> Path:
    folder = env.path("flat").parent
    for i in range(3):
        (folder / f"{i}.png").write_bytes(png_bytes((16, 16)))
    return folder


def _exploit(env: Env) -> Path:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    return _saved(env, {"payload": Exploit()})


def _saved(env: Env, obj) -> Path:
    p = env.path("x.pt")
    torch.save(obj, p)
    return p


def _empty_run(env: Env) -> Path:
    run = env.path("run")
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: cgan\n")
    return run


def _broken_config_run(env: Env) -> Path:
    import shutil

    run = env.path("run")
    shutil.copytree(env.run, run)
    (run / "config.yaml").write_text("train: [1, 2\n")
    return run


def _with_manifest(env: Env, content: str | bytes) -> Path:
    folder = env.copy_export()
    (folder / "condgan.json").write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def _text_weights(env: Env) -> Path:
    folder = env.copy_export()
    (folder / "generator.safetensors").write_text("not weights")
    return folder


def _empty_class(env: Env) -> Path:
    root = folder_with(env, {})
    (root / "c").mkdir()
    return root


def _only_a(env: Env) -> Path:
    root = env.path("pairs")
    (root / "A").mkdir(parents=True)
    Image.new("L", (8, 8)).save(root / "A" / "0.png")
    return root


def _boot_boot(env: Env) -> Path:
    root = env.path("data")
    for c, value in (("Boot", 30), ("boot", 220)):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16), value, np.uint8)).save(root / c / f"{i}.png")
    return root


def _pickled_npz(env: Env) -> Path:
    p = env.path("s.npz")
    np.savez(p, images=np.array([object()], dtype=object), labels=np.zeros(1), class_names=np.array(["a", "b"]))
    return p


def _huge_header_npz(env: Env) -> Path:
    """An .npz whose 'images' member declares 10**12 uint8 pixels but holds a few bytes."""
    import zipfile

    p = env.path("s.npz")
    header = {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 1000, 1000)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("images.npy", buf.getvalue() + b"\0" * 64)
        for k, v in (("labels", np.zeros(2, np.int64)), ("class_names", np.array(["a", "b"]))):
            b = io.BytesIO()
            np.save(b, v)
            z.writestr(f"{k}.npy", b.getvalue())
    return p


def _check_npz_labels(path: Path, names: set[str], per_class: int) -> None:
    with np.load(path) as f:
        class_names = [str(n) for n in f["class_names"]]
        got = {class_names[i] for i in f["labels"]}
        assert got == names, f"NPZ holds classes {got}, asked for {names}"
        assert len(f["labels"]) == per_class * len(names), f"NPZ holds {len(f['labels'])} images"


def _verify_safe_names(env: Env) -> None:
    """Training on folders named with an escape code and a non-Latin name printed nothing raw."""
    # attempt() keeps what was printed in env.last_output
    assert "\x1b" not in env.last_output, "an escape code reached the terminal"


def _search_cache_limits(name: str, value: str):
    """condgan search's cache bound read with one environment variable set (restored afterwards)."""
    import os

    from condgan.search import cache

    before = os.environ.get(name)
    os.environ[name] = value
    try:
        return cache.limits()
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def _load(path, device="cpu"):
    import condgan

    return condgan.load(path, device=device)


def _api(fn):
    """Mark a Python-API case: attempt() calls fn instead of the CLI."""
    fn.api = True
    return fn


# ----- running a case ----------------------------------------------------------------------------------------
def attempt(case: Case, env: Env) -> Outcome:
    from condgan.cli import main
    from condgan.errors import UserError

    before = env.snapshot(case.protect)
    action = case.action(env)
    out, err = io.StringIO(), io.StringIO()
    code, escaped = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if callable(action) and getattr(action, "api", False):
                try:
                    action()
                    code = 0
                except UserError as e:
                    print(f"condgan: error: {e}", file=err)
                    code = e.exit_code
            else:
                code = main([str(a) for a in action])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # anything else escaped the boundary
            escaped = "".join(traceback.format_exception_only(type(e), e)).strip()
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    env.last_output = out.getvalue() + err.getvalue()
    after = env.snapshot(case.protect)
    if before != after:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return Outcome("damaged", code, lines, f"changed: {changed[:3]}")
    if escaped is not None or any("Traceback" in ln for ln in lines):
        return Outcome("traceback", code, lines, escaped or lines[-1])
    if case.expect is None:
        try:
            if code != case.code:
                raise AssertionError(f"exit {code}, expected {case.code}; stderr {lines[-2:]}")
            if case.verify:
                case.verify(env)
        except AssertionError as e:
            return Outcome("wrong", code, lines, str(e))
        return Outcome("honoured", code, lines)
    if code == 0:
        return Outcome("silent", code, lines)
    errors = [ln for ln in lines if ln.startswith("condgan: error:")]
    if len(errors) != 1 or any(len(ln) > MAX_LINE or "\x1b" in ln for ln in lines):
        return Outcome("noisy", code, lines, f"{len(lines)} lines, {sum(map(len, lines))} characters")
    if code != case.code or case.expect.lower() not in errors[0].lower():
        return Outcome("vague", code, lines, errors[0][:MAX_LINE])
    return Outcome("clear", code, lines)
