"""Paired-translation networks: U-Net generator and patch discriminator."""

import pytest
import torch

from condgan.models.patch import PatchDiscriminator, plan_patch_layers
from condgan.models.unet import UNetGenerator, plan_depth


def _randomise_label_embeddings(*nets):
    """Make label embeddings non-trivial, as after training (CBN starts at gain 1, bias 0)."""
    with torch.no_grad():
        for net in nets:
            for m in net.modules():
                if isinstance(m, torch.nn.Embedding):
                    w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                    w.normal_()


def test_depth_and_patch_plans():
    assert [plan_depth(s, s) for s in (8, 16, 28, 32, 64, 256)] == [2, 2, 3, 3, 4, 6]
    assert plan_depth(30, 44) == 3  # shorter side decides
    assert [plan_patch_layers(s, s) for s in (8, 16, 28, 32, 64, 256)] == [2, 2, 2, 2, 3, 3]
    assert plan_patch_layers(6, 6) == 1  # never below a 2x2 score map


@pytest.mark.parametrize(
    "height,width,source_channels,channels",
    [(28, 28, 1, 1), (32, 32, 3, 3), (64, 64, 1, 3), (30, 44, 3, 1), (16, 16, 1, 1)],
)
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes(height, width, source_channels, channels, num_classes):
    torch.manual_seed(0)
    G = UNetGenerator(source_channels, channels, height, width, z_dim=4, base_width=4, num_classes=num_classes)
    D = PatchDiscriminator(channels, source_channels, height, width, base_width=4, num_classes=num_classes)
    source = torch.rand(2, source_channels, height, width) * 2 - 1
    labels = torch.tensor([0, 2]) if num_classes else None
    x = G(torch.randn(2, 4), source, labels)
    assert x.shape == (2, channels, height, width)
    assert x.min() >= -1 and x.max() <= 1
    out = D(x, source, labels)
    assert set(out) == {"score", "classes", "features"}
    score = out["score"]
    assert score.dim() == 4 and score.shape[:2] == (2, 1) and min(score.shape[2:]) >= 2
    assert out["classes"] is None
    assert len(out["features"]) == len(D.convs) and all(f.shape[0] == 2 for f in out["features"])


def test_other_input_size_than_planned():
    """Planning size fixes the depth, but any input size is padded and cropped back."""
    G = UNetGenerator(1, 1, 32, 32, z_dim=2, base_width=4)
    assert G(torch.randn(2, 2), torch.randn(2, 1, 21, 37)).shape == (2, 1, 21, 37)


def test_noise_changes_the_output():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 28, 28, z_dim=8, base_width=8)
    source = torch.randn(1, 1, 28, 28).repeat(4, 1, 1, 1)
    z = torch.randn(4, 8)
    for mode in (G.train, G.eval):
        mode()
        with torch.no_grad():
            x = G(z, source)
        assert (x[0] - x[1]).abs().max() > 1e-4


def test_zero_noise_dim():
    G = UNetGenerator(1, 1, 28, 28, z_dim=0, base_width=4)
    assert G(None, torch.randn(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError):
        UNetGenerator(1, 1, 28, 28, z_dim=4, base_width=4)(None, torch.randn(2, 1, 28, 28))


def test_labels_steer_both_networks():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 28, 28, z_dim=4, base_width=8, num_classes=3).eval()
    D = PatchDiscriminator(1, 1, 28, 28, base_width=8, num_classes=3).eval()
    _randomise_label_embeddings(G, D)
    y = torch.arange(3)
    source = torch.randn(1, 1, 28, 28).repeat(3, 1, 1, 1)
    with torch.no_grad():
        x = G(torch.randn(1, 4).repeat(3, 1), source, y)
        assert (x[0] - x[1]).abs().max() > 1e-4
        score = D(x[:1].repeat(3, 1, 1, 1), source, y)["score"]
        assert (score[0] - score[1]).abs().max() > 1e-6
    with pytest.raises(ValueError):
        G(torch.randn(3, 4), source)  # class-conditional G without labels
    with pytest.raises(ValueError):
        D(x, source)


