"""The modern cGAN (Miyato & Koyama, 2018): residual G with conditional
BatchNorm, residual D with spectral norm and a projection head.

Widths are given at full resolution and double at each lower resolution, so
the expensive high-resolution layers stay thin — that is what makes this
model cheap enough per CPU-minute to beat wider plain DCGANs.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network
from torch.nn.utils.parametrizations import spectral_norm

from .embed import ConditionalBatchNorm2d


def plan_resolutions(image_size: int) -> tuple[int, int]:
    """(base resolution, number of 2x up/down steps): 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4)."""
    base, steps = image_size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base, steps = base // 2, steps + 1
    if steps == 0:
        raise ValueError(f"image_size {image_size} must be at least 8 and divisible by 2 (e.g. 28, 32, 64)")
    return base, steps


def _widths(width: int, steps: int) -> list[int]:
    """Channel widths from full resolution downwards, capped at 8x."""
    return [width * min(2**i, 8) for i in range(steps + 1)]


class GBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, num_classes: int, cond_dim: int = 0, noise_dim: int = 0):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, num_classes, cond_dim, noise_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(c_out, num_classes, cond_dim, noise_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, labels, z=None):
        h = F.interpolate(F.relu(self.bn1(x, labels, z)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels, z)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class ResNetGenerator(Network):
    """cond_dim > 0: conditioned on a vector (an exemplar's embedding) instead of a class (exemplar task).
    skip_z: the noise also enters every block's conditional BatchNorm (BigGAN), not only the first layer."""

    def __init__(self, num_classes: int, z_dim: int, channels: int, image_size: int, width: int = 32, cond_dim: int = 0,
                 skip_z: bool = False):
        super().__init__()
        self.base, steps = plan_resolutions(image_size)
        widths = _widths(width, steps)[::-1]  # low resolution first
        self.linear = nn.Linear(z_dim, widths[0] * self.base**2)
        self.skip_z = skip_z
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], num_classes, cond_dim, z_dim if skip_z else 0)
                                    for i in range(steps))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(True), nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Tanh())
        _init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(len(z), -1, self.base, self.base)
        for block in self.blocks:
            # <- label (or exemplar embedding) enters G here, in every block's BatchNorm (with skip_z, the noise too)
            h = block(h, labels, z if self.skip_z else None)
        return self.out(h)


class DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = spectral_norm(nn.Conv2d(c_in, c_out, 1)) if (c_in != c_out or downsample) else None
        self.downsample, self.first = downsample, first

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        s = x
        if self.first:  # pool before the 1x1 conv: cheaper, same function
            s = F.avg_pool2d(s, 2) if self.downsample else s
            s = self.shortcut(s) if self.shortcut is not None else s
        else:
            s = self.shortcut(s) if self.shortcut is not None else s
            s = F.avg_pool2d(s, 2) if self.downsample else s
        return (F.avg_pool2d(h, 2) if self.downsample else h) + s


class ProjectionDiscriminator(Network):
    """cond_dim > 0: the projection is onto a linear map of a condition vector instead of a class embedding."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 32, class_head: bool = True,
                 cond_dim: int = 0, twin_head: bool = False, fake_classes: bool = False,
                 class_embedding: bool = False, mbstd_group: int = 0):
        super().__init__()
        _, steps = plan_resolutions(image_size)
        self.num_classes = num_classes
        widths = _widths(width, steps)
        blocks = [DBlock(channels, widths[0], downsample=True, first=True)]
        blocks += [DBlock(widths[i - 1], widths[i], downsample=True) for i in range(1, steps)]
        blocks += [DBlock(widths[steps - 1], widths[steps], downsample=False)]
        self.blocks = nn.Sequential(*blocks)
        # mbstd_group > 0: D's pooled features also carry how alike each group's are, with a learned weight per
        # feature. Not ProGAN's extra channel before the last block: that slowed D's pass by 30-38 % here (an odd
        # channel count, and the spread over every position), and this lever has no steps to spare at 10 CPU-minutes.
        self.mbstd_group = mbstd_group
        self.mbstd_scale = nn.Parameter(torch.zeros(1, widths[steps])) if mbstd_group else None
        self.linear = spectral_norm(nn.Linear(widths[steps], 1))
        self.embed = spectral_norm(nn.Linear(cond_dim, widths[steps], bias=False) if cond_dim > 0
                                   else nn.Embedding(num_classes, widths[steps]))
        # Auxiliary classifier head (AC-GAN), built only when train.aux_weight > 0:
        # it teaches D class features from the first steps, which speeds up how
        # fast G learns to obey labels on a small compute budget.
        # fake_classes (ADC-GAN, Hou et al. 2022): the head tells 2 x num_classes apart, real images of each class
        # (logits 0..k-1) and generated ones (k..2k-1), so it also sees what marks a generated image of a class.
        outputs = 2 * num_classes if fake_classes else num_classes
        self.classifier = spectral_norm(nn.Linear(widths[steps], outputs)) if class_head else None
        # Twin classifier (TAC-GAN, Gong et al. 2019), trained on generated images only: G is rewarded for
        # fooling it, which cancels the AC-GAN term's pull towards the easiest-to-classify image of a class.
        self.twin = spectral_norm(nn.Linear(widths[steps], num_classes)) if twin_head else None
        # class_embedding (ReACGAN, Kang et al. 2021): instead of class logits, an embedding of the image and one
        # proxy vector per class, compared by cosine in the data-to-data cross-entropy (losses.data_to_data_ce).
        self.class_embed = spectral_norm(nn.Linear(widths[steps], widths[steps])) if class_embedding else None
        self.proxies = spectral_norm(nn.Embedding(num_classes, widths[steps])) if class_embedding else None
        _init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict:
        """{'score': real/fake logit, 'classes': class logits or None, 'twin': the twin head's logits or None},
        from one pass over the image."""
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        if self.mbstd_group:
            h = h + self.mbstd_scale * minibatch_stddev(h, self.mbstd_group)
        projection = (self.embed(labels) * h).sum(dim=1)  # <- label (or embedding) enters D here: inner product with features
        classes = self.classifier(h) if self.classifier is not None else None
        twin = self.twin(h) if self.twin is not None else None
        out = {"score": self.linear(h).squeeze(1) + projection, "classes": classes, "twin": twin}
        if self.class_embed is not None:
            out.update(embedding=self.class_embed(h), proxy=self.proxies(labels))
        return out


def minibatch_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """Per image, shape (n, 1): the mean standard deviation of the features x (n, c) over its group of `group`
    consecutive images (ProGAN, Karras et al. 2018). Generated batches that are too alike show a small spread,
    which D can learn to punish, so G is pushed to cover more of each class. Groups are consecutive, so a batch
    of reals followed by fakes (D's joint pass) never mixes the two while each part divides by the group size."""
    n, c = x.shape
    g = min(group, n)
    while n % g:  # a batch not divisible by the group (a dataset's last batch): the largest group that divides it
        g -= 1
    spread = x.float().reshape(n // g, g, c).var(dim=1, unbiased=False).add(1e-8).sqrt()
    return spread.mean(dim=1).to(x.dtype).repeat_interleave(g).view(n, 1)  # one figure per group, for each member


def _init(module: nn.Module) -> None:
    conditional = {id(c) for m in module.modules() if isinstance(m, ConditionalBatchNorm2d) for c in m.children()}
    for m in module.modules():
        if id(m) in conditional:  # conditional BatchNorm keeps its own identity init (gain 1, bias 0)
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.xavier_uniform_(w)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding) and hasattr(m, "parametrizations"):
            nn.init.xavier_uniform_(m.parametrizations.weight.original)
