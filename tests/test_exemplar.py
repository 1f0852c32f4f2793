"""The exemplar task, "more like this one": a GAN step conditioned on a frozen embedder's embedding,
on a folder of images without classes; sampling like an image, resume, export, evaluation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.models.resnet import ResNetGenerator
from condgan.tasks.exemplar import nearest_neighbours
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import class_pattern


def exemplar_overrides(data, embedder, steps: int, **extra) -> list[str]:
    base = {"task": "exemplar", "data.name": str(data), "similarity.embedder": str(embedder), "similarity.neighbours": 3,
            "data.image_size": 12, "model.g_width": 4, "model.d_width": 4, "model.z_dim": 8, "train.batch_size": 8,
            "train.steps": steps, "train.log_every": 1, "train.sample_every": 2, "train.checkpoint_every": 2,
            "train.ema_start": 1, "train.deterministic": True}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder of 40 images without class sub-folders, a self-supervised embedder on it, an exemplar run."""
    root = tmp_path_factory.mktemp("exemplar")
    flat = root / "flat"
    flat.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(class_pattern(i % 4, 12, rng)).save(flat / f"{i:03d}.png")
    embedder = root / "ssl"
    train(load_config(None, ["task=similarity", f"data.name={flat}", "data.image_size=12", "similarity.recipe=selfsup",
                             "similarity.width=4", "similarity.embed_dim=8", "train.batch_size=16", "train.steps=3"]),
          embedder, quiet=True)
    train(load_config(None, exemplar_overrides(flat, embedder, 4)), root / "run", quiet=True)
    return {"root": root, "flat": flat, "embedder": embedder, "run": root / "run"}


def test_exemplar_run_resumes_exactly(world, tmp_path):
    train(load_config(None, exemplar_overrides(world["flat"], world["embedder"], 2)), tmp_path / "split", quiet=True)
    train(out=tmp_path / "split", resume=True, stop_overrides={"steps": 2}, quiet=True)
    a = ckpt.safe_load(world["run"] / "checkpoints" / "step_00000004.pt")
    b = ckpt.safe_load(tmp_path / "split" / "checkpoints" / "step_00000004.pt")
    for net in ("G", "D", "G_ema", "embedder"):
        for key, value in a["state"][net].items():
            assert torch.equal(value, b["state"][net][key]), f"{net}.{key} differs after resume"
    assert set(a["spec"]) == {"image", "embedding"}  # no class field: no labels were used
    assert (world["run"] / "samples" / "latest.png").is_file()


def test_neighbours_are_kept_in_the_run_and_reused_until_the_embedder_changes(world, tmp_path, monkeypatch, capsys):
    """Embedding every training image and finding its neighbours is done once per embedder: a resume reads
    them from the run (keyed by the embedder's weights, the images and k); a retrained embedder recomputes."""
    import shutil

    from condgan.tasks import exemplar
    from condgan.tasks.similarity.config import SELFSUP_FEATURES, SELFSUP_GRAPH

    embedder = tmp_path / "ssl"
    shutil.copytree(world["embedder"], embedder)
    run = tmp_path / "run"
    train(load_config(None, exemplar_overrides(world["flat"], embedder, 1)), run, quiet=True)
    kept = torch.load(run / exemplar.NEIGHBOURS_FILE, weights_only=True)
    # 36: every 10th image is held out; selfsup's embedding: the head's 8 + its conv features' 128 directions + 6 graph coordinates
    assert kept["knn"].shape == (36, 3) and kept["embedding"].shape == (36, 8 + SELFSUP_FEATURES + SELFSUP_GRAPH)
    computed = []
    real = exemplar.nearest_neighbours
    monkeypatch.setattr(exemplar, "nearest_neighbours", lambda e, k: computed.append(k) or real(e, k))
    train(out=run, resume=True, stop_overrides={"steps": 1})
    assert computed == [] and "reused the embeddings and 3 nearest neighbours of 36 images" in capsys.readouterr().err
    train(out=embedder, resume=True, stop_overrides={"steps": 1}, quiet=True)  # the embedder trained on: new weights
    train(out=run, resume=True, stop_overrides={"steps": 1}, quiet=True)
    assert computed == [3]
    again = torch.load(run / exemplar.NEIGHBOURS_FILE, weights_only=True)
    assert again["key"] != kept["key"] and not torch.equal(again["embedding"], kept["embedding"])
    (run / exemplar.NEIGHBOURS_FILE).write_bytes(b"damaged")  # a damaged file is recomputed, never trusted
    train(out=run, resume=True, stop_overrides={"steps": 1}, quiet=True)
    assert computed == [3, 3]


def test_sample_like_an_image(world):
    model = condgan.load(world["run"])
    assert model.task == "exemplar"
    rng = np.random.default_rng(5)
    refs = np.stack([class_pattern(0, 12, rng), class_pattern(1, 12, rng)])
    images = model.sample(like=refs, n=5, seed=0)
    assert images.shape == (10, 1, 12, 12) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, model.sample(like=refs, n=5, seed=0))  # same seed, same images
    assert not torch.equal(images[:5], images[5:])  # another exemplar, other images
    pil = model.sample(like=Image.fromarray(refs[0]), n=2, seed=1, output_type="pil")
    assert len(pil) == 2 and pil[0].size == (12, 12)
    exported = model.save_pretrained(world["root"] / "export")
    assert torch.equal(condgan.load(exported).sample(like=refs, n=5, seed=0), images)


