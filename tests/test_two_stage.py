"""Two labels, two stages: data (built-in and CSV manifests), the three stage runs in the one loop, the loss
partition, sampling, export and evaluation, on a tiny synthetic manifest (16x16, 3 shapes x 2 colours)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.data.twolabel import PALETTE, colourise, grey_detail, load_two_label, palette_rgb
from condgan.errors import ConfigError, DataError, UserError
from condgan.eval.two_stage_judges import colour_readout, iou
from condgan.models import rebuild
from condgan.training import checkpoint as ckpt
from condgan.training import train

from conftest import needs_fashion

SIZE = 16
SHAPES = ("bar", "post", "block")


def shape_mask(shape: str, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    o = int(rng.integers(0, 3))
    if shape == "bar":
        m[3 + o:7 + o, 2:14] = True
    elif shape == "post":
        m[2:14, 3 + o:7 + o] = True
    else:
        m[5 + o // 2:11, 5:11] = True
    return m


def write_manifest(root, n: int = 40, seed: int = 0, colours=("red", "blue")):
    """root/data.csv with images (grey shape x colour), masks and labels; every 10th row is the test split."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "mask").mkdir(exist_ok=True)
    lines = ["image,intermediate,label_a,label_b"]
    for i in range(n):
        shape, colour = SHAPES[i % 3], colours[(i // 3) % len(colours)]
        m = shape_mask(shape, rng)
        grey = np.where(m, rng.integers(120, 255, (SIZE, SIZE)), 0).astype(np.uint8)
        rgb = colourise(torch.from_numpy(grey)[None, None], palette_rgb([colour]))[0].permute(1, 2, 0).numpy()
        Image.fromarray(rgb).save(root / "img" / f"{i:03d}.png")
        Image.fromarray(m.astype(np.uint8) * 255).save(root / "mask" / f"{i:03d}.png")
        lines.append(f"img/{i:03d}.png,mask/{i:03d}.png,{shape},{colour}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root / "data.csv"


def tiny(csv, steps: int = 3, **extra) -> list[str]:
    base = {"task": "two-stage", "data.name": str(csv), "model.g_width": 4, "model.d_width": 4, "model.z_dim": 8,
            "stages.g2_width": 4, "stages.d2_width": 4, "stages.z2_dim": 2, "train.batch_size": 8,
            "train.steps": steps, "train.log_every": 1, "train.sample_every": 2, "train.checkpoint_every": 2,
            "train.ema_start": 1}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A manifest, a pipeline trained 3 steps per stage, and an isolated evaluator cache."""
    root = tmp_path_factory.mktemp("two_stage")
    csv = write_manifest(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))
        summary = train(load_config(None, tiny(csv)), root / "run", quiet=True)
        yield {"root": root, "csv": csv, "run": root / "run", "summary": summary}


# --------------------------------------------------------------------------- data

def test_manifest_loads_both_labels_the_intermediate_and_a_palette(world):
    train_set, test_set = load_two_label(str(world["csv"])), load_two_label(str(world["csv"]), "test")
    assert len(train_set) == 36 and len(test_set) == 4
    assert train_set.images.shape == (36, 3, SIZE, SIZE) and train_set.masks.shape == (36, 1, SIZE, SIZE)
    assert train_set.label_a_names == ["bar", "block", "post"] and train_set.label_b_names == ["blue", "red"]
    assert train_set.palette.tolist() == [[0, 0, 255], [255, 0, 0]]
    assert set(train_set.spec()) == {"image", "mask", "label_a", "label_b"}
    # label B is the colour the image was painted in, and the colour readout finds it
    assert torch.equal(colour_readout(train_set.images, train_set.palette), train_set.labels_b)


def test_colourised_grey_is_recovered_exactly_as_the_maximum_over_channels():
    grey = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    palette = palette_rgb(list(PALETTE))
    assert len(PALETTE) >= 6 and (palette.amax(1) == 255).all()
    coloured = colourise(grey, palette)
    assert torch.equal(grey_detail(coloured), grey)
    grey[:, :, 2:6, 2:6] = 200  # a bright garment in every image
    assert colour_readout(colourise(grey, palette), palette).tolist() == list(range(6))


@needs_fashion
def test_builtin_coloured_fashion_mnist_is_deterministic_and_keeps_the_grey_garment():
    from condgan.data import load_dataset
    from condgan.data.paired import derive_source

    data = load_two_label("fashion-mnist-colours", "test")
    real = load_dataset("fashion-mnist", "test")
    assert data.images.shape == (10000, 3, 28, 28) and data.label_b_names == list(PALETTE)
    assert torch.equal(grey_detail(data.images), real.images) and torch.equal(data.labels_a, real.labels)
    assert torch.equal(data.masks, derive_source(real.images, "masks"))
    assert torch.equal(colour_readout(data.images[:500], data.palette), data.labels_b[:500])
    counts = torch.bincount(data.labels_b, minlength=6)
    assert counts.min() > 1500, "colours are drawn uniformly"
    subset = load_two_label("fashion-mnist-colours", "test", classes=["sandal", "bag"])
    keep = (real.labels == 5) | (real.labels == 8)
    assert subset.label_a_names == ["sandal", "bag"] and torch.equal(subset.labels_b, data.labels_b[keep])
    edges = load_two_label("fashion-mnist-colours-edges", "test", classes=["bag", "sandal"])
    assert edges.intermediate == "edges" and torch.equal(edges.images, subset.images)


def _rewrite(csv, edit):
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(edit(lines)) + "\n")
    return csv


@pytest.mark.parametrize("edit,message", [
    (lambda ls: ["picture,intermediate,label_a,label_b"] + ls[1:], "the header lacks the column(s) image"),
    (lambda ls: ls[:3] + ["img/missing.png,mask/000.png,bar,red"] + ls[3:], "row 4: image file img/missing.png does not exist"),
    (lambda ls: ls[:2] + ["img/000.png,mask/000.png,,red"] + ls[2:], "row 3: empty label_a"),
    (lambda ls: ls[:2] + ["img/000.png,big.png,bar,red"] + ls[2:], "row 3: image img/000.png is 16x16 but intermediate big.png is 20x20"),
    (lambda ls: ls[:2] + ["big.png,big_mask.png,bar,red"] + ls[2:], "row 3: big.png is 20x20 but the first row's image is 16x16"),
    (lambda ls: [ls[0]] + [",".join(ln.split(",")[:3] + ["red"]) for ln in ls[1:]], "label_b has 1 distinct value"),
    (lambda ls: [ls[0] + ",split"] + [ln + ",validation" for ln in ls[1:]], "split must be train or test, not 'validation'"),
    (lambda ls: ls[:1], "has a header but no rows"),
])
def test_manifest_mistakes_are_clear_errors(tmp_path, edit, message):
    csv = write_manifest(tmp_path / "m", n=12)
    Image.new("RGB", (20, 20)).save(tmp_path / "m" / "big.png")
    Image.new("L", (20, 20)).save(tmp_path / "m" / "big_mask.png")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_two_label(str(_rewrite(csv, edit)))


def test_manifest_classes_and_paths_are_checked(tmp_path):
    csv = write_manifest(tmp_path / "m", n=12)
    with pytest.raises(DataError, match="unknown class 'circle'; known classes: bar, block, post"):
        load_two_label(str(csv), classes=["bar", "circle"])
    with pytest.raises(DataError, match="manifest .*nowhere.csv does not exist"):
        load_two_label(str(tmp_path / "nowhere.csv"))
    with pytest.raises(DataError, match="a built-in .* or a CSV manifest"):
        load_two_label(str(tmp_path / "m"))
    assert load_two_label(str(csv), classes=["post", "bar"]).label_a_names == ["post", "bar"]


# --------------------------------------------------------------------------- training: three runs of the one loop

def test_the_pipeline_trains_three_resumable_stage_runs(world):
    run = world["run"]
    assert json.loads((run / "summary.json").read_text())["steps"] == 9
    assert "stage: all" in (run / "config.yaml").read_text()
    classes = {}
    for stage in ("stage1", "stage2", "joint"):
        state = ckpt.safe_load(run / stage / "checkpoints" / "step_00000003.pt")
        assert state["version"] == ckpt.VERSION and state["task"] == "two-stage"
        assert state["config"]["stages"]["stage"] == stage
        assert (run / stage / "samples" / "latest.png").is_file() and (run / stage / "loss.png").is_file()
        classes[stage] = {name: d["class"] for name, d in state["networks"].items()}
    assert classes["stage1"] == {"G": "ResNetGenerator", "D": "ProjectionDiscriminator"}
    assert classes["stage2"] == {"G": "UNetGenerator", "D": "PatchDiscriminator"}
    assert classes["joint"] == {"G1": "ResNetGenerator", "D1": "ProjectionDiscriminator", "G2": "UNetGenerator",
                                "D2": "PatchDiscriminator", "C": "Classifier"}
    records = [json.loads(line) for line in (run / "joint" / "metrics.jsonl").read_text().splitlines()]
    for term in ("adv_mask", "class_mask", "diversity", "adv_image", "class_b", "class_a", "l1_teacher", "d1", "d2", "c"):
        assert all(np.isfinite(r[f"loss_{term}"]) for r in records), term
    # the joint stage starts from the stage runs' networks
    joint = ckpt.safe_load(run / "joint" / "checkpoints" / "step_00000003.pt")["state"]
    stage1 = ckpt.safe_load(run / "stage1" / "checkpoints" / "step_00000003.pt")["state"]
    assert joint["G1"].keys() == stage1["G"].keys()


def test_a_stage_and_the_pipeline_resume(world, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    assert train(out=run / "stage2", resume=True, stop_overrides={"steps": 2}, quiet=True)["steps"] == 5
    summary = train(out=run, resume=True, stop_overrides={"steps": 2}, quiet=True)  # finished stages are kept
    assert summary["stages"]["stage1"]["steps"] == 3 and summary["stages"]["joint"]["steps"] == 5
    logged = [json.loads(line)["step"] for line in (run / "joint" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]


def test_the_joint_stage_refuses_to_start_without_its_stage_runs(world, tmp_path, capsys):
    config = load_config(None, tiny(world["csv"], **{"stages.stage": "joint"}))
    with pytest.raises(UserError, match="holds no trained stage1 run; train it first: condgan train --task two-stage --stage stage1"):
        train(config, tmp_path / "pipeline", quiet=True)
    argv = ["train", "--task", "two-stage", "--stage", "joint", "--data", str(world["csv"]), "--steps", "1",
            "--out", str(tmp_path / "p2"), "--quiet"]
    assert main(argv) == 2
    assert "holds no trained stage1 run" in capsys.readouterr().err


@pytest.mark.parametrize("updates,frozen", [("G2", "G1"), ("G1", "G2")])
def test_each_loss_term_updates_only_the_generators_it_names(world, tmp_path, updates, frozen):
    """Every term off but the final image's adversarial loss, which depends on both generators: only the
    generator named in joint.adv_image_updates may change."""
    import shutil

    pipeline = tmp_path / "p"
    for stage in ("stage1", "stage2"):
        shutil.copytree(world["run"] / stage, pipeline / stage)
    off = {f"joint.{t}": 0 for t in ("adv_mask", "class_mask", "diversity", "class_b", "class_a", "l1_teacher")}
    config = load_config(None, tiny(world["csv"], steps=2, **off, **{"stages.stage": "joint", "joint.adv_image_updates": updates}))
    train(config, pipeline, quiet=True)
    state = ckpt.safe_load(pipeline / "joint" / "checkpoints" / "step_00000002.pt")
    before = {"G1": ckpt.safe_load(pipeline / "stage1" / "checkpoints" / "step_00000003.pt")["state"]["G_ema"],
              "G2": ckpt.safe_load(pipeline / "stage2" / "checkpoints" / "step_00000003.pt")["state"]["G_ema"]}

    def params(name, weights):
        net = rebuild(state["networks"][name])
        net.load_state_dict(weights)
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    assert torch.equal(params(frozen, before[frozen]), params(frozen, state["state"][frozen])), f"{frozen} changed"
    assert not torch.equal(params(updates, before[updates]), params(updates, state["state"][updates]))


def test_two_stage_config_mistakes_name_the_key(world):
    with pytest.raises(ConfigError, match="joint.class_a_updates must name the generators"):
        load_config(None, tiny(world["csv"], **{"joint.class_a_updates": "G3"}))
    with pytest.raises(ConfigError, match="stages.fractions must be three shares"):
        load_config(None, tiny(world["csv"], **{"stages.fractions": "0.5,0.5"}))
    with pytest.raises(ConfigError, match="the stages section is for --task two-stage"):
        load_config(None, ["stages.l1_weight=3"])
    assert "stages" not in load_config(None, []).to_dict(), "other tasks' config.yaml stays as it was"


# --------------------------------------------------------------------------- sampling, export, evaluation

def test_sampling_by_label_names_with_intermediates(world):
    ts = condgan.load(world["run"])
    assert type(ts).__name__ == "TwoStage" and ts.label_a_names == ["bar", "block", "post"]
    images, masks = ts.sample(label_a="post", label_b="red", n=4, seed=0, return_intermediate=True)
    assert images.shape == (4, 3, SIZE, SIZE) and masks.shape == (4, 1, SIZE, SIZE)
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, ts.sample(label_a="post", label_b="red", n=4, seed=0)), "same seed, same images"
    both = ts.sample(label_a=["bar", "post"], label_b=["red", "blue"], n=2, seed=1, output_type="uint8")
    assert both.shape == (8, 3, SIZE, SIZE) and both.dtype == torch.uint8
    with pytest.raises(UserError, match="label A: unknown class 'circle'"):
        ts.sample(label_a="circle", label_b="red")
    with pytest.raises(UserError, match="label B: unknown class 'green'; known classes: blue, red"):
        ts.sample(label_a="bar", label_b="green")
    # a stage run loads as the pipeline before joint fine-tuning
    staged = condgan.load(world["run"] / "stage1")
    assert staged.sample("bar", "red", seed=2).shape == (1, 3, SIZE, SIZE)


def test_sample_grid_npz_and_export(world, tmp_path, capsys):
    run = str(world["run"])
    assert main(["sample", run, "--out", str(tmp_path / "grid.png"), "--n", "2"]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 100
    assert main(["sample", run, "--n-per-pair", "3", "--out", str(tmp_path / "s.npz")]) == 0
    npz = np.load(tmp_path / "s.npz")
    assert set(npz.files) == {"images", "intermediates", "labels_a", "labels_b", "label_a_names", "label_b_names", "label_b_rgb"}
    assert npz["images"].dtype == np.uint8 and npz["images"].shape == (18, SIZE, SIZE, 3)
    assert npz["intermediates"].dtype == np.uint8 and npz["intermediates"].shape == (18, SIZE, SIZE)
    assert npz["labels_a"].tolist() == [0] * 6 + [1] * 6 + [2] * 6 and npz["labels_b"].tolist()[:6] == [0, 0, 0, 1, 1, 1]
    assert npz["label_b_names"].tolist() == ["blue", "red"] and npz["label_b_rgb"].dtype == np.uint8
    assert npz["label_b_rgb"].tolist() == [[0, 0, 255], [255, 0, 0]]
    assert main(["sample", run, "--label-b", "purple", "--out", str(tmp_path / "x.png")]) == 2
    assert "label B: unknown class 'purple'" in capsys.readouterr().err
    assert main(["sample", run, "--label", "bar", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["export", run, str(tmp_path / "exported")]) == 0
    exported = {p.name for p in (tmp_path / "exported").iterdir()}
    assert {"condgan.json", "generator1.safetensors", "generator2.safetensors", "README.md"} <= exported  # + the card's files
    assert "label_b='blue'" in (tmp_path / "exported" / "README.md").read_text()
    again, ts = condgan.load(tmp_path / "exported"), condgan.load(run)
    assert torch.equal(again.sample("block", "blue", n=3, seed=5), ts.sample("block", "blue", n=3, seed=5))


def test_a_pipeline_without_stage_two_cannot_sample(world, tmp_path):
    import shutil

    shutil.copytree(world["run"] / "stage1", tmp_path / "p" / "stage1")
    with pytest.raises(UserError, match="two-stage pipeline with stage1 only; sampling needs G1 and G2: train stage2"):
        condgan.load(tmp_path / "p")


def test_eval_reports_both_labels_iou_swap_tests_and_floors(world, capsys):
    assert main(["eval", str(world["run"]), "--n-per-pair", "4", "--quiet"]) == 0
    report = json.loads((world["run"] / "eval" / "report.json").read_text())
    assert report["kind"] == "two-stage" and report["settings"]["n_images"] == 24
    for side in ("model", "real_floor"):
        for key in ("label_a_accuracy", "label_b_accuracy", "both_accuracy", "iou", "stage1_accuracy"):
            assert 0 <= report[side][key] <= 1, (side, key)
    assert report["real_floor"]["label_b_accuracy"] == 1.0, "the colour readout reads real colours exactly"
    assert report["real_floor"]["iou"] == 1.0, "real images against their own masks"
    assert len(report["cross"]["model"]["label_a_accuracy"]) == 3 and len(report["cross"]["model"]["label_b_accuracy"][0]) == 2
    assert set(report["swap_tests"]) == {"swap_a", "swap_b"}
    assert 0 <= report["swap_tests"]["swap_b"]["iou_across_b"] <= 1 and 0 <= report["swap_tests"]["swap_b"]["iou_mean"] <= 1
    for picture in ("swap_a", "swap_b", "grid", "cross", "confusion_a"):
        assert (world["run"] / "eval" / report["pictures"][picture]).is_file()
    assert "label A" in capsys.readouterr().out


def test_iou_of_silhouettes():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2], b[0, :1] = True, True
    assert iou(a, b).tolist() == [0.5, 1.0]


def test_served_two_stage_model_takes_both_labels(world):
    """`condgan serve` plugs the two-stage kind in with one KINDS entry: two dropdowns, rows = label A."""
    import base64
    import io
    import json

    from PIL import Image

    import condgan
    from condgan.serve.app import load_models
    from serve_helpers import request, running

    with running(load_models([f"colours={world['run']}"], say=lambda *_: None)) as server:
        status, _, body = request(server, "GET", "/api/models")
        fields = json.loads(body)["models"][0]["fields"]
        assert [f["name"] for f in fields] == ["label_a", "label_b"] and fields[0]["multiple"]
        pipe = condgan.load(world["run"])
        a, b = pipe.label_a_names[:2], pipe.label_b_names[-1]
        status, _, body = request(server, "POST", "/api/generate",
                                  {"model": "colours", "label_a": a, "label_b": b, "n": 2, "seed": 5, "format": "json"})
        assert status == 200, body
        status_bad, _, bad = request(server, "POST", "/api/generate", {"model": "colours", "label_a": a, "label_b": "plaid"})
    got = np.stack([np.array(Image.open(io.BytesIO(base64.b64decode(im["png"])))) for im in json.loads(body)["images"]])
    want = pipe.sample(label_a=a, label_b=b, n=2, seed=5, output_type="uint8").permute(0, 2, 3, 1).numpy()
    assert np.array_equal(got, want)
    assert status_bad == 400 and "plaid" in json.loads(bad)["error"]
