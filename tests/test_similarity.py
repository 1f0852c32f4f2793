"""The similarity task: every recipe trains in the one loop and resumes exactly; compare / search / embed;
CSV pairs and their errors; the evaluation on a tiny run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.errors import ConfigError, DataError, UserError
from condgan.eval.similarity import best_threshold, lfw_accuracy
from condgan.tasks.similarity import ClassBalanced
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import class_pattern, write_idx

RECIPES = ("siamese", "triplet", "frozen", "selfsup")


def tiny(data: Path, recipe: str, steps: int, **extra) -> list[str]:
    base = {"task": "similarity", "data.name": str(data), "similarity.recipe": recipe, "similarity.width": 4,
            "similarity.embed_dim": 8, "similarity.per_class": 4, "train.batch_size": 16, "train.steps": steps,
            "train.log_every": 1, "train.sample_every": 100, "train.checkpoint_every": 2, "train.deterministic": True}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))  # the frozen recipe's evaluator, search indexes
        data = write_idx(root / "idx", n_train=64, n_test=40, classes=4, size=12)
        train(load_config(None, tiny(data, "triplet", 4)), root / "run", quiet=True)
        yield {"root": root, "data": data, "run": root / "run"}


@pytest.fixture
def cache(world, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(world["root"] / "cache"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_and_resumes_exactly(recipe, world, cache, tmp_path):
    """4 steps straight == 2 steps, then 2 more after a resume: weights, optimiser and threshold."""
    data = world["data"]
    train(load_config(None, tiny(data, recipe, 4)), tmp_path / "straight", quiet=True)
    train(load_config(None, tiny(data, recipe, 2)), tmp_path / "split", quiet=True)
    train(out=tmp_path / "split", resume=True, stop_overrides={"steps": 2}, quiet=True)
    a = ckpt.safe_load(tmp_path / "straight" / "checkpoints" / "step_00000004.pt")
    b = ckpt.safe_load(tmp_path / "split" / "checkpoints" / "step_00000004.pt")
    for key, value in a["state"]["embedder"].items():
        assert torch.equal(value, b["state"]["embedder"][key]), f"{key} differs after resume"
    first = ckpt.safe_load(tmp_path / "split" / "checkpoints" / "step_00000002.pt")
    last_layer = [k for k in a["state"]["embedder"] if k.startswith("head.") and k.endswith(".weight")][-1]
    if recipe != "frozen":  # (the frozen evaluator separates this toy data so well that the miner may find nothing)
        assert not torch.equal(first["state"]["embedder"][last_layer], a["state"]["embedder"][last_layer])  # it learned
    losses = [json.loads(line)["loss_metric"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and all(np.isfinite(losses))
    if recipe == "selfsup":  # no labels anywhere in the run; the feature half of its embedding was fitted
        assert set(a["spec"]) == {"image"}
        assert a["state"]["embedder"]["feature_basis"].abs().sum() > 0
        assert a["state"]["embedder"]["graph.coords"].shape == (64, 6)  # every training image of this toy set
        assert a["state"]["embedder"]["graph.coords"].abs().sum() > 0 and a["state"]["embedder"]["graph.refs"].abs().sum() > 0
    if recipe == "frozen":  # the backbone stayed what the evaluator was
        assert torch.equal(first["state"]["embedder"]["backbone.body.0.weight"], a["state"]["embedder"]["backbone.body.0.weight"])


def test_class_balanced_batches_are_a_pure_function_of_seed_and_step():
    labels = torch.arange(40) % 5
    sampler = ClassBalanced(labels, m=4, batch_size=12, seed=3)
    batch = sampler(7)
    assert torch.equal(batch, ClassBalanced(labels, 4, 12, 3)(7))
    assert not torch.equal(batch, sampler(8))
    counts = torch.bincount(labels[batch], minlength=5)
    assert sorted(counts.tolist()) == [0, 0, 4, 4, 4]  # 12 // 4 = 3 classes, 4 images each


def test_matrix_nt_xent_is_pmls_self_supervised_nt_xent():
    from pytorch_metric_learning import losses

    from condgan.tasks.similarity import SymmetricNTXent

    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(12, 5), dim=1)
    b = torch.nn.functional.normalize(a + 0.3 * torch.randn(12, 5), dim=1)
    want = losses.SelfSupervisedLoss(losses.NTXentLoss(temperature=0.2))(a, b)
    assert SymmetricNTXent(0.2)(a, b).item() == pytest.approx(want.item(), abs=1e-5)


@pytest.mark.parametrize("recipe", ["triplet", "selfsup"])
@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_train_precision_runs_the_embedder_in_it_and_the_loss_in_fp32(recipe, precision, dtype):
    """train.precision reaches the similarity step as it does the GAN step: passes in bf16, losses in fp32."""
    from condgan.models.embedder import Embedder
    from condgan.tasks.similarity.metric import MetricStep

    s = load_config(None, ["task=similarity", f"similarity.recipe={recipe}"]).similarity
    net = Embedder(1, 8, 4, s.projector)
    seen = []
    net.body[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    step = MetricStep(net, recipe, s, {}, precision)
    images = torch.rand(16, 1, 12, 12) * 2 - 1
    emb, labels, tuples = step._pairs_and_triplets({"image": images, "label": torch.arange(16) % 4}, torch.Generator())
    assert set(seen) == {dtype} and emb.dtype == torch.float32  # what the loss and the miner see
    assert np.isfinite(step.step([{"image": images, "label": torch.arange(16) % 4}], torch.Generator())["loss_metric"])


def test_precision_auto_is_bf16_where_native_for_labelled_recipes_and_fp32_for_selfsup():
    from condgan.training.device import resolve_precision

    cpu = torch.device("cpu")
    for recipe in ("triplet", "siamese", "frozen"):
        t = load_config(None, ["task=similarity", f"similarity.recipe={recipe}"]).train
        assert t.precision == "auto" and resolve_precision(t.precision, cpu) in ("bf16", "fp32")  # as the GANs'
    assert load_config(None, ["task=similarity", "similarity.recipe=selfsup"]).train.precision == "fp32"
    chosen = load_config(None, ["task=similarity", "similarity.recipe=selfsup", "train.precision=bf16"])
    assert chosen.train.precision == "bf16"  # a precision the user names is kept


def test_threshold_and_lfw_accuracy():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.3, 0.2, 0.1] * 10)
    same = torch.tensor([True, True, True, False, False, False] * 10)
    t = best_threshold(scores, same)
    assert 0.3 < t < 0.7
    assert lfw_accuracy(scores, same)["accuracy"] == 1.0
    assert lfw_accuracy(scores, ~same)["accuracy"] < 0.6  # the threshold cannot rescue inverted scores


def test_embed_similarity_and_search_api(world, cache, tmp_path):
    model = condgan.load(world["run"])
    assert model.task == "similarity" and 0 < model.threshold <= 1
    rng = np.random.default_rng(0)
    grey = np.stack([class_pattern(i % 4, 12, rng) for i in range(6)])
    e_np = model.embed(grey)  # N×H×W uint8
    assert e_np.shape == (6, 8) and torch.allclose(e_np.norm(dim=1), torch.ones(6), atol=1e-5)
    as_float = torch.from_numpy(grey)[:, None].float() / 127.5 - 1
    assert torch.allclose(model.embed(as_float), e_np, atol=1e-5)
    assert torch.allclose(model.embed([Image.fromarray(g) for g in grey]), e_np, atol=1e-5)
    assert model.similarity(grey[:2], grey[:2]).allclose(torch.ones(2), atol=1e-5)
    assert model.same(grey[0], grey[0]).item()
    with pytest.raises(UserError, match="cannot pair 2 images with 3"):
        model.similarity(grey[:2], grey[:3])
    folder = tmp_path / "gallery"
    folder.mkdir()
    for i, g in enumerate(grey):
        Image.fromarray(g).save(folder / f"{i}.png")
    results = model.search(grey[2], k=3, within=folder)
    assert results[0]["path"].endswith("2.png") and results[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    from condgan.search import SearchIndex

    assert SearchIndex.of_folder(model, folder).reused  # built once, then reused
    Image.fromarray(grey[0]).save(folder / "new.png")
    again = SearchIndex.of_folder(model, folder)
    assert not again.reused and len(again) == 7  # the folder changed: rebuilt
    assert len(model.search(grey[0], k=2)) == 2  # default: the run's training images
    assert main(["export", str(world["run"]), str(tmp_path / "export")]) == 0
    exported = condgan.load(tmp_path / "export")
    assert (tmp_path / "export" / "embedder.safetensors").is_file() and exported.threshold == model.threshold
    assert torch.equal(exported.embed(grey), e_np)


def test_compare_and_search_commands(world, cache, tmp_path, capsys):
    rng = np.random.default_rng(1)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(class_pattern(0, 12, rng)).save(a)
    Image.fromarray(class_pattern(0, 12, rng)).save(b)
    assert main(["compare", str(world["run"]), str(a), str(a)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("similarity 1.0000") and line.endswith(": similar")
    (tmp_path / "g").mkdir()
    for i in range(5):
        Image.fromarray(class_pattern(i % 4, 12, rng)).save(tmp_path / "g" / f"{i}.png")
    out = tmp_path / "found.png"
    assert main(["search", str(world["run"]), str(b), "--in", str(tmp_path / "g"), "--k", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "index of 5 images" in printed[0] and len([ln for ln in printed if ln.strip()[:1].isdigit()]) == 3
    assert Image.open(out).size[0] > 0
    # the mistakes: one line, exit 2
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    for argv, message in ((["compare", str(world["run"]), str(a), str(tmp_path / "notes.txt")], "not a readable image"),
                          (["search", str(world["run"]), str(a), "--in", str(tmp_path / "empty")], "no images to search"),
                          (["compare", str(world["run"]), str(a), str(tmp_path / "nope.png")], "does not exist")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("condgan: error:") and message in err[0], err


def _pairs_csv(root: Path, rows: list[str], header: str = "image_a,image_b,similar") -> Path:
    rng = np.random.default_rng(2)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i in range(8):
        Image.fromarray(class_pattern(i % 2, 12, rng)).save(root / "img" / f"{i}.png")
    path = root / "pairs.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_pairs_and_triplets_train_and_evaluate(cache, tmp_path, capsys):
    pairs = _pairs_csv(tmp_path, [f"img/{r % 8}.png,img/{(r + 1 + r // 3) % 8}.png,{(r // 3) % 2}" for r in range(30)])
    base = tiny(Path("unused"), "siamese", 2, **{"data.image_size": 12})
    train(load_config(None, [*base, f"similarity.pairs={pairs}"]), tmp_path / "pairs_run", quiet=True)
    assert main(["eval", str(tmp_path / "pairs_run"), "--quiet"]) == 0
    report = json.loads((tmp_path / "pairs_run" / "eval" / "report.json").read_text())
    assert 0 <= report["model"]["accuracy"] <= 1 and report["pairs"] == 3
    triplets = tmp_path / "t"
    path = _pairs_csv(triplets, [f"img/{i}.png,img/{(i + 2) % 8}.png,img/{(i + 1) % 8}.png" for i in range(8)],
                      header="anchor,positive,negative")
    summary = train(load_config(None, [*tiny(Path("unused"), "triplet", 2, **{"data.image_size": 12}), f"similarity.pairs={path}"]),
                    tmp_path / "triplet_run", quiet=True)
    assert summary["steps"] == 2


def test_csv_mistakes_are_clear(tmp_path):
    def attempt(rows, header="image_a,image_b,similar", recipe="siamese"):
        path = _pairs_csv(tmp_path, rows, header)
        return lambda: train(load_config(None, [*tiny(Path("unused"), recipe, 1), f"similarity.pairs={path}"]),
                             tmp_path / f"r{len(list(tmp_path.iterdir()))}", quiet=True)

    with pytest.raises(DataError, match=r"line 3: image 'img/missing.png' does not exist"):
        attempt(["img/0.png,img/1.png,1", "img/0.png,img/missing.png,0"])()
    with pytest.raises(DataError, match="first line must be the header"):
        attempt(["img/0.png,img/1.png,1"], header="a,b,c")()
    with pytest.raises(DataError, match="line 2: 'similar' must be"):
        attempt(["img/0.png,img/1.png,maybe"])()
    with pytest.raises(DataError, match="line 2: expected 3 columns"):
        attempt(["img/0.png,img/1.png"])()
    with pytest.raises(ConfigError, match="recipe triplet needs triplets"):
        attempt(["img/0.png,img/1.png,1", "img/2.png,img/1.png,0"], recipe="triplet")()
    (tmp_path / "img" / "bad.png").write_text("not a png")
    with pytest.raises(DataError, match="not a readable image"):
        attempt(["img/0.png,img/bad.png,1"])()
    with pytest.raises(ConfigError, match="selfsup uses no labels"):
        load_config(None, [*tiny(Path("unused"), "selfsup", 1), "similarity.pairs=x.csv"])


def test_eval_on_a_tiny_run(world, cache, capsys):
    assert main(["eval", str(world["run"]), "--quiet"]) == 0
    out = world["run"] / "eval"
    report = json.loads((out / "report.json").read_text())
    m = report["model"]
    for key in ("accuracy", "roc_auc", "eer", "precision_at_1", "r_precision", "map_at_r", "roc_auc_flipped", "eer_flipped",
                "precision_at_1_flipped", "roc_auc_shifted", "eer_shifted", "precision_at_1_shifted"):
        assert 0 <= m[key] <= 1, key
    assert report["test_images"] == 40 and report["pairs"] == 6000
    assert (out / "map.png").stat().st_size > 0 and (out / "queries.png").stat().st_size > 0
    assert "MAP@R" in (out / "report.md").read_text() and "ROC AUC, second image flipped" in (out / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "verification accuracy" in printed and "flipped: ROC AUC" in printed and "shifted: ROC AUC" in printed


def test_labelled_recipes_refuse_a_folder_without_classes(tmp_path):
    (tmp_path / "flat").mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 12), i * 40, np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(ConfigError, match="use similarity.recipe=selfsup"):
        train(load_config(None, tiny(tmp_path / "flat", "triplet", 1)), tmp_path / "run", quiet=True)


def test_the_embedding_can_carry_the_conv_features_fitted_without_labels():
    """similarity.features: the head's embedding and the pooled conv features' top principal directions, each
    unit length (so cosine similarity is their mean); the loss still sees the head alone."""
    from condgan.models.embedder import Embedder

    torch.manual_seed(0)
    net, plain = Embedder(1, 8, 4, 16, features=12).eval(), Embedder(1, 8, 4, 16).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "feature_basis"})
    x = torch.randn(40, 1, 12, 12)
    with torch.no_grad():
        before = net(x)  # not fitted yet: the head's embedding, and zeros
    assert torch.allclose(before[:, :8], plain(x), atol=1e-6) and not before[:, 8:].any()
    net.fit_features(x)
    basis = net.feature_basis
    assert torch.allclose(basis.T @ basis, torch.eye(12), atol=1e-5)  # orthonormal directions
    e = net(x)
    assert e.shape == (40, 8 + 12) and net.dim == 20 and torch.allclose(e.norm(dim=1), torch.ones(40), atol=1e-5)
    head = plain(x)
    feats = torch.nn.functional.normalize(net.body(x) @ basis, dim=1)
    assert torch.allclose(e[0] @ e[1], (head[0] @ head[1] + feats[0] @ feats[1]) / 2, atol=1e-5)
    assert torch.equal(net.for_loss(x), plain.for_loss(x))
    # where a mirrored image counts as the same (flip in similarity.augment), the feature half cannot tell them apart
    from condgan.conditions import ImageField, Spec
    from condgan.tasks.similarity import SimilarityTask

    for augment, mirrored in (("[flip,shift]", True), ("[shift]", False)):
        config = load_config(None, ["task=similarity", "similarity.recipe=selfsup", "similarity.width=4",
                                    "similarity.embed_dim=8", f"similarity.augment={augment}"])
        net = SimilarityTask.build(Spec(image=ImageField(1, 12, 12)), config).eval()
        net.fit_features(x)
        with torch.no_grad():
            same = torch.allclose(net(x)[:, 8:], net(x.flip(-1))[:, 8:], atol=1e-6)
        assert net.flip_features is mirrored and same is mirrored
    for bad, why in ([["similarity.recipe=selfsup", "similarity.width=2", "similarity.features=100"], r"\(72: the pooled"],
                     [["similarity.recipe=triplet", "similarity.features=16"], "is for recipe selfsup"]):
        with pytest.raises(ConfigError, match=why):
            load_config(None, ["task=similarity", *bad])
    assert load_config(None, ["task=similarity", "similarity.recipe=selfsup", "similarity.width=2"]).similarity.features == 72


def _on_sphere(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return torch.stack([(1 - z ** 2).sqrt() * t.cos(), (1 - z ** 2).sqrt() * t.sin(), z], dim=1)


def test_graph_coordinates_bring_the_far_end_of_a_chain_of_neighbours_closer_than_a_near_other_chain():
    """Two chains of points, 0.3 apart, joined only at one end: by cosine the start of one chain is nearest the
    start of the other; on the neighbour graph it belongs with its own chain's far end."""
    from condgan.models.manifold import GraphCoordinates

    t = torch.linspace(0, 2, 201)
    a, b = _on_sphere(t, torch.full_like(t, 0.15)), _on_sphere(t, torch.full_like(t, -0.15))
    bridge = _on_sphere(torch.zeros(29), torch.linspace(0.14, -0.14, 29))
    refs = torch.cat([a, bridge, b])
    graph = GraphCoordinates(3, 1, len(refs))
    with torch.no_grad():
        assert not graph(refs).any()  # before the fit: no coordinates
        graph.fit(refs)
    start, far_end, other_start = a[10:11], a[200:201], b[10:11]
    assert start @ other_start.T > 0.9 > 0 > start @ far_end.T  # what cosine alone says
    e = torch.nn.functional.normalize(torch.cat([torch.cat([start, far_end, other_start]),
                                                 graph(torch.cat([start, far_end, other_start]))], dim=1), dim=1)
    assert e[0] @ e[1] > 0.3 > 0 > e[0] @ e[2]
    assert graph.coords.std() > 0 and torch.allclose(graph.refs, refs)
    again = GraphCoordinates(3, 1, len(refs))
    again.fit(refs)
    assert torch.equal(again.coords, graph.coords)  # the same references, the same fit


