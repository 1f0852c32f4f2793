"""Format-2 runs and exports of every task, written before tasks became registered units, keep working.

tests/fixtures/v2 holds one run and one export of each task written by condgan 4660058 (see its
README), and golden_samples.pt: what that code sampled from them. Today's code must load them,
sample the same numbers (to float32 rounding: another CPU's kernels differ in the last bit), resume them and
evaluate them.
"""

import shutil
from pathlib import Path

import pytest
import torch

import condgan
from condgan.cli import main
from conftest import needs_fashion

V2 = Path(__file__).parent / "fixtures" / "v2"
ROOT = Path(__file__).parent.parent
TASKS = ("cgan", "translate", "two-stage", "similarity", "exemplar")


def outputs(path: Path) -> dict[str, torch.Tensor]:
    """What the golden file holds, computed by today's code from `path` (a run or an export of each task)."""
    torch.set_num_threads(1)
    out = {}
    name = path.name.removeprefix("export-")
    model = condgan.load(path)
    assert model.task == name
    if name == "cgan":
        out["cgan"] = model.sample(["sandal", "ankle-boot"], n=2, seed=0)
    elif name == "translate":
        pairs = condgan.load(V2 / "translate").pairs("test")
        out["translate"] = model.translate(pairs.sources[:3], seed=0, labels=[0, 1, 0])
    elif name == "two-stage":
        out["two-stage"], out["two-stage-mask"] = model.sample(label_a="sandal", label_b=[0, 1], n=2, seed=0,
                                                               return_intermediate=True)
    else:
        x = condgan.load(V2 / "translate").pairs("test").targets[:4]
        out[name] = model.embed(x) if name == "similarity" else model.sample(like=x[:2], n=2, seed=0)
    return out


@needs_fashion  # the translator's test pairs are derived from Fashion-MNIST
@pytest.mark.parametrize("name", [*TASKS, *(f"export-{t}" for t in TASKS)])
def test_v2_runs_and_exports_sample_what_they_sampled_before(name):
    golden = torch.load(V2 / "golden_samples.pt", weights_only=True)
    for key, value in outputs(V2 / name).items():  # the last float32 bit depends on the CPU's kernels (Intel vs AMD)
        torch.testing.assert_close(value, golden[key], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{name}: {key} differs from what condgan 4660058 sampled: {m}")


@needs_fashion
@pytest.mark.parametrize("name", TASKS)
def test_v2_runs_resume(tmp_path, monkeypatch, name):
    monkeypatch.chdir(ROOT)  # the exemplar run names its embedder relative to the repository root
    run = tmp_path / name
    shutil.copytree(V2 / name, run)
    assert main(["train", "--resume", str(run), "--steps", "1", "--quiet"]) == 0
    steps = {"two-stage": 3}.get(name, 5)  # a pipeline's extra step goes to its last stage, joint
    last = run / "joint" if name == "two-stage" else run
    assert (last / "checkpoints" / f"step_{steps:08d}.pt").is_file()
    assert condgan.load(run).task == name
    if name == "similarity":  # written before similarity.augment: it resumed on its images as they are, as it trained
        from condgan.config import load_config

        assert load_config(run / "config.yaml", of_run=True).similarity.augment == []


@needs_fashion
@pytest.mark.parametrize("name,flags", [
    ("cgan", ["--n-per-class", "4"]),
    ("translate", ["--max-pairs", "16"]),
    ("two-stage", ["--n-per-pair", "2"]),
    ("similarity", []),
    ("exemplar", ["--exemplars", "4"]),
])
def test_v2_runs_evaluate(tmp_path, monkeypatch, name, flags):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "eval"
    assert main(["eval", str(V2 / name), "--out", str(out), "--quiet", *flags]) == 0
    assert (out / "report.md").is_file() and (out / "report.json").is_file()
