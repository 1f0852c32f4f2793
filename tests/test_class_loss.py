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
from condgan.tasks.gan import GANStep
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import tiny_overrides


def _step(form: str, confidence: float = 0.9, twin_weight: float = 1.0, twin_start: int = 0) -> GANStep:
    G, D = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)  # class_loss_g reads only D's outputs
    return GANStep(G, D, loss="hinge", lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), ema_decay=0.0, ema_start=0,
                   augment_policy=[], z_dim=1, aux_weight=1.0, aux_form=form, aux_confidence=confidence,
                   twin_weight=twin_weight, twin_start=twin_start)


def test_margin_form_ignores_images_d_already_gives_their_class():
    labels = torch.tensor([0, 1])
    sure = torch.tensor([[9.0, 0.0], [0.0, 1.0]])  # image 0: p(class 0) ~ 1.0; image 1: p(class 1) = 0.73 < 0.9
    ce = F.cross_entropy(sure, labels, reduction="none")
    got = _step("margin", 0.9).class_loss_g({"classes": sure}, labels)
    assert got.item() == pytest.approx((ce[1].item() + math.log(0.9)) / 2)  # image 0 contributes nothing
    assert _step("ce").class_loss_g({"classes": sure}, labels).item() == pytest.approx(ce.mean().item())


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_twin_form_rewards_fooling_the_twin_head(weight):
    labels = torch.tensor([0, 1])
    classes, twin = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.5, 0.0], [3.0, 0.0]])
    got = _step("twin", twin_weight=weight).class_loss_g({"classes": classes, "twin": twin}, labels)
    expected = F.cross_entropy(classes, labels).item() - weight * F.cross_entropy(twin, labels).item()
    assert got.item() == pytest.approx(expected)


def test_twin_term_joins_g_loss_at_twin_start():
    labels = torch.tensor([0, 1])
    outputs = {"classes": torch.tensor([[2.0, 0.0], [0.0, 2.0]]), "twin": torch.tensor([[0.5, 0.0], [3.0, 0.0]])}
    ce, twin = F.cross_entropy(outputs["classes"], labels).item(), F.cross_entropy(outputs["twin"], labels).item()
    step = _step("twin", twin_weight=0.5, twin_start=3)
    seen = []
    for steps_done in range(5):
        step.steps_done = steps_done
        seen.append(step.class_loss_g(outputs, labels).item())
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
    got = _step("adc", twin_weight=0.5).class_loss_g({"classes": classes}, labels)
    expected = F.cross_entropy(classes, labels).item() - 0.5 * F.cross_entropy(classes, labels + 2).item()
    assert got.item() == pytest.approx(expected)
    step = _step("adc", twin_weight=0.5, twin_start=2)  # before twin_start: the plain cross-entropy
    assert step.class_loss_g({"classes": classes}, labels).item() == pytest.approx(F.cross_entropy(classes, labels).item())


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
    (["train.aux_form=twin", "train.twin_start=-5"], "train.twin_start must be between 0"),
    (["train.aux_form=twin", "model.arch=dcgan"], "train.aux_form=twin needs --task cgan with model.arch=resnet"),
    (["train.aux_form=adc", "task=two-stage"], "train.aux_form=adc needs --task cgan with model.arch=resnet"),
])
def test_bad_class_term_settings_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config(None, overrides)


def test_default_class_term_is_adc_up_to_32_px_and_recorded(shoes_dir, tmp_path, capsys):
    """Unset, G's class term follows the image size (adc at Fashion-MNIST's size, ce on 64-px folders), is
    logged, and is written to config.yaml with its weights, so a resumed run keeps it whatever the defaults
    become."""
    import yaml

    overrides = [o for o in tiny_overrides(shoes_dir, steps=1) if not o.startswith("train.aux_form")]
    train(load_config(None, overrides), tmp_path / "small", quiet=False)
    recorded = yaml.safe_load((tmp_path / "small" / "config.yaml").read_text())["train"]
    assert (recorded["aux_form"], recorded["twin_weight"], recorded["diversity_weight"]) == ("adc", 0.1, 0.75)
    assert "G's class term (train.aux_form) adc by default" in capsys.readouterr().err
    state = ckpt.safe_load(ckpt.list_checkpoints(tmp_path / "small" / "checkpoints")[-1])["state"]
    assert state["D"]["classifier.bias"].shape == (6,)  # real and generated classes
    train(load_config(None, overrides + ["data.image_size=64"]), tmp_path / "large", quiet=True)
    recorded = yaml.safe_load((tmp_path / "large" / "config.yaml").read_text())["train"]
    assert (recorded["aux_form"], recorded["diversity_weight"]) == ("ce", 0.5)
