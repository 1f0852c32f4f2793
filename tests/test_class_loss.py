"""G's class term (train.aux_form): AC-GAN cross-entropy, its margin form, TAC-GAN's twin head, ADC-GAN's
real/generated classes and ReACGAN's data-to-data cross-entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

import condgan
from condgan.config import load_config
from condgan.errors import UserError
from condgan.losses import data_to_data_ce
from condgan.tasks.class_terms import ADC, CLASS_TERMS, CrossEntropy, DataToData, Margin, Twin, class_term, d_heads
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import tiny_overrides


def test_margin_form_ignores_images_d_already_gives_their_class():
    labels = torch.tensor([0, 1])
    sure = torch.tensor([[9.0, 0.0], [0.0, 1.0]])  # image 0: p(class 0) ~ 1.0; image 1: p(class 1) = 0.73 < 0.9
    ce = F.cross_entropy(sure, labels, reduction="none")
    got = Margin(0.9).g_loss({"classes": sure}, labels, step=0)
    assert got.item() == pytest.approx((ce[1].item() + math.log(0.9)) / 2)  # image 0 contributes nothing
    assert CrossEntropy().g_loss({"classes": sure}, labels, step=0).item() == pytest.approx(ce.mean().item())


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_twin_form_rewards_fooling_the_twin_head(weight):
    labels = torch.tensor([0, 1])
    classes, twin = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.5, 0.0], [3.0, 0.0]])
    got = Twin(weight).g_loss({"classes": classes, "twin": twin}, labels, step=0)
    expected = F.cross_entropy(classes, labels).item() - weight * F.cross_entropy(twin, labels).item()
    assert got.item() == pytest.approx(expected)


def test_twin_term_joins_g_loss_at_fake_term_start():
    labels = torch.tensor([0, 1])
    outputs = {"classes": torch.tensor([[2.0, 0.0], [0.0, 2.0]]), "twin": torch.tensor([[0.5, 0.0], [3.0, 0.0]])}
    ce, twin = F.cross_entropy(outputs["classes"], labels).item(), F.cross_entropy(outputs["twin"], labels).item()
    form = Twin(weight=0.5, start=3)
    seen = [form.g_loss(outputs, labels, step).item() for step in range(5)]
    assert seen == pytest.approx([ce] * 3 + [ce - 0.5 * twin] * 2)


def test_twin_head_trains_on_generated_images_and_resumes(shoes_dir, tmp_path):
    overrides = tiny_overrides(shoes_dir, steps=4, **{"train.aux_form": "twin", "train.deterministic": True})
    train(load_config(None, overrides), tmp_path / "run", quiet=True)
    state = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000004.pt")["state"]
    twin = [k for k in state["D"] if k.startswith("twin.")]
    assert twin, "the twin D has no twin head"
    torch.manual_seed(0)
    from condgan.models import build_discriminator

    init = build_discriminator("resnet", 3, 1, 16, 4, class_head=True, twin_head=True).state_dict()
    assert any(not torch.equal(state["D"][k], init[k]) for k in twin if k in init), "the twin head never learned"
    summary = train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 2}, quiet=True)
    assert summary["steps"] == 6
    images, _ = condgan.load(tmp_path / "run").sample_per_class(2, seed=0)
    assert images.shape[0] == 6


def test_adc_form_rewards_real_of_the_class_over_generated_of_the_class():
    labels = torch.tensor([0, 1])
    # two classes -> four logits: real class 0, real class 1, generated class 0, generated class 1
    classes = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 0.5, 0.0, 3.0]])
    got = ADC(weight=0.5).g_loss({"classes": classes}, labels, step=0)
    expected = F.cross_entropy(classes, labels).item() - 0.5 * F.cross_entropy(classes, labels + 2).item()
    assert got.item() == pytest.approx(expected)
    late = ADC(weight=0.5, start=2)  # before fake_term_start: the plain cross-entropy
    assert late.g_loss({"classes": classes}, labels, step=1).item() == pytest.approx(F.cross_entropy(classes, labels).item())


def test_adc_head_learns_generated_classes_and_resumes(shoes_dir, tmp_path):
    """D's class head has a logit per (class, real or generated); D learns the generated ones (they exist only
    through its loss on fakes), and the run resumes and samples from its checkpoint."""
    overrides = tiny_overrides(shoes_dir, steps=4, **{"train.aux_form": "adc", "train.deterministic": True})
    train(load_config(None, overrides), tmp_path / "run", quiet=True)
    state = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000004.pt")["state"]
    assert state["D"]["classifier.bias"].shape == (6,)  # 3 classes, real and generated
    from condgan.models import build_discriminator

    torch.manual_seed(0)
    init = build_discriminator("resnet", 3, 1, 16, 4, class_head=True, fake_classes=True).state_dict()
    assert not torch.equal(state["D"]["classifier.bias"][3:], init["classifier.bias"][3:]), "generated classes never learned"
    summary = train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 2}, quiet=True)
    assert summary["steps"] == 6
    images, _ = condgan.load(tmp_path / "run").sample_per_class(2, seed=0)
    assert images.shape[0] == 6


def test_data_to_data_ce_is_a_softmax_over_proxy_and_other_classes():
    e = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    proxy = torch.tensor([[0.8, 0.6], [0.8, 0.6], [0.0, 2.0]])  # not unit length: the loss normalises
    labels = torch.tensor([0, 0, 1])
    got = data_to_data_ce(e, proxy, labels, temperature=0.5, positive_margin=0.98)
    # image 0: positive cos 0.8; its only negative is image 2 (image 1 shares its class), cos 0 -> clamped to 0.02
    # image 1: positive cos 0.96; negative image 2, cos 0.8.  image 2: positive cos 1 -> capped at 0.98;
    # negatives images 0 and 1, cos 0 (-> 0.02) and 0.8
    def term(pos, negs):
        logits = torch.tensor([pos] + negs) / 0.5
        return (torch.logsumexp(logits, 0) - logits[0]).item()
    expected = (term(0.8, [0.02]) + term(0.96, [0.8]) + term(0.98, [0.02, 0.8])) / 3
    assert got.item() == pytest.approx(expected, abs=1e-5)


def test_data_to_data_ce_leaves_easy_images_alone():
    """An image already within the positive margin of its proxy, with no other class nearby, gets no gradient:
    it is not pushed further towards a prototype (the reason for the form)."""
    e = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], requires_grad=True)
    proxy = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.7, 0.7], [0.0, 1.0, 0.0]])
    data_to_data_ce(e, proxy, torch.tensor([0, 1, 2])).backward()
    assert e.grad[0].abs().max() == 0 and e.grad[2].abs().max() == 0  # cos 1 with their proxies
    assert e.grad[1].abs().max() > 0  # cos 0.71 with its proxy: still pulled


def test_d2d_form_trains_resumes_and_samples(shoes_dir, tmp_path):
    overrides = tiny_overrides(shoes_dir, steps=3, **{"train.aux_form": "d2d"})
    train(load_config(None, overrides), tmp_path / "run", quiet=True)
    state = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000003.pt")["state"]
    assert any(k.startswith("proxies.") for k in state["D"]) and not any(k.startswith("classifier.") for k in state["D"])
    assert train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 2}, quiet=True)["steps"] == 5
    images, _ = condgan.load(tmp_path / "run").sample_per_class(2, seed=0)
    assert images.shape[0] == 6


@pytest.mark.parametrize("overrides,message", [
    (["train.aux_form=focal"], "train.aux_form must be one of ce, margin, twin, adc, d2d"),
    (["train.aux_form=margin", "train.aux_confidence=1.0"], "train.aux_confidence must be between 0 and 1"),
    (["train.aux_form=twin", "train.twin_weight=2"], "train.twin_weight must be in"),
    (["train.aux_form=twin", "train.fake_term_start=-5"], "train.fake_term_start must be between 0"),
    (["train.aux_form=adc", "train.adc_weight=1.5"], "train.adc_weight must be in"),
    (["train.twin_start=2", "train.fake_term_start=3"], "train.twin_start is the old name of train.fake_term_start"),
    (["train.aux_form=twin", "model.arch=dcgan"], "train.aux_form=twin needs --task cgan with model.arch=resnet"),
    (["train.aux_form=adc", "task=two-stage"], "train.aux_form=adc needs --task cgan with model.arch=resnet"),
])
def test_bad_class_term_settings_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, overrides)


def test_default_class_term_is_adc_at_every_size_and_recorded(shoes_dir, tmp_path, capsys):
    """Unset, G's class term is adc for the resnet (at Fashion-MNIST's size and on 64-px folders); it is logged
    and written to config.yaml with its weights, so a resumed run keeps it whatever the defaults become."""
    import yaml

    overrides = [o for o in tiny_overrides(shoes_dir, steps=1) if not o.startswith("train.aux_form")]
    train(load_config(None, overrides), tmp_path / "small", quiet=False)
    recorded = yaml.safe_load((tmp_path / "small" / "config.yaml").read_text())["train"]
    assert (recorded["aux_form"], recorded["adc_weight"], recorded["diversity_weight"]) == ("adc", 0.1, 0.75)
    assert "G's class term (train.aux_form) adc by default" in capsys.readouterr().err
    state = ckpt.safe_load(ckpt.list_checkpoints(tmp_path / "small" / "checkpoints")[-1])["state"]
    assert state["D"]["classifier.bias"].shape == (6,)  # real and generated classes
    train(load_config(None, overrides + ["data.image_size=64"]), tmp_path / "large", quiet=True)
    recorded = yaml.safe_load((tmp_path / "large" / "config.yaml").read_text())["train"]
    assert (recorded["aux_form"], recorded["adc_weight"], recorded["diversity_weight"]) == ("adc", 0.1, 0.75)
    dcgan = overrides + ["model.arch=dcgan", "train.loss=lsgan"]  # no class head in D: the plain cross-entropy
    train(load_config(None, dcgan), tmp_path / "dcgan", quiet=True)
    assert yaml.safe_load((tmp_path / "dcgan" / "config.yaml").read_text())["train"]["aux_form"] == "ce"


# --------------------------------------------------------------------------- the form objects and the renamed keys

def _old_class_loss_d(form: str, on_real: dict, on_fake: dict, labels):
    """GANStep.class_loss_d as it was before the forms became objects (the reference arithmetic)."""
    if form == "d2d":
        return data_to_data_ce(on_real["embedding"], on_real["proxy"], labels)
    loss = F.cross_entropy(on_real["classes"], labels)
    if on_fake.get("twin") is not None:
        loss = loss + F.cross_entropy(on_fake["twin"], labels)
    if form == "adc":
        loss = loss + F.cross_entropy(on_fake["classes"], labels + on_fake["classes"].shape[1] // 2)
    return loss


def _old_class_loss_g(form: str, on_fake: dict, labels, steps_done: int, confidence: float, weight: float, start: int):
    """GANStep.class_loss_g as it was (twin_weight and twin_start then meant both twin's and adc's settings)."""
    if form == "d2d":
        return data_to_data_ce(on_fake["embedding"], on_fake["proxy"], labels)
    ce = F.cross_entropy(on_fake["classes"], labels, reduction="none")
    if form == "margin":
        ce = F.relu(ce + math.log(confidence))
    loss = ce.mean()
    if form == "twin" and steps_done >= start:
        loss = loss - weight * F.cross_entropy(on_fake["twin"], labels)
    if form == "adc" and steps_done >= start:
        loss = loss - weight * F.cross_entropy(on_fake["classes"], labels + on_fake["classes"].shape[1] // 2)
    return loss


def _outputs(form: str, g: torch.Generator, n: int = 6, k: int = 3) -> dict:
    """D's outputs on n images of k classes, with the heads `form` asks for."""
    out = {"score": torch.randn(n, generator=g), "classes": None, "twin": None}
    if form == "d2d":
        out.update(embedding=torch.randn(n, 5, generator=g), proxy=torch.randn(n, 5, generator=g))
    else:
        out["classes"] = torch.randn(n, 2 * k if form == "adc" else k, generator=g) * 3
    if form == "twin":
        out["twin"] = torch.randn(n, k, generator=g) * 3
    return out


