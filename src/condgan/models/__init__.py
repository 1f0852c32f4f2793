"""Networks, by name. Each class-conditional family is a (generator,
discriminator) pair; the translator is a U-Net with a patch discriminator.
Where each condition enters is marked `<- ... enters` in each file.

Every network records its constructor arguments (base.Network), and
`rebuild` makes one again from {'class', 'arguments'} — looked up in the
closed NETWORKS registry, never by importing a name read from a file.
(The two-stage joint stage adds a small label classifier, classifier.py.)
"""

import inspect

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..untrusted import shown
from .base import Network
from .classifier import Classifier
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .embedder import Embedder, FrozenBackboneEmbedder
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
NETWORKS.update({cls.__name__: cls for cls in (Embedder, FrozenBackboneEmbedder)})


def build_generator(arch: str, num_classes: int, z_dim: int, channels: int, image_size: int, width: int,
                    skip_z: bool = False) -> nn.Module:
    if arch == "resnet":
        return ResNetGenerator(num_classes, z_dim, channels, image_size, width, skip_z=skip_z)
    if skip_z:
        raise ConfigError(f"model.g_skip_z works with model.arch=resnet only, not {arch}; leave it false")
    return ARCHITECTURES[arch][0](num_classes, z_dim, channels, image_size, width)


def build_discriminator(arch: str, num_classes: int, channels: int, image_size: int, width: int,
                        class_head: bool = False, twin_head: bool = False, fake_classes: bool = False,
                        class_embedding: bool = False, mbstd_group: int = 0) -> nn.Module:
    if arch == "resnet":
        return ProjectionDiscriminator(num_classes, channels, image_size, width, class_head=class_head,
                                       twin_head=twin_head, fake_classes=fake_classes,
                                       class_embedding=class_embedding, mbstd_group=mbstd_group)
    if mbstd_group:
        raise ConfigError(f"model.d_mbstd works with model.arch=resnet only, not {arch}; leave it at 0")
    return ARCHITECTURES[arch][1](num_classes, channels, image_size, width)


MAX_PARAMETERS = 2_000_000_000  # far beyond any condgan model; a description asking for more is broken or hostile


def rebuild(description, source: str = "model") -> Network:
    """A network from its recorded {'class', 'arguments'}; bad descriptions are CheckpointErrors.

    The arguments come from a file, so they are checked against the constructor's signature, and the
    network is first built on the 'meta' device (no memory) to count its parameters before allocating."""
    if not isinstance(description, dict) or not isinstance(description.get("arguments"), dict):
        raise CheckpointError(f"{source}: a network description must be a mapping with 'class' and 'arguments'")
    name = description.get("class")
    cls = NETWORKS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(f"{source}: unknown network class {shown(name, 80)}; known: {', '.join(NETWORKS)}")
    arguments = description["arguments"]
    signature = inspect.signature(cls.__init__)
    for key, value in arguments.items():
        parameter = signature.parameters.get(key) if isinstance(key, str) else None
        if parameter is None or key == "self":
            raise CheckpointError(f"{source}: {cls.__name__} got an unexpected argument {shown(key, 40)}")
        if not _fits(value, parameter.annotation):
            raise CheckpointError(f"{source}: {cls.__name__} argument {key} must be {parameter.annotation}, not {shown(value, 40)}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 1_000_000_000:
            raise CheckpointError(f"{source}: {cls.__name__} argument {key} = {value} is out of range")
    for key in ("image_size", "height"):
        if isinstance(arguments.get(key), int) and not 1 <= arguments[key] <= 4096:
            raise CheckpointError(f"{source}: {cls.__name__} argument {key} must be between 1 and 4096, not {arguments[key]}")
    try:
        with torch.device("meta"):
            try:
                size = count_parameters(cls(**arguments))
            except RuntimeError as e:  # e.g. "Storage size calculation overflowed"
                raise CheckpointError(f"{source}: the recorded {cls.__name__} is too large to build "
                                      f"({shown(str(e), 100)})") from None
        if size > MAX_PARAMETERS:
            raise CheckpointError(f"{source}: the recorded {cls.__name__} would have {size:,} parameters; too large to be a "
                                  f"condgan model (limit {MAX_PARAMETERS:,})")
        return cls(**arguments)
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, IndexError) as e:
        raise CheckpointError(f"{source}: cannot rebuild {cls.__name__} from its recorded arguments ({shown(str(e), 160)})") from None


def _fits(value, annotation) -> bool:
    """Whether a recorded argument has the type its constructor declares (annotations are strings here)."""
    name = getattr(annotation, "__name__", annotation)
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "bool":
        return isinstance(value, bool)
    return True  # unannotated: the meta-device build below still checks it


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
