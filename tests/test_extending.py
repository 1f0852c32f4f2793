"""A task defined here, outside condgan, goes through everything condgan does with zero edits under src/condgan.

The task is the one docs/extending.md walks through: a denoiser, a translator whose source is its own
target with noise added. It trains, resumes, samples, evaluates, exports, loads and is listed by
`condgan serve`, through the command line and the Python API.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import condgan
from condgan import registry
from condgan.cli import main
from condgan.config import Config, DataConfig
from condgan.errors import UserError
from condgan.pipelines import Translator
from condgan.registry import Controls, register
from condgan.tasks.translate import TranslationTask
from condgan.tasks.cgan import ClassConditionalTask
from condgan.visual import save_sheet
from serve_helpers import request, running

NOISE = 0.5


class Denoiser(Translator):
    """What condgan.load returns for a denoise run: `translate(noisy)` gives the clean image."""

    task = "denoise"

    def denoise(self, images, seed: int = 0):
        return self.translate(images, seed=seed)


@register
class DenoiseTask(TranslationTask):
    name = "denoise"
    title = "denoising (a noisy image in, the clean image out)"
    models = "denoisers"
    pipeline = Denoiser
    flags = {}
    controls = Controls(title="denoiser", conditions=lambda p: ["source"], generate=lambda p, v, n, seed:
                        p.denoise(p.as_sources(v["source"]).expand(n, -1, -1, -1), seed=seed))

    @staticmethod
    def load_data(config, split="train"):
        """The images of any class dataset, each with a noisy copy (the same noise every time: seeded by split)."""
        fields, spec = ClassConditionalTask.load_data(config, split)
        clean = fields["image"]
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        noisy = (clean.float() + NOISE * 255 * torch.randn(clean.shape, generator=g)).clamp(0, 255).to(torch.uint8)
        spec = type(spec)({"image": spec["image"], "source": spec["image"]})
        return {"image": clean, "source": noisy}, spec

    @classmethod
    def test_pairs(cls, model):
        config = Config(task=cls.name, data=DataConfig(**{k: v for k, v in model.data.items() if k in ("name", "data_dir")}))
        fields, _ = cls.load_data(config, "test")
        return fields["source"], fields["image"]

    @classmethod
    def sample(cls, model, args, out: Path) -> int:
        noisy, clean = cls.test_pairs(model)
        n = min(args.n or 4, len(noisy))
        outputs = model.denoise(noisy[:n], seed=args.seed)
        save_sheet([noisy[:n], outputs, clean[:n]], ["noisy", "denoised", "clean"], out)
        print(f"wrote {out}")
        return 0

    @classmethod
    def evaluate(cls, model, args, out: Path) -> int:
        noisy, clean = cls.test_pairs(model)
        target = clean.float() / 127.5 - 1
        l1 = {"model": float((model.denoise(noisy) - target).abs().mean()),
              "noisy input": float((noisy.float() / 127.5 - 1 - target).abs().mean())}
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps({"l1": l1}))
        (out / "report.md").write_text(f"L1 to the clean image: {l1['model']:.3f} (the noisy input: {l1['noisy input']:.3f})\n")
        print(f"L1 {l1['model']:.3f} (noisy input {l1['noisy input']:.3f})")
        return 0

    @classmethod
    def next_hint(cls, run, summary):
        return f"condgan sample {run} --out denoised.png"


def tiny(data: Path, steps: int = 2) -> list[str]:
    return ["--set", f"data.name={data}", "model.g_width=4", "model.d_width=4", "train.batch_size=8", "train.log_every=1",
            "train.sample_every=2", f"train.steps={steps}"]


def test_the_task_is_registered_and_offered_by_the_command_line(capsys):
    assert "denoise" in registry.names() and registry.get("denoise") is DenoiseTask
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "denoise: denoising" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


def test_a_task_from_outside_trains_resumes_samples_evaluates_exports_and_is_served(idx_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "denoise", "--out", str(run), "--quiet", *tiny(idx_dir)]) == 0
    assert f"condgan sample {run} --out denoised.png" in capsys.readouterr().out  # the task's own hint
    assert main(["train", "--resume", str(run), "--steps", "1", "--quiet"]) == 0
    assert (run / "checkpoints" / "step_00000003.pt").is_file()
    assert main(["sample", str(run), "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").is_file()
    assert main(["sample", str(run), "--label", "0", "--out", str(tmp_path / "x.png")]) == 2  # a cgan's flag
    assert "--label does not apply to denoisers; --label is for class-conditional generators" in capsys.readouterr().err
    assert main(["eval", str(run), "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["l1"]["model"] >= 0 and report["l1"]["noisy input"] > 0
    assert main(["export", str(run), str(tmp_path / "export")]) == 0
    assert json.loads((tmp_path / "export" / "condgan.json").read_text())["task"] == "denoise"

    model, exported = condgan.load(run), condgan.load(tmp_path / "export")
    assert isinstance(model, Denoiser) and isinstance(exported, Denoiser)
    noisy, _ = DenoiseTask.test_pairs(model)
    assert torch.equal(model.denoise(noisy[:3]), exported.denoise(noisy[:3]))

    from condgan.serve.app import load_models

    with running(load_models([f"clean={run}"], say=lambda *_: None)) as server:
        status, _, body = request(server, "GET", "/api/models")
    assert status == 200
    (listed,) = json.loads(body)["models"]
    assert listed["name"] == "clean" and listed["kind"] == "denoise" and listed["title"] == "denoiser"


def test_the_python_api_trains_the_task_from_arrays(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8), np.arange(40) % 2
    model = condgan.train({"task": "denoise", "model": {"g_width": 4, "d_width": 4}, "train": {"batch_size": 8}},
                          data=(images, labels, ["a", "b"]), out=tmp_path / "api", steps=2)
    assert isinstance(model, Denoiser) and model.denoise(images[:2]).shape == (2, 1, 12, 12)


def test_a_task_without_controls_is_refused_by_serve_with_the_served_list(tmp_path, monkeypatch):
    from condgan.serve.kinds import kind_of

    class Unserved(registry.Task):  # a task that declares no controls
        name = "unserved"

    class Plain(Translator):
        task = "unserved"

    monkeypatch.setitem(registry._TASKS, "unserved", Unserved)
    with pytest.raises(UserError, match="does not know how to serve a 'unserved' model yet .*similarity.*denoise"):
        kind_of(Plain.__new__(Plain), tmp_path)


def test_a_package_adds_a_task_through_the_entry_point_group(monkeypatch, tmp_path):
    from importlib.metadata import EntryPoint

    (tmp_path / "my_tasks.py").write_text(
        "from condgan.registry import register\nfrom condgan.tasks.translate import TranslationTask\n\n"
        "@register\nclass Sharpen(TranslationTask):\n    name = 'sharpen'\n")
    (tmp_path / "broken_tasks.py").write_text("raise ImportError('no such thing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [EntryPoint("sharpen", "my_tasks", registry.ENTRY_POINTS), EntryPoint("broken", "broken_tasks", registry.ENTRY_POINTS)]
    monkeypatch.setattr(registry, "entry_points", lambda group: points if group == registry.ENTRY_POINTS else [])
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        with pytest.warns(UserWarning, match="task plug-in 'broken'"):
            assert "sharpen" in registry.names()  # and condgan's own tasks are still there
        assert {"cgan", "translate", "two-stage", "similarity", "exemplar"} <= set(registry.names())
    finally:
        registry._TASKS.pop("sharpen", None)
