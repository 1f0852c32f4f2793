import pytest
import torch

from condgan.losses import LOSSES, mode_seeking
from condgan.models import build_discriminator, build_generator
from condgan.models.resnet import plan_resolutions


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (16, 1)])
def test_shapes_and_range(arch, size, channels):
    torch.manual_seed(0)
    G = build_generator(arch, 5, 8, channels, size, 8)
    D = build_discriminator(arch, 5, channels, size, 8)
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 4])
    x = G(z, y)
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    out = D(x, y)
    assert out["score"].shape == (4,) and out["classes"] is None


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_label_steers_both_networks(arch):
    """Same noise, different label -> different image; same image, different label -> different score."""
    torch.manual_seed(0)
    G = build_generator(arch, 3, 8, 1, 16, 8).eval()
    D = build_discriminator(arch, 3, 1, 16, 8).eval()
    with torch.no_grad():
        # make the label embeddings non-trivial, as after training
        for m in list(G.modules()) + list(D.modules()):
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_()
        z = torch.randn(1, 8).repeat(3, 1)
        y = torch.arange(3)
        images = G(z, y)
        assert (images[0] - images[1]).abs().max() > 1e-4
        scores = D(images[:1].repeat(3, 1, 1, 1), y)["score"]
        assert (scores[0] - scores[1]).abs() > 1e-6


def test_plan_resolutions():
    assert plan_resolutions(28) == (7, 2)
    assert plan_resolutions(32) == (4, 3)
    assert plan_resolutions(64) == (4, 4)
    with pytest.raises(ValueError):
        plan_resolutions(7)


def test_losses_prefer_real_over_fake():
    high, low = torch.full((8,), 3.0), torch.full((8,), -3.0)
    for name, (d_loss, g_loss) in LOSSES.items():
        assert d_loss(high, low) < d_loss(low, high), name  # D is rewarded for scoring real high
        assert g_loss(high) < g_loss(low), name              # G is rewarded when fakes score high


def test_mode_seeking_penalises_collapse_within_a_class():
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    z = torch.randn(6, 8, generator=gen)
    varied = torch.rand(6, 1, 4, 4, generator=gen) * 2 - 1
    collapsed = varied[[0, 0, 0, 3, 3, 3]] + 0.01 * torch.randn(6, 1, 4, 4, generator=gen)
    assert mode_seeking(collapsed, z, labels) > 10 * mode_seeking(varied, z, labels)
    assert mode_seeking(varied, z, torch.arange(6)) == 0  # no two images share a label: nothing to compare


def test_class_head_exists_only_when_asked_for():
    with_head = build_discriminator("resnet", 5, 1, 16, 4, class_head=True)
    without = build_discriminator("resnet", 5, 1, 16, 4)
    x, y = torch.randn(3, 1, 16, 16), torch.tensor([0, 1, 4])
    assert with_head(x, y)["classes"].shape == (3, 5)
    assert without(x, y)["classes"] is None
    assert not any(k.startswith("classifier") for k in without.state_dict())


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_networks_rebuild_from_their_recorded_arguments(arch):
    from condgan.models import rebuild

    for net in (build_generator(arch, 3, 8, 1, 16, 4), build_discriminator(arch, 3, 1, 16, 4)):
        again = rebuild(net.describe())
        assert type(again) is type(net)
        assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_rebuild_refuses_unknown_classes_and_bad_arguments():
    from condgan.errors import CheckpointError
    from condgan.models import rebuild

    with pytest.raises(CheckpointError, match="unknown network class 'os.system'"):
        rebuild({"class": "os.system", "arguments": {}})
    with pytest.raises(CheckpointError, match="ResNetGenerator got an unexpected argument 'bogus'"):
        rebuild({"class": "ResNetGenerator", "arguments": {"bogus": 1}})
    with pytest.raises(CheckpointError, match="cannot rebuild ResNetGenerator"):  # a required argument missing
        rebuild({"class": "ResNetGenerator", "arguments": {"z_dim": 8}})
    with pytest.raises(CheckpointError, match="too large"):  # refused before anything is allocated
        rebuild({"class": "ResNetGenerator", "arguments": {"num_classes": 3, "z_dim": 8, "channels": 1, "image_size": 16,
                                                            "width": 10_000_000}})
