"""The `similarity` config section: the similarity task's recipe, and the exemplar task's embedder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ...models.embedder import pooled_size
from ...training import views
from ...training.views import AUGMENTS
from ...untrusted import shown

RECIPES = ("siamese", "triplet", "frozen", "selfsup")
MINING = ("semihard", "hard", "all")
LABELLED_LR_DECAY = 0.3  # train.lr_decay of the labelled recipes: ROC AUC, P@1 and MAP@R up (docs/similarity.md);
                         # selfsup keeps constant rates (no better in the screen)
SELFSUP_PRECISION = "fp32"  # train.precision 'auto' of selfsup: bf16 made 1.85x the images/s, but ROC AUC and MAP@R
                           # fell in all three comparisons (docs/similarity.md); the labelled recipes gain from it
SELFSUP_FEATURES = 128  # similarity.features of selfsup: precision@1 +4 points in each of three runs, ROC AUC and
                        # MAP@R within noise (docs/similarity.md)
SELFSUP_GRAPH = 6  # similarity.graph of selfsup: ROC AUC +0.02 to +0.04, MAP@R +6 to +8 points (docs/similarity.md)
SELFSUP_NEIGHBOUR_VIEWS = 1.0  # similarity.neighbour_views of selfsup: ROC AUC and MAP@R up (docs/similarity.md)
MAX_GRAPH = 64  # similarity.graph: coordinates beyond the first few follow noise (7 to 9: lower MAP@R than 6)
CHARACTERS = ("mnist",)  # built-in data of digits or letters: a mirrored one is another character, or none

@dataclass
class SimilarityConfig:
    """Keys of the similarity task (an embedding network) and of the exemplar task that uses one."""

    # keys whose default changed: another task's config.yaml written before carries the old value
    CHANGED_DEFAULTS: ClassVar[tuple[str, ...]] = ("temperature",)

    recipe: str = "triplet"           # similarity: siamese (contrastive loss on pairs) | triplet (margin loss, mined
                                      # in the batch) | frozen (the evaluator network frozen, a learned head) |
                                      # selfsup (two augmented views are the positive pair; no labels)
    embed_dim: int = 64               # size of an embedding (L2-normalised; similarity = cosine)
    margin: float | None = None       # siamese: distance negatives are pushed beyond (1.4: about orthogonal);
                                      # triplet/frozen: 0.2
    pos_margin: float | None = None   # siamese: distance within which similar pairs stop being pulled together
                                      # (0.7; 0 pulls every image of a class onto one point: ROC AUC 0.905 vs 0.982
                                      # in docs/similarity.md)
    mining: str = "semihard"          # triplet/frozen: which in-batch triplets count: semihard | hard | all
    per_class: int = 8                # images per class in a batch: batch_size // per_class classes of per_class
                                      # images each (class-balanced; with labels only)
    temperature: float = 0.5          # selfsup: NT-Xent temperature (0.5: ROC AUC and MAP@R up on Fashion-MNIST in
                                      # docs/similarity.md; runs before issue 25 recorded 0.1)
    projector: int | None = None      # selfsup: hidden width of a projection MLP between the embedding and the
                                      # NT-Xent loss (SimCLR; 256: ROC AUC 0.82 vs 0.69 without, docs/similarity.md);
                                      # 0 = the loss sees the embedding itself
    augment: list[str] | None = None  # similarity: changes that leave an image "the same", applied to what it
                                      # trains on: flip (mirror left-right), shift (up to 1/14 of the side), crop
                                      # (50-100 % of the area, resized back), colour (brightness, contrast; RGB:
                                      # saturation, hue, grey); [] = none. None (default): chosen by the data at
                                      # train start, printed and written to config.yaml: flip,shift (+ colour for
                                      # RGB); shift only for digits or letters (mnist, or one-character class
                                      # names). selfsup always adds a harder crop and colour to its two views
    neighbour_views: float | None = None  # selfsup: share of images whose second view is made from one of their
                                      # view_neighbours nearest images in pixel space (thumbnails' principal
                                      # components) instead of from themselves: another image of the same kind, which
                                      # no augmentation makes. None: 1 for selfsup (every second view; docs/similarity.md); 0 = off
    features: int | None = None       # selfsup: the embedding also carries the network's pooled conv features
                                      # (mirror-averaged when augment has flip), reduced to this many principal
                                      # directions (fitted on training images whenever a checkpoint is written; no
                                      # labels), the two halves weighted equally. None: 128 for selfsup (precision@1
                                      # +4 points, docs/similarity.md), 0 for the others; 0 = the head's alone
    graph: int | None = None          # selfsup: the embedding also carries this many spectral coordinates of the
                                      # graph joining 10,000 training images to their nearest ones by the rest of
                                      # the embedding (fitted whenever a checkpoint is written; no labels), weighted
                                      # equally with the rest: images far apart along one chain of neighbours come
                                      # closer. None: 6 for selfsup (MAP@R +7 points, docs/similarity.md), 0 for
                                      # the others; 0 = none
    view_neighbours: int = 5          # selfsup: how many nearest images in pixel space may give the second view
    lr: float = 1e-3                  # Adam learning rate of the embedding network
    width: int = 32                   # channels of the embedding CNN's first block (doubles twice)
    pairs: str | None = None          # a CSV of image_a,image_b,similar or of anchor,positive,negative (paths
                                      # relative to the CSV) instead of pairs made from class labels
    embedder: str | None = None       # exemplar: the similarity run (or export) whose embedder conditions G
    neighbours: int = 10              # exemplar: real images for an exemplar are its k nearest neighbours


def resolve(s: SimilarityConfig) -> None:
    """Margins, the projector, the conv features, the graph coordinates and neighbour views default by recipe."""
    if s.margin is None:
        s.margin = 1.4 if s.recipe == "siamese" else 0.2
    if s.pos_margin is None:
        s.pos_margin = 0.7 if s.recipe == "siamese" else 0.0
    if s.projector is None:
        s.projector = 256 if s.recipe == "selfsup" else 0
    if s.features is None:
        s.features = min(SELFSUP_FEATURES, pooled_size(s.width)) if s.recipe == "selfsup" else 0
    if s.graph is None:
        s.graph = SELFSUP_GRAPH if s.recipe == "selfsup" else 0
    if s.neighbour_views is None:
        s.neighbour_views = SELFSUP_NEIGHBOUR_VIEWS if s.recipe == "selfsup" else 0.0


def default_augment(channels: int, data_name: str, class_names: list[str], recipe: str) -> tuple[list[str], str]:
    """similarity.augment as the data calls for it, and the line saying so at train start."""
    named = data_name.lower() in CHARACTERS
    characters = named or (len(class_names) > 1 and all(len(c.strip()) == 1 for c in class_names))
    ops = (["shift"] if characters else ["flip", "shift"]) + (["colour"] if channels == 3 else [])
    why = ("no flip: a mirrored digit or letter is another character or none; "
           + (f"{data_name} is digits" if named else "the class names are single characters, like digits or letters")
           if characters else "a mirrored or slightly moved image shows the same thing")
    if channels == 3:
        why += "; RGB: colour changes too"
    line = f"data: similarity.augment {','.join(ops)} by default ({why}; set similarity.augment to change, [] for none)"
    if recipe == "selfsup":
        low, high = views.SELFSUP_CROP_AREA
        line += f"; selfsup's two views also take a crop of {low:.0%}-{high:.0%} of the area and a colour change"
    return ops, line


def old_augment(section: dict) -> list[str]:
    """What a run from before similarity.augment trained with: nothing added (selfsup: its one fixed view)."""
    return ["classic"] if section.get("recipe") == "selfsup" else []


def checks(s: SimilarityConfig) -> list[tuple[bool, str]]:
    """What holds for the section whichever task reads it."""
    return [
        (s.recipe in RECIPES, f"similarity.recipe must be one of {', '.join(RECIPES)}, not {shown(s.recipe)}"),
        (s.mining in MINING, f"similarity.mining must be one of {', '.join(MINING)}, not {shown(s.mining)}"),
        (2 <= s.embed_dim <= 4096, f"similarity.embed_dim must be between 2 and 4,096, not {s.embed_dim}"),
        (1 <= s.width <= 1024, f"similarity.width must be between 1 and 1,024, not {s.width}"),
        (math.isfinite(s.margin) and s.margin > 0, f"similarity.margin must be a positive number, not {s.margin}"),
        (s.recipe == "siamese" or s.pos_margin == 0, "similarity.pos_margin is for recipe siamese"),
        (math.isfinite(s.pos_margin) and 0 <= s.pos_margin < s.margin,
         f"similarity.pos_margin must be at least 0 and below similarity.margin ({s.margin}), not {s.pos_margin}"),
        (math.isfinite(s.temperature) and s.temperature > 0, "similarity.temperature must be a positive number"),
        (0 <= s.projector <= 4096, f"similarity.projector must be between 0 and 4,096, not {s.projector}"),
        (s.recipe == "selfsup" or s.projector == 0, "similarity.projector is for recipe selfsup"),
        (all(a in AUGMENTS for a in s.augment or []),
         f"similarity.augment items must be among {', '.join(AUGMENTS[:-1])}, not {shown(s.augment)}"),
        ("classic" not in (s.augment or []) or (s.recipe == "selfsup" and s.augment == ["classic"]),
         "similarity.augment classic is the selfsup view of runs from before similarity.augment: alone, recipe selfsup"),
        (0 <= s.features <= pooled_size(s.width), f"similarity.features must be between 0 and 36 x similarity.width "
         f"({pooled_size(s.width)}: the pooled features' size), not {s.features}"),
        (s.recipe == "selfsup" or s.features == 0, "similarity.features is for recipe selfsup (the labelled recipes' "
         "losses train the embedding they are compared by)"),
        (0 <= s.graph <= MAX_GRAPH, f"similarity.graph must be between 0 and {MAX_GRAPH}, not {s.graph}"),
        (s.recipe == "selfsup" or s.graph == 0, "similarity.graph is for recipe selfsup (the labelled recipes' "
         "losses train the embedding they are compared by)"),
        (math.isfinite(s.neighbour_views) and 0 <= s.neighbour_views <= 1,
         f"similarity.neighbour_views must be a share between 0 and 1, not {s.neighbour_views}"),
        (s.recipe == "selfsup" or s.neighbour_views == 0, "similarity.neighbour_views is for recipe selfsup"),
        (1 <= s.view_neighbours <= 1000, f"similarity.view_neighbours must be between 1 and 1,000, not {s.view_neighbours}"),
        (math.isfinite(s.lr) and s.lr > 0, "similarity.lr must be a positive number"),
        (1 <= s.neighbours <= 1000, f"similarity.neighbours must be between 1 and 1,000, not {s.neighbours}"),
        (not (s.pairs and s.recipe == "selfsup"), "similarity.pairs is a CSV of labelled pairs; recipe selfsup uses no "
         "labels (leave out similarity.pairs, or choose recipe siamese, triplet or frozen)"),
    ]