def test_the_embedding_can_carry_graph_coordinates_fitted_without_labels():
    """similarity.graph: the local embedding (head + conv features) and its graph coordinates, each unit length;
    zeros until the first fit; the loss never sees them; a small training set gives as many references."""
    from condgan.conditions import ImageField, Spec
    from condgan.tasks.similarity import SimilarityTask

    torch.manual_seed(0)
    config = load_config(None, ["task=similarity", "similarity.recipe=selfsup", "similarity.width=4", "similarity.embed_dim=8"])
    assert config.similarity.graph == 6
    net = SimilarityTask.build(Spec(image=ImageField(1, 12, 12)), config, references=30).eval()
    x = torch.randn(30, 1, 12, 12)
    net.fit_features(x)
    local_dim = 8 + config.similarity.features
    with torch.no_grad():
        before, loss_view = net(x), net.for_loss(x)
        assert net.dim == local_dim + 6 and before.shape == (30, net.dim)
        assert not before[:, local_dim:].any()  # not fitted: the local embedding alone
        net.fit_graph(x)
        after = net(x)
    assert after[:, local_dim:].abs().sum() > 0 and torch.allclose(after.norm(dim=1), torch.ones(30), atol=1e-5)
    assert torch.allclose(after[:, :local_dim] * 2 ** 0.5, before[:, :local_dim], atol=1e-5)  # two unit halves
    with torch.no_grad():
        assert torch.equal(net.for_loss(x), loss_view) and loss_view.shape == (30, 8)  # the loss sees the same
    assert SimilarityTask.build(Spec(image=ImageField(1, 12, 12)), config).graph is None  # no references, no graph
    for bad, why in ([["similarity.recipe=selfsup", "similarity.graph=-1"], "between 0 and 64"],
                     [["similarity.recipe=triplet", "similarity.graph=4"], "similarity.graph is for recipe selfsup"]):
        with pytest.raises(ConfigError, match=why):
            load_config(None, ["task=similarity", *bad])


