"""Networks, by name. Each class-conditional family is a (generator,
discriminator) pair; the translator is a U-Net with a patch discriminator.
Where each condition enters is marked `<- ... enters` in each file.

Every network records its constructor arguments (base.Network), and
`rebuild` makes one again from {'class', 'arguments'} — looked up in the
closed NETWORKS registry, never by importing a name read from a file.
(The two-stage joint stage adds a small label classifier, classifier.py.)
"""

from torch import nn

from ..errors import CheckpointError
from .base import Network
from .classifier import Classifier
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator
from .patch import PatchDiscriminator
from .resnet import ProjectionDiscriminator, ResNetGenerator
from .unet import UNetGenerator

ARCHITECTURES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ProjectionDiscriminator),
    "unet": (UNetGenerator, PatchDiscriminator),
}
NETWORKS = {cls.__name__: cls for pair in ARCHITECTURES.values() for cls in pair} | {"Classifier": Classifier}


def build_generator(arch: str, num_classes: int, z_dim: int, channels: int, image_size: int, width: int) -> nn.Module:
    return ARCHITECTURES[arch][0](num_classes, z_dim, channels, image_size, width)


def build_discriminator(arch: str, num_classes: int, channels: int, image_size: int, width: int,
                        class_head: bool = False) -> nn.Module:
    if arch == "resnet":
        return ProjectionDiscriminator(num_classes, channels, image_size, width, class_head=class_head)
    return ARCHITECTURES[arch][1](num_classes, channels, image_size, width)


def rebuild(description) -> Network:
    """A network from its recorded {'class', 'arguments'}; bad descriptions are CheckpointErrors."""
    if not isinstance(description, dict) or not isinstance(description.get("arguments"), dict):
        raise CheckpointError("a network description must be a mapping with 'class' and 'arguments'")
    cls = NETWORKS.get(description.get("class"))
    if cls is None:
        raise CheckpointError(f"unknown network class {str(description.get('class'))[:80]!r}; "
                              f"known: {', '.join(NETWORKS)}")
    try:
        return cls(**description["arguments"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot rebuild {cls.__name__} from its recorded arguments ({e})") from None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
