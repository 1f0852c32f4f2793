"""Numbers that say whether a conditional generator obeys its labels, and how real its images look.

Every metric is computed in the evaluator's 128-d feature space (not
Inception: see evaluator.py) against the real *train* split, and the same
metric for the real *test* split is the "real-data floor": the best a perfect
model could hope for with that many samples. Overall FID alone is blind to
labels (a model that draws a sandal when asked for a coat can still match the
overall distribution), hence per-class FID and conditioning accuracy.

Real-side work (train features, k-NN radii, test-to-train distances) is done
once per evaluator and class list and cached next to the evaluator, so scoring
10,000 generated images only pays for those images.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ..data import ImageSet
from ..errors import UserError
from .evaluator import Evaluator

K_NEAREST = 5  # k of the k-NN manifold metrics, as in Naeem et al. 2020
PRDC_MAX = 10_000  # sets are subsampled to this size for the k-NN metrics (their cost is quadratic)
DIVERSITY_MAX = 1_000  # per class, for the mean pairwise distance
COPY_QUANTILE = 0.01  # a generated image closer to the train set than 99% of real test images is a suspected copy
REFERENCE_VERSION = 2
# Fewest images a metric needs (FID/KID: a covariance; the k-NN metrics: k neighbours besides oneself); with
# fewer it is reported as not computable, with this minimum, instead of a number made of nothing
MIN_IMAGES = {"fid": 2, "kid": 2, **{m: K_NEAREST + 1 for m in ("precision", "recall", "density", "coverage")}}


class _Precomputed(nn.Module):
    """torchmetrics' FID/KID take a custom feature extractor; ours is the evaluator, but
    its features are computed once and cached, so the "extractor" handed to
    torchmetrics is the identity on those feature vectors."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# --------------------------------------------------------------------------- distribution distances

def fid(real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics); None if a set has < 2 items."""
    if len(real) < 2 or len(fake) < 2:
        return None
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return max(0.0, float(metric.compute()))  # tiny negative values are round-off


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float] | None:
    """Kernel Inception Distance (mean, std over random subsets; torchmetrics), unbiased at small n."""
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        return None
    with warnings.catch_warnings():  # it warns that it keeps all features in memory: we know, they are small
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the subsets are drawn with torch's global RNG
        mean, std = metric.compute()
    return float(mean), float(std)


# --------------------------------------------------------------------------- k-NN manifold metrics

def _chunked_cdist(a: torch.Tensor, b: torch.Tensor, reduce, chunk: int = 2048) -> torch.Tensor:
    """reduce(cdist(a_chunk, b)) for each chunk of rows of a, concatenated: never holds |a| x |b|."""
    return torch.cat([reduce(torch.cdist(a[i:i + chunk], b)) for i in range(0, len(a), chunk)])


def knn_radii(x: torch.Tensor, k: int = K_NEAREST) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    return _chunked_cdist(x, x, lambda d: d.topk(k + 1, dim=1, largest=False).values[:, k])


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = K_NEAREST,
         real_radii: torch.Tensor | None = None) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).

    precision: share of fakes inside some real k-NN ball (realism); recall: share of reals
    inside some fake ball (variety); density: like precision but counts how many balls
    (≈1 for real data, robust to outliers); coverage: share of reals whose ball holds a fake.
    """
    if len(real) <= k or len(fake) <= k:
        return {"precision": None, "recall": None, "density": None, "coverage": None}
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k)
    inside = _chunked_cdist(fake, real, lambda d: (d <= real_radii[None]).sum(1))  # per fake: real balls holding it
    recall = _chunked_cdist(real, fake, lambda d: (d <= fake_radii[None]).any(1))
    nearest_fake = _chunked_cdist(real, fake, lambda d: d.min(1).values)
    return {
        "precision": (inside > 0).float().mean().item(),
        "recall": recall.float().mean().item(),
        "density": (inside.float().sum() / (k * len(fake))).item(),
        "coverage": (nearest_fake <= real_radii).float().mean().item(),
    }


def mean_pairwise_distance(x: torch.Tensor) -> float | None:
    """Mean L2 distance between distinct members of a set: how varied it is."""
    n = len(x)
    if n < 2:
        return None
    return (torch.cdist(x, x).sum() / (n * (n - 1))).item()


# --------------------------------------------------------------------------- memorisation