def test_vector_conditioned_generator_follows_its_condition():
    torch.manual_seed(0)
    G = ResNetGenerator(0, 8, 1, 16, 4, cond_dim=6).eval()
    for block in G.blocks:  # move the conditional norm away from its identity init
        torch.nn.init.normal_(block.bn1.gain.weight)
    z = torch.randn(2, 8)
    c = torch.randn(2, 6)
    assert not torch.allclose(G(z, c), G(z, -c))
    assert torch.equal(G(z, c), G(z, c))


def test_nearest_neighbours_include_the_image_itself():
    e = torch.nn.functional.normalize(torch.randn(30, 4), dim=1)
    knn = nearest_neighbours(e, 3, chunk=7)
    assert knn.shape == (30, 3) and torch.equal(knn[:, 0], torch.arange(30))


def test_sample_and_eval_commands(world, tmp_path, capsys):
    ref = tmp_path / "ref.png"
    Image.fromarray(class_pattern(2, 12, np.random.default_rng(3))).save(ref)
    out = tmp_path / "like.png"
    assert main(["sample", str(world["run"]), "--like", str(ref), "--n", "4", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 0
    assert main(["sample", str(world["run"]), "--n", "4", "--out", str(out)]) == 2
    assert "pass --like IMAGE" in capsys.readouterr().err
    assert main(["eval", str(world["run"]), "--exemplars", "3", "--quiet"]) == 0
    report = json.loads((world["run"] / "eval" / "report.json").read_text())
    m = report["model"]
    assert report["exemplars"] == 3 and m.get("class_agreement") is None  # no classes in this folder
    for key in ("exemplar_similarity", "neighbour_similarity", "random_pair_similarity", "diversity_ratio",
                "suspected_copies", "suspected_copies_floor"):
        assert m[key] is not None and np.isfinite(m[key]), key
    assert (world["run"] / "eval" / "exemplars.png").is_file()


def test_truncation_draws_latents_closer_to_the_centre_and_is_off_by_default(world, tmp_path, capsys):
    model = condgan.load(world["run"])
    refs = np.stack([class_pattern(1, 12, np.random.default_rng(7))])
    plain = model.sample(like=refs, n=6, seed=3)
    assert torch.equal(plain, model.sample(like=refs, n=6, seed=3, truncation=None))
    truncated = model.sample(like=refs, n=6, seed=3, truncation=0.5)
    assert torch.equal(truncated, model.sample(like=refs, n=6, seed=3, truncation=0.5))  # a seed repeats itself
    assert not torch.equal(truncated, plain)
    assert model.noise(6, 3, 0.5).abs().max() <= 0.5
    ref = tmp_path / "ref.png"
    Image.fromarray(refs[0]).save(ref)
    assert main(["sample", str(world["run"]), "--like", str(ref), "--n", "3", "--truncation", "1.5",
                 "--out", str(tmp_path / "t.png")]) == 0
    assert "truncated at ±1.5" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse refuses it, saying what a threshold is
        main(["sample", str(world["run"]), "--like", str(ref), "--truncation", "0", "--out", str(tmp_path / "t.png")])
    assert "--truncation must be a number of at least" in capsys.readouterr().err
    assert main(["eval", str(world["run"]), "--exemplars", "3", "--quiet", "--truncation", "1.0",
                 "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["truncation"] == 1.0 and "truncated at ±1" in (tmp_path / "ev" / "report.md").read_text()


def test_exemplar_needs_a_similarity_run(world, tmp_path):
    with pytest.raises(ConfigError, match="needs an embedding network"):
        train(load_config(None, exemplar_overrides(world["flat"], "", 1)[:2] + exemplar_overrides(world["flat"], "x", 1)[3:]),
              tmp_path / "a", quiet=True)
    with pytest.raises(ConfigError, match="must be a --task similarity run"):
        train(load_config(None, exemplar_overrides(world["flat"], world["run"], 1)), tmp_path / "b", quiet=True)


def test_served_exemplar_model_takes_an_upload(world):
    """`condgan serve` plugs the exemplar kind in with one KINDS entry: an upload in, images like it out."""
    import base64
    import io

    from condgan.serve.app import load_models
    from serve_helpers import png_b64, request, running

    ref = class_pattern(1, 12, np.random.default_rng(4))
    with running(load_models([f"like={world['run']}"], say=lambda *_: None)) as server:
        status, _, body = request(server, "GET", "/api/models")
        fields = json.loads(body)["models"][0]["fields"]
        assert [f["name"] for f in fields] == ["exemplar"] and fields[0]["kind"] == "image"
        status, _, body = request(server, "POST", "/api/generate",
                                  {"model": "like", "exemplar": png_b64(ref), "n": 2, "seed": 3, "format": "json"})
        assert status == 200, body
    got = np.stack([np.array(Image.open(io.BytesIO(base64.b64decode(im["png"])))) for im in json.loads(body)["images"]])
    want = condgan.load(world["run"]).sample(like=ref, n=2, seed=3, output_type="uint8")
    assert np.array_equal(got, want[:, 0].numpy())


def test_exemplar_step_is_built_from_the_config_like_every_gan_step(world, tmp_path, monkeypatch):
    from condgan.tasks.gan import GANOptions
    from condgan.training.trainer import Run

    calls, original = [], GANOptions.from_config.__func__

    def spy(cls, *args, **kwargs):
        calls.append(original(cls, *args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(GANOptions, "from_config", classmethod(spy))
    run = Run(load_config(None, exemplar_overrides(world["flat"], world["embedder"], 1)), tmp_path / "run")
    assert len(calls) == 1 and calls[0] is run.step.options and run.step.options.roles.g_fields == ("embedding",)
