"""Adversarial losses. Each is a pair: D's loss on (real, fake) logits and G's
loss on fake logits. Any model can use any loss."""

import torch
import torch.nn.functional as F


def bce_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()  # non-saturating: strong gradients when D wins


def lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LOSSES = {"bce": (bce_d, bce_g), "lsgan": (lsgan_d, lsgan_g), "hinge": (hinge_d, hinge_g)}


def mode_seeking(images: torch.Tensor, z: torch.Tensor, labels: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Diversity term for G (MSGAN, Mao et al. 2019), to minimise.

    For pairs of the batch that share a label, the ratio of image distance to
    noise distance should stay large: otherwise different noises give the same
    image, which is mode collapse inside a class.
    """
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    same = labels[i] == labels[j]
    i, j = i[same], j[same]
    if len(i) == 0:
        return images.new_zeros(())
    image_distance = (images[i] - images[j]).abs().flatten(1).mean(1)
    noise_distance = (z[i] - z[j]).abs().mean(1)
    return 1.0 / ((image_distance / noise_distance).mean() + eps)


def feature_matching(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between D's intermediate features of generated and real pairs (pix2pixHD), to minimise.

    It gives G a dense, stable signal about what D has learnt beyond one score per patch.
    """
    if not fake_features:
        raise ValueError("train.feature_matching needs a discriminator that returns its features (model.arch=unet)")
    terms = [(f - r).abs().mean() for f, r in zip(fake_features, real_features)]
    return torch.stack(terms).mean()


def data_to_data_ce(embedding: torch.Tensor, proxy: torch.Tensor, labels: torch.Tensor,
                    temperature: float = 0.5, positive_margin: float = 0.98) -> torch.Tensor:
    """ReACGAN's data-to-data cross-entropy (Kang et al. 2021), to minimise: a softmax over one positive, the
    cosine of each image's embedding with its class proxy, and the cosines with the batch's images of other
    classes. Unlike AC-GAN's cross-entropy it stops pulling once the cosine reaches positive_margin, and
    negatives less similar than 1 - positive_margin stop pushing: the image is not driven towards one
    prototype of its class. Same-class images of the batch are not negatives (false negatives)."""
    e, p = F.normalize(embedding, dim=1), F.normalize(proxy, dim=1)
    positive = (e * p).sum(dim=1).clamp(max=positive_margin) / temperature
    negatives = (e @ e.T).clamp(min=1 - positive_margin) / temperature
    negatives = negatives.masked_fill(labels[:, None] == labels[None, :], float("-inf"))  # also the diagonal
    return (torch.logsumexp(torch.cat([positive[:, None], negatives], dim=1), dim=1) - positive).mean()


def lecam(real: torch.Tensor, fake: torch.Tensor, real_anchor: float, fake_anchor: float) -> torch.Tensor:
    """LeCam regulariser for D (Tseng et al. 2021), to minimise: D's scores of real images are pulled no higher
    than the moving average of its scores of fakes, and fakes' no lower than that of reals'. It bounds how far
    D can separate the two on a small dataset, where D otherwise memorises the reals and its gradients stop
    teaching G (the paper's limited-data case)."""
    return torch.relu(real - fake_anchor).pow(2).mean() + torch.relu(real_anchor - fake).pow(2).mean()
