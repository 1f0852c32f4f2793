"""One device resolver for every command: auto is cuda, then mps, then cpu; each command says its device once."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import tiny_overrides

import condgan
from condgan.cli import build_parser, main
from condgan.config import load_config
from condgan.errors import UserError
from condgan.training import train
from condgan.untrusted import device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def expected_auto() -> str:
    return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"


@pytest.fixture
def run_dir(shoes_dir, tmp_path):
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)
    return tmp_path / "run"


def test_auto_is_cuda_then_mps_then_cpu():
    assert device("auto").type == expected_auto()
    assert device(torch.device("cpu")) == torch.device("cpu")


@no_gpu
def test_explicit_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(UserError, match="no CUDA GPU is available here; use cpu"):
        device("cuda", "--device")


@pytest.mark.parametrize("command", ["sample", "apply", "compare", "search", "serve", "eval"])
def test_every_command_defaults_to_auto(command):
    extra = {"compare": ["a.png", "b.png"], "search": ["q.png"], "apply": ["--out", "x"]}.get(command, [])
    args = build_parser().parse_args([command, "RUN", *extra])
    assert (args.device or "auto") == "auto"
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert "auto (default): cuda, then mps, then cpu" in " ".join(text.split())


def test_load_defaults_to_auto(run_dir):
    assert condgan.load(run_dir).device.type == expected_auto()
    # on a machine without a GPU auto is cpu, so the default itself is checked too
    assert inspect.signature(condgan.load).parameters["device"].default == "auto"


def test_the_device_is_said_once(run_dir, tmp_path, capsys):
    assert main(["sample", str(run_dir), "--n", "2", "--out", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("condgan: device")] == [f"condgan: device {expected_auto()}"]


def test_train_says_its_device_once_and_not_when_quiet(shoes_dir, tmp_path, capsys):
    sets = [a for kv in tiny_overrides(shoes_dir, steps=1) for a in ("--set", kv)]
    assert main(["train", "--out", str(tmp_path / "a"), "--device", "cpu", *sets]) == 0
    assert capsys.readouterr().err.count("condgan: device cpu") == 1
    assert main(["train", "--out", str(tmp_path / "b"), "--quiet", *sets]) == 0
    assert "condgan: device" not in capsys.readouterr().err


@no_gpu
def test_eval_takes_device(run_dir, capsys):
    assert main(["eval", str(run_dir), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["condgan: error: --device cuda: no CUDA GPU is available here; use cpu"]

