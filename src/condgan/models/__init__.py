"""Model families, by name. Each family is a (generator, discriminator) pair;
where the label enters is marked `<- label enters` in each file."""

from torch import nn

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .resnet import ProjectionDiscriminator, ResNetGenerator

ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ProjectionDiscriminator),
}


def build_generator(arch: str, num_classes: int, z_dim: int, channels: int, image_size: int, width: int) -> nn.Module:
    return ARCHITECTURES[arch][0](num_classes, z_dim, channels, image_size, width)


def build_discriminator(arch: str, num_classes: int, channels: int, image_size: int, width: int) -> nn.Module:
    return ARCHITECTURES[arch][1](num_classes, channels, image_size, width)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
