"""The bad-input table: each case gets one clear line on stderr and exit code 2."""

import os
import subprocess
import sys

import pytest
from pathlib import Path
import torch
from PIL import Image

from condgan.cli import main
from condgan.config import load_config
from condgan.training import train
from conftest import tiny_overrides


@pytest.fixture
def run_dir(shoes_dir, tmp_path):
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)
    return tmp_path / "run"


def tiny_train_args(data, out):
    return ["train", "--data", str(data), "--out", str(out), "--steps", "1", "--quiet",
            "--set", "data.image_size=16", "--set", "model.g_width=4", "--set", "model.d_width=4", "--set", "train.batch_size=4"]


def cases(shoes_dir, tmp_path, run_dir):
    """(name, argv, setup, expected message fragment)."""
    empty_class = tmp_path / "empty_class"
    (empty_class / "a").mkdir(parents=True)
    (empty_class / "b").mkdir()
    Image.new("L", (8, 8)).save(empty_class / "a" / "x.png")
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(single / "only" / "x.png")
    junk = tmp_path / "junk"
    for c in ("a", "b"):
        (junk / c).mkdir(parents=True)
        (junk / c / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text("train:\n  batch_size: lots\n")
    evil = tmp_path / "evil.pt"

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"payload": Exploit()}, evil)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new files even to root
        readonly = Path("/sys")
    return [
        ("missing data folder", tiny_train_args(tmp_path / "nope", tmp_path / "o1"), "does not exist"),
        ("empty class folder", tiny_train_args(empty_class, tmp_path / "o2"), "is empty"),
        ("single class", tiny_train_args(single, tmp_path / "o3"), "single class"),
        ("only unreadable images", tiny_train_args(junk, tmp_path / "o4"), "no readable images"),
        ("unknown class (train)", tiny_train_args(shoes_dir, tmp_path / "o5") + ["--classes", "boot,loafer"], "unknown class 'loafer'"),
        ("unknown config key", tiny_train_args(shoes_dir, tmp_path / "o6") + ["--set", "train.lrg=1"], "unknown config key 'train.lrg'"),
        ("config value of wrong type", ["train", "--config", str(wrong_type), "--steps", "1"], "train.batch_size must be int"),
        ("unknown class (sample)", ["sample", str(run_dir), "--label", "loafer", "--out", str(tmp_path / "x.png")], "unknown class 'loafer'"),
        ("label out of range", ["sample", str(run_dir), "--label", "7", "--out", str(tmp_path / "x.png")], "out of range"),
        ("negative --n", ["sample", str(run_dir), "--n", "-3", "--out", str(tmp_path / "x.png")], "between 1 and"),
        ("absurd --n", ["sample", str(run_dir), "--n-per-class", "10000000000", "--out", str(tmp_path / "x.npz")], "between 1 and"),
        ("read-only output folder", ["sample", str(run_dir), "--out", str(readonly / "x.png")], "cannot write"),
        ("malicious checkpoint", ["sample", str(evil), "--out", str(tmp_path / "x.png")], "refusing to load"),
        ("not a run", ["sample", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")], "does not exist"),
        ("resume a non-run", ["train", "--resume", str(tmp_path)], "not a condgan run directory"),
    ]


def test_bad_input_table(shoes_dir, tmp_path, run_dir, capsys):
    failures = []
    for name, argv, fragment in cases(shoes_dir, tmp_path, run_dir):
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        errors = [line for line in err if line.startswith("condgan: error:")]
        if code != 2 or len(errors) != 1 or fragment not in errors[0]:
            failures.append(f"{name}: exit {code}, stderr {err[-3:]}")
    assert not failures, "\n".join(failures)


def test_no_traceback_from_the_real_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "condgan", "train", "--data", str(tmp_path / "missing"), "--steps", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("condgan: error:") and len(proc.stderr.strip().splitlines()) == 1


def test_help_explains_every_flag():
    from condgan.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, sub in subparsers.items() for action in sub._actions
               if not action.help or not action.help.strip()]
    assert not missing, f"flags without help: {missing}"
    proc = subprocess.run([sys.executable, "-m", "condgan", "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--budget-minutes" in proc.stdout


def test_set_takes_several_overrides_at_once_and_repeats():
    from condgan.cli import build_parser

    args = build_parser().parse_args(["train", "--set", "train.lr_g=1e-4", "train.batch_size=32",
                                      "--set", "model.z_dim=16", "--steps", "1"])
    assert args.set == ["train.lr_g=1e-4", "train.batch_size=32", "model.z_dim=16"] and args.steps == 1