def test_source_changes_the_score():
    D = PatchDiscriminator(1, 1, 28, 28, base_width=4).eval()
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        a, b = D(x, torch.randn(1, 1, 28, 28))["score"], D(x, torch.randn(1, 1, 28, 28))["score"]
    assert (a - b).abs().max() > 1e-6


def test_class_head():
    D = PatchDiscriminator(1, 1, 28, 28, base_width=4, num_classes=5, class_head=True)
    out = D(torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 4]))
    assert out["classes"].shape == (3, 5)
    assert not any("classifier" in name for name, _ in PatchDiscriminator(1, 1, 28, 28, num_classes=5).named_parameters())
    assert not any("embed" in name for name, _ in PatchDiscriminator(1, 1, 28, 28).named_parameters())
    with pytest.raises(ValueError):
        PatchDiscriminator(1, 1, 28, 28, class_head=True)  # a classifier needs classes


def test_explicit_n_layers():
    D = PatchDiscriminator(1, 1, 64, 64, base_width=4, n_layers=4)
    assert D(torch.randn(1, 1, 64, 64), torch.randn(1, 1, 64, 64))["score"].shape == (1, 1, 4, 4)
    with pytest.raises(ValueError):
        PatchDiscriminator(1, 1, 28, 28, n_layers=4)  # 28 / 16 < 2: score map too small


@pytest.mark.parametrize(
    "net",
    [
        UNetGenerator(3, 1, 30, 44, z_dim=3, base_width=4, num_classes=2, dropout=0.5),
        UNetGenerator(1, 3, 28, 28, z_dim=0, base_width=4),
        PatchDiscriminator(1, 3, 30, 44, base_width=4, num_classes=2, class_head=True, n_layers=1),
        PatchDiscriminator(3, 3, 64, 64, base_width=4),
    ],
    ids=["unet-cond", "unet-plain", "patch-head", "patch-plain"],
)
def test_arguments_round_trip(net):
    import json

    arguments = json.loads(json.dumps(net.arguments))  # plain JSON values only
    rebuilt = type(net)(**arguments)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    rebuilt.load_state_dict(net.state_dict())


@pytest.mark.parametrize("num_classes", [0, 3])
def test_gradients_reach_every_generator_parameter(num_classes):
    torch.manual_seed(0)
    G = UNetGenerator(1, 3, 28, 28, z_dim=4, base_width=4, num_classes=num_classes, dropout=0.5)
    labels = torch.arange(4) % 3 if num_classes else None
    G(torch.randn(4, 4), torch.randn(4, 1, 28, 28), labels).square().mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_discriminator_gradients_reach_every_parameter():
    D = PatchDiscriminator(1, 1, 28, 28, base_width=4, num_classes=3, class_head=True)
    out = D(torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28), torch.arange(4) % 3)
    (out["score"].mean() + out["classes"].square().mean()).backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_channels_last():
    torch.manual_seed(0)
    G = UNetGenerator(3, 3, 30, 44, z_dim=4, base_width=4, num_classes=2).eval()
    D = PatchDiscriminator(3, 3, 30, 44, base_width=4, num_classes=2, class_head=True).eval()
    source, z, y = torch.randn(2, 3, 30, 44), torch.randn(2, 4), torch.tensor([0, 1])
    with torch.no_grad():
        x = G(z, source, y)
        score = D(x, source, y)["score"]
        source_cl, x_cl = (t.contiguous(memory_format=torch.channels_last) for t in (source, x))
        torch.testing.assert_close(G(z, source_cl, y), x, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(D(x_cl, source_cl, y)["score"], score, atol=1e-5, rtol=1e-4)
        G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        torch.testing.assert_close(G(z, source_cl, y), x, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(D(x_cl, source_cl, y)["score"], score, atol=1e-5, rtol=1e-4)