@pytest.mark.parametrize("recipe,section,removed,old", [
    ("selfsup", "similarity", "projector", {"similarity.projector": 0}),
    ("siamese", "similarity", "pos_margin", {"similarity.pos_margin": 0.0, "similarity.margin": 1.0}),
    ("selfsup", "similarity", "neighbour_views", {"similarity.neighbour_views": 0.0}),
    ("selfsup", "similarity", "features", {"similarity.features": 0}),
    ("selfsup", "similarity", "graph", {"similarity.graph": 0}),
    ("triplet", "train", "lr_decay", {"train.lr_decay": 0.0})])
def test_a_run_from_before_a_key_existed_resumes_with_its_old_recipe(recipe, section, removed, old, world, cache, tmp_path):
    """Runs made before these keys were trained without them (today's defaults differ): resuming one keeps what
    it was, instead of failing to load its weights or changing its loss or its rates."""
    train(load_config(None, tiny(world["data"], recipe, 2, **old)), tmp_path / "old", quiet=True)
    text = (tmp_path / "old" / "config.yaml").read_text()
    assert f"  {removed}: " in text
    (tmp_path / "old" / "config.yaml").write_text("".join(line for line in text.splitlines(keepends=True)
                                                          if not line.startswith(f"  {removed}: ")))
    assert train(out=tmp_path / "old", resume=True, stop_overrides={"steps": 2}, quiet=True)["steps"] == 4
    resumed = getattr(load_config(tmp_path / "old" / "config.yaml"), section)
    assert getattr(resumed, removed) == 0
    today = load_config(None, ["task=similarity", f"similarity.recipe={recipe}"])
    assert getattr(getattr(today, section), removed) > 0


def test_a_similarity_run_says_its_own_defaults_and_nothing_of_a_generator(world, cache, tmp_path, capsys):
    train(load_config(None, tiny(world["data"], "triplet", 1)), tmp_path / "said", quiet=False)
    printed = "".join(capsys.readouterr())
    assert "similarity.augment" in printed  # what it learns to ignore, chosen by the data
    assert "class term" not in printed  # train.aux_form is G's, and a similarity run has no G