def nearest_pixel_distance(query: torch.Tensor, reference: torch.Tensor, chunk: int = 1024,
                           candidates: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS pixel distance (0..1 scale: 0 is an exact copy) from each uint8 query image to its
    nearest uint8 reference image, and that image's index.

    Pixel space, not feature space, because "is this a copy of a training image" is a
    question about pixels; the evaluator features would also call two different
    sandals of the same style near-copies. Candidates are found with one big matmul and
    their distances recomputed exactly, so an exact copy reads 0, not round-off.
    """
    q = query.reshape(len(query), -1).float().div_(255.0)
    r = reference.reshape(len(reference), -1).float().div_(255.0)
    if q.shape[1] != r.shape[1]:
        raise UserError(f"images of {q.shape[1]} values cannot be compared with training images of {r.shape[1]}")
    r_sq = r.square().sum(1)
    dists, index = [], []
    for i in range(0, len(q), chunk):
        qi = q[i:i + chunk]
        approx = r_sq[None] - 2 * qi @ r.T  # + |q|^2, the same for every candidate of a row
        cand = approx.topk(min(candidates, len(r)), dim=1, largest=False).indices
        exact = (qi[:, None] - r[cand]).square().mean(2)
        best = exact.argmin(1)
        dists.append(exact.gather(1, best[:, None]).squeeze(1).sqrt())
        index.append(cand.gather(1, best[:, None]).squeeze(1))
    return torch.cat(dists), torch.cat(index)


# --------------------------------------------------------------------------- the real side, cached

@dataclass
class Reference:
    """Everything the metrics need from real data, for one evaluator and one list of classes.

    Labels are the *model's* class indices (0..K-1); train_* is the FID reference,
    test_* is the held-out split that gives the real-data floor.
    """

    train_features: torch.Tensor
    train_labels: torch.Tensor
    test_features: torch.Tensor
    test_logits: torch.Tensor
    test_labels: torch.Tensor
    test_nn_distance: torch.Tensor  # RMS pixel distance of each test image to its nearest train image
    prdc_features: torch.Tensor  # train features in a seeded random order: the k-NN metrics take the first n
    class_diversity: torch.Tensor  # mean pairwise train feature distance per class

    @property
    def copy_threshold(self) -> float:
        return torch.quantile(self.test_nn_distance.double(), COPY_QUANTILE).item()


def _subsample(n: int, limit: int, seed: int) -> torch.Tensor:
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def _per_class_diversity(features: torch.Tensor, labels: torch.Tensor, k: int, seed: int) -> list[float | None]:
    out = []
    for c in range(k):
        f = features[labels == c]
        out.append(mean_pairwise_distance(f[_subsample(len(f), DIVERSITY_MAX, seed + c)]))
    return out


def build_reference(ev: Evaluator, train: ImageSet, test: ImageSet, progress: bool = True) -> Reference:
    """Compute the real side: train/test features, test-to-train pixel distances, k-NN radii."""
    train_features, _ = ev.run(train.images, progress="real train features" if progress else None)
    test_features, test_logits = ev.run(test.images, progress="real test features" if progress else None)
    test_nn, _ = nearest_pixel_distance(test.images, train.images)
    prdc_features = train_features[torch.randperm(len(train_features), generator=torch.Generator().manual_seed(0))]
    diversity = _per_class_diversity(train_features, train.labels, train.num_classes, seed=0)
    return Reference(train_features, train.labels, test_features, test_logits, test.labels, test_nn,
                     prdc_features, torch.tensor([float("nan") if d is None else d for d in diversity]))


def reference_path(ev: Evaluator, class_names: list[str]) -> Path | None:
    if ev.path is None:
        return None
    tag = hashlib.sha1("\0".join(class_names).encode()).hexdigest()[:10]
    return Path(ev.path) / f"reference-v{REFERENCE_VERSION}-{tag}.safetensors"


def get_reference(ev: Evaluator, train: ImageSet, test: ImageSet, progress: bool = True) -> Reference:
    """The cached Reference for these (already class-subset) splits, built on first use."""
    path = reference_path(ev, train.class_names)
    if path is not None and path.is_file():
        try:
            return Reference(**load_file(str(path)))
        except (OSError, TypeError, ValueError, RuntimeError):
            pass  # damaged cache: rebuild it below
    ref = build_reference(ev, train, test, progress)
    if path is not None:
        tmp = path.with_suffix(".tmp")
        save_file({f.name: getattr(ref, f.name).contiguous() for f in fields(ref)}, str(tmp))
        os.replace(tmp, path)
    return ref


# --------------------------------------------------------------------------- scoring one set of images

@dataclass
class Seen:
    """What the evaluator saw of a set of images, with the labels they were asked to have."""

    features: torch.Tensor
    logits: torch.Tensor  # over the evaluator's classes
    labels: torch.Tensor  # requested labels, model class indices
    nn_distance: torch.Tensor  # RMS pixel distance to the nearest training image


def look(ev: Evaluator, images: torch.Tensor, labels: torch.Tensor, train_images: torch.Tensor,
         progress: bool = True) -> Seen:
    features, logits = ev.run(images, progress="scoring features" if progress else None)
    nn_distance, _ = nearest_pixel_distance(images, train_images)
    return Seen(features, logits, labels, nn_distance)


def real_floor(ref: Reference) -> Seen:
    """The held-out real test split, seen as if a model had generated it."""
    return Seen(ref.test_features, ref.test_logits, ref.test_labels, ref.test_nn_distance)


def conditioning(logits: torch.Tensor, labels: torch.Tensor, class_map: torch.Tensor) -> dict:
    """Evaluator top-1 against the requested label. Predictions of an evaluator class the model
    does not have (it was trained on a subset) count as wrong and land in an 'other' column."""
    k = len(class_map)
    to_model = torch.full((logits.shape[1],), k, dtype=torch.int64)
    to_model[class_map] = torch.arange(k)
    pred = to_model[logits.argmax(1)]
    confusion = torch.zeros(k, k + 1, dtype=torch.int64)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    if logits.shape[1] == k:
        confusion = confusion[:, :k]
    rows = confusion.sum(1)
    per_class = [(confusion[c, c] / rows[c]).item() if rows[c] else None for c in range(k)]
    return {"accuracy": (pred == labels).float().mean().item() if len(labels) else None,
            "per_class": per_class, "confusion": confusion.tolist()}


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None and v == v]
    return sum(vals) / len(vals) if vals else None


def compute_metrics(seen: Seen, ref: Reference, class_map: torch.Tensor, seed: int = 0) -> dict:
    """All metrics for one set of images (generated, or the real test split for the floor)."""
    k = len(class_map)
    per_fid, div_ratio = [], []
    own_diversity = _per_class_diversity(seen.features, seen.labels, k, seed)
    for c in range(k):
        per_fid.append(fid(ref.train_features[ref.train_labels == c], seen.features[seen.labels == c]))
        real_div = ref.class_diversity[c].item()
        div_ratio.append(own_diversity[c] / real_div if own_diversity[c] is not None and real_div > 0 else None)
    # k-NN metrics are biased unless both sets have the same size (Naeem et al. use equal n),
    # so the real set is cut to the generated set's size (at most PRDC_MAX), and vice versa
    n = min(len(seen.features), len(ref.prdc_features), PRDC_MAX)
    pick = _subsample(len(seen.features), n, seed)
    kid_value = kid(ref.train_features, seen.features, seed=seed)
    threshold = ref.copy_threshold
    test_median = ref.test_nn_distance.median().item()
    cond = conditioning(seen.logits, seen.labels, class_map)
    return {
        "n_images": len(seen.labels),
        "fid": fid(ref.train_features, seen.features),
        "kid": kid_value[0] if kid_value else None,
        "kid_std": kid_value[1] if kid_value else None,
        "class_fid_mean": _mean(per_fid),
        "conditioning_accuracy": cond["accuracy"],
        **prdc(ref.prdc_features[:n], seen.features[pick]),
        "diversity_ratio_mean": _mean(div_ratio),
        "copy_fraction": (seen.nn_distance < threshold).float().mean().item() if len(seen.nn_distance) else None,
        "exact_copies": int((seen.nn_distance == 0).sum()),
        "nn_distance_median": seen.nn_distance.median().item() if len(seen.nn_distance) else None,
        "nn_distance_ratio": seen.nn_distance.median().item() / test_median
        if len(seen.nn_distance) and test_median > 0 else None,
        "copy_threshold": threshold,
        "not_computable": {m: f"needs ≥ {n} images" for m, n in MIN_IMAGES.items() if len(seen.features) < n},
        "per_class": {"fid": per_fid, "conditioning_accuracy": cond["per_class"],
                      "diversity_ratio": div_ratio},
        "confusion": cond["confusion"],
    }