@pytest.mark.parametrize("form", ["ce", "margin", "twin", "adc", "d2d"])
def test_each_form_object_computes_the_old_arithmetic_bit_for_bit(form):
    g = torch.Generator().manual_seed(7)
    labels = torch.tensor([0, 1, 2, 0, 1, 1])
    train_section = load_config(None, [f"train.aux_form={form}", "train.aux_confidence=0.8", "train.twin_weight=0.3",
                                       "train.adc_weight=0.3", "train.fake_term_start=2"]).train
    term = class_term(train_section)
    assert type(term) is CLASS_TERMS[form] and term.name == form
    for step in range(4):  # before and after the generated-image term joins
        on_real, on_fake = _outputs(form, g), _outputs(form, g)
        assert torch.equal(term.d_loss(on_real, on_fake, labels), _old_class_loss_d(form, on_real, on_fake, labels))
        old = _old_class_loss_g(form, on_fake, labels, step, confidence=0.8, weight=0.3, start=2)
        assert torch.equal(term.g_loss(on_fake, labels, step), old)


def test_each_form_asks_d_for_the_heads_the_old_branches_built():
    for form in ("ce", "margin", "twin", "adc", "d2d", None):
        old = dict(class_head=form not in (None, "d2d"), twin_head=form == "twin", fake_classes=form == "adc",
                   class_embedding=form == "d2d")
        assert d_heads(form) == old, form
    assert DataToData().heads == ("class_embedding",)


