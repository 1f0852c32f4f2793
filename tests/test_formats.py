"""Checkpoint and export formats: runs and exports written by older condgan keep working.

tests/fixtures/v1 holds a run and an export written by condgan 5e76f80 (format 1,
before named fields); see its README for the commands that made them.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

import condgan
from condgan.errors import CheckpointError
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import needs_fashion, tiny_overrides

V1 = Path(__file__).parent / "fixtures" / "v1"


def test_v1_runs_and_exports_sample():
    run, export = condgan.load(V1 / "run-resnet"), condgan.load(V1 / "export-resnet")
    assert run.task == "cgan" and run.class_names == ["sandal", "sneaker", "ankle-boot"]
    x = run.sample(["sandal", "ankle-boot"], n=3, seed=0)
    assert x.shape == (6, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, export.sample(["sandal", "ankle-boot"], n=3, seed=0)), "the export was made from this run"
    mlp = condgan.load(V1 / "run-mlp")
    assert mlp.sample("sneaker", n=2).shape == (2, 1, 28, 28)


def test_v1_checkpoint_is_upgraded_to_the_current_format():
    state = ckpt.safe_load(V1 / "run-mlp" / "checkpoints" / "step_00000004.pt")
    assert state["version"] == ckpt.VERSION and state["task"] == "cgan"
    assert state["spec"]["label"]["class_names"] == ["sandal", "sneaker"]
    assert state["networks"]["G"]["class"] == "MLPGenerator"
    resnet = ckpt.safe_load(V1 / "run-resnet" / "checkpoints" / "step_00000006.pt")
    assert resnet["networks"]["D"]["arguments"]["class_head"] is True  # aux_weight was on by default


@needs_fashion
def test_v1_run_resumes(tmp_path):
    for name, steps in (("run-resnet", 6), ("run-mlp", 4)):
        run = tmp_path / name
        shutil.copytree(V1 / name, run)
        summary = train(out=run, resume=True, stop_overrides={"steps": 2}, quiet=True)
        assert summary["steps"] == steps + 2
        logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert logged[-2:] == [steps + 1, steps + 2]
        assert ckpt.safe_load(ckpt.list_checkpoints(run / "checkpoints")[-1])["version"] == ckpt.VERSION


def cpu_vendor() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("vendor_id")), "unknown")


@needs_fashion
@pytest.mark.skipif(cpu_vendor() != "AuthenticAMD", reason="bit-exact against weights an AMD CPU trained: other CPUs' "
                    "kernels round differently, and 6 Adam steps carry that to 1e-3 (an Intel Xeon, 2026-12-07)")
def test_training_arithmetic_is_unchanged_since_format_1(tmp_path):
    """The same config, seed and steps give bit-identical weights to those the format-1 code wrote."""
    from condgan.config import load_config

    torch.set_num_threads(1)  # the fixture was written with one thread
    config = load_config(V1 / "run-resnet" / "config.yaml", of_run=True)  # the recipe it was trained with
    config.train.precision = "fp32"  # format 1 had no bf16 (the default 'auto' picks it on CPUs that have it)
    train(config, tmp_path / "again", quiet=True)
    old = ckpt.safe_load(V1 / "run-resnet" / "checkpoints" / "step_00000006.pt")["state"]
    new = ckpt.safe_load(tmp_path / "again" / "checkpoints" / "step_00000006.pt")["state"]
    for net in ("G", "D", "G_ema"):
        assert old[net].keys() == new[net].keys()
        for key in old[net]:
            assert torch.equal(old[net][key], new[net][key]), f"{net}.{key} differs from the format-1 run"


@needs_fashion
def test_v1_run_evaluates(tmp_path):
    from condgan.eval import evaluate_run

    report = evaluate_run(V1 / "run-resnet", n_per_class=4, out_dir=tmp_path / "eval", progress=False)
    assert report["classes"] == ["sandal", "sneaker", "ankle-boot"]
    assert (tmp_path / "eval" / "report.md").is_file()
    assert 0 <= report["model"]["conditioning_accuracy"] <= 1


def test_export_is_a_manifest_and_one_safetensors_file_per_component(shoes_dir, tmp_path):
    from condgan.config import load_config

    train(load_config(None, tiny_overrides(shoes_dir)), tmp_path / "run", quiet=True)
    gen = condgan.load(tmp_path / "run")
    folder = gen.save_pretrained(tmp_path / "export")
    manifest = json.loads((folder / "condgan.json").read_text())
    assert manifest["task"] == "cgan" and manifest["spec"]["label"]["class_names"] == ["boot", "sandal", "sneaker"]
    assert manifest["components"]["generator"]["class"] == "ResNetGenerator"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "condgan.json", "config.yaml", "generator.safetensors",
                                                        "sample.png"]  # the model card and what it shows
    assert torch.equal(condgan.load(folder).sample("boot", n=2, seed=3), gen.sample("boot", n=2, seed=3))
    # an export written inside the run directory does not shadow the run's newer checkpoints
    config = (tmp_path / "run" / "config.yaml").read_text()
    gen.save_pretrained(tmp_path / "run")
    assert condgan.load(tmp_path / "run").task == "cgan"
    assert (tmp_path / "run" / "config.yaml").read_text() == config and not (tmp_path / "run" / "README.md").exists()
    assert ckpt.read_model(tmp_path / "run").source.endswith(".pt")


@pytest.mark.parametrize("content,message", [
    ("[1, 2]", "must hold a JSON object"),
    ('{"format": "condgan-export", "version": 2, "task": "cgan"}', "lacks its components"),
    ('{"format": "something-else"}', "not a condgan export"),
    ('{"format": "condgan-export", "version": 99}', "export version 99"),
    ("\xff\xfe not json", "not readable JSON"),
])
def test_malformed_export_manifests_are_refused_clearly(tmp_path, content, message):
    (tmp_path / "condgan.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(CheckpointError, match=message):
        condgan.load(tmp_path)


def test_unknown_network_class_in_a_manifest_is_refused(tmp_path):
    shutil.copytree(V1 / "export-resnet", tmp_path / "x")
    gen = condgan.load(tmp_path / "x")
    folder = gen.save_pretrained(tmp_path / "v2")
    manifest = json.loads((folder / "condgan.json").read_text())
    manifest["components"]["generator"]["class"] = "subprocess.Popen"
    (folder / "condgan.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="unknown network class"):
        condgan.load(folder)


@pytest.mark.parametrize("version", ["2", 99, None])
def test_bad_checkpoint_versions_are_refused_clearly(tmp_path, version):
    path = tmp_path / "step_00000001.pt"
    torch.save({"format": ckpt.FORMAT, "version": version}, path)
    with pytest.raises(CheckpointError):
        ckpt.safe_load(path)
