"""Packaging: the wheel works on its own, away from the source tree, and a missing optional extra names its install.

The wheel is built from a copy of the project (the source tree stays clean) and installed without dependencies
into a fresh venv that borrows this environment's packages (torch is not reinstalled) through a .pth file: a venv
made by a venv's python is based on the base interpreter, so --system-site-packages would not see torch. A .pth
line adds a folder, not the .pth files in it, so this environment's editable condgan stays out of sight."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import tiny_overrides, write_folders

from condgan import __version__
from condgan.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
missing = [m for m in ("pip", "venv", "setuptools") if importlib.util.find_spec(m) is None]

CHECK = """
import importlib.resources, sys
import condgan
from condgan.eval.evaluator import SHIPPED, load_evaluator
print(condgan.__file__)
ev = load_evaluator(SHIPPED / "fashion-mnist-28px-1ch")
assert ev.info["dataset"], ev.info
files = importlib.resources.files("condgan")
assert (files / "py.typed").is_file() and (files / "serve" / "static" / "index.html").is_file()
assert not any(p.startswith(sys.argv[1]) for p in sys.path if p), "the source tree is on sys.path"
"""


def build_and_install(tmp_path: Path) -> Path:
    """A wheel of a copy of the project, installed into a fresh venv; returns the venv's bin folder."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, copy / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                    str(copy)], check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "dist").glob("condgan-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co, after the venv's own
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "--force-reinstall",
                    str(wheel)], check=True, cwd=tmp_path, capture_output=True)
    return venv / "bin"


@pytest.mark.skipif(bool(missing), reason=f"building and installing a wheel needs {', '.join(missing)}")
@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout below is POSIX's")
def test_the_installed_wheel_trains_samples_and_finds_its_data(tmp_path):
    bin_dir = build_and_install(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", CONDGAN_CACHE=str(tmp_path / "cache"))

    def run(*argv) -> str:
        proc = subprocess.run([str(a) for a in argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    installed = run(bin_dir / "python", "-c", CHECK, ROOT / "src").strip()  # (the borrowed venv may lie under ROOT)
    assert Path(installed).is_relative_to(tmp_path / "venv"), f"imported {installed}, not the installed wheel"
    assert run(bin_dir / "condgan", "--version").strip() == f"condgan {__version__}"
    data = write_folders(tmp_path / "shoes")
    sets = [a for kv in tiny_overrides(data, steps=5) for a in ("--set", kv)]
    run(bin_dir / "condgan", "train", "--out", tmp_path / "run", "--quiet", *sets)
    run(bin_dir / "condgan", "sample", tmp_path / "run", "--n", "2", "--out", tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_missing_extra_names_its_install(monkeypatch):
    from condgan.tasks.similarity.config import SimilarityConfig
    from condgan.tasks.similarity.metric import make_loss

    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)  # as if not installed
    with pytest.raises(UserError, match=r"^the similarity task needs the optional extra pytorch-metric-"
                                        r"learning: pip install 'condgan\[similarity\]'$"):
        make_loss("triplet", SimilarityConfig())
    assert make_loss("selfsup", SimilarityConfig())[1] is None  # self-supervised training does without it