def test_old_adc_keys_load_under_the_new_names_with_one_notice(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("train:\n  aux_form: adc\n  twin_weight: 0.2\n  twin_start: 5\n")
    with pytest.warns(FutureWarning) as notices:
        t = load_config(old).train
    assert (t.aux_form, t.adc_weight, t.fake_term_start, t.twin_weight) == ("adc", 0.2, 5, 0.0)
    assert len(notices) == 1
    message = str(notices[0].message)
    assert all(k in message for k in ("train.twin_weight", "train.adc_weight", "train.twin_start", "train.fake_term_start"))
    assert class_term(t) == ADC(weight=0.2, start=5)
    with pytest.warns(FutureWarning) as notices:  # twin's weight keeps its name; only the start key moves
        t = load_config(None, ["train.aux_form=twin", "train.twin_weight=0.5", "train.twin_start=3"]).train
    assert (t.twin_weight, t.adc_weight, t.fake_term_start) == (0.5, 0.0, 3) and len(notices) == 1
    assert "twin_weight" not in str(notices[0].message)


def test_config_with_todays_names_loads_without_a_notice(recwarn):
    t = load_config(None, ["train.aux_form=adc", "train.adc_weight=0.2", "train.fake_term_start=5"]).train
    assert (t.adc_weight, t.fake_term_start) == (0.2, 5)
    load_config(None, ["train.aux_form=twin", "train.twin_weight=0.5"])
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_a_run_written_with_the_old_names_resumes_exactly_as_with_the_new(shoes_dir, tmp_path):
    """An adc run whose config.yaml has the old keys (twin_weight as adc's weight, twin_start) trains on as the
    same run with today's keys does."""
    import shutil

    import yaml

    overrides = tiny_overrides(shoes_dir, steps=2, **{"train.aux_form": "adc", "train.adc_weight": 0.3,
                                                      "train.fake_term_start": 1, "train.deterministic": True})
    train(load_config(None, overrides), tmp_path / "new", quiet=True)
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    written = yaml.safe_load((tmp_path / "old" / "config.yaml").read_text())
    t = written["train"]
    t["twin_weight"], t["twin_start"] = t.pop("adc_weight"), t.pop("fake_term_start")
    (tmp_path / "old" / "config.yaml").write_text(yaml.safe_dump(written, sort_keys=False))
    train(out=tmp_path / "new", resume=True, stop_overrides={"steps": 2}, quiet=True)
    with pytest.warns(FutureWarning, match="train.twin_start -> train.fake_term_start"):
        train(out=tmp_path / "old", resume=True, stop_overrides={"steps": 2}, quiet=True)
    new, old = (ckpt.safe_load(run / "checkpoints" / "step_00000004.pt")["state"] for run in (tmp_path / "new", tmp_path / "old"))
    for net in ("G", "D", "G_ema"):
        assert all(torch.equal(new[net][k], old[net][k]) for k in new[net]), net
