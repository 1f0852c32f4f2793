"""G's and D's class terms (train.aux_form): one small object per form, chosen by name from CLASS_TERMS.

A form says which heads D needs (`heads`, the flags of models.build_discriminator),
what D learns from its heads (`d_loss(on_real, on_fake, labels)`) and what G is
rewarded for (`g_loss(on_fake, labels, step)`, step = G updates done so far).
on_real and on_fake are D's outputs (models/resnet.py: score, classes, twin,
embedding, proxy). GANStep weighs both terms by train.aux_weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..losses import data_to_data_ce

HEADS = ("class_head", "twin_head", "fake_classes", "class_embedding")  # build_discriminator's flags


@dataclass(frozen=True)
class ClassTerm:
    """What every form has: its name, the D heads it needs, and a constructor from a config's train section."""

    name: ClassVar[str]
    heads: ClassVar[tuple[str, ...]]

    @classmethod
    def from_config(cls, train) -> "ClassTerm":
        """The form with its settings from the train section of a config."""
        return cls()

    def d_loss(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, on_fake: dict, labels: torch.Tensor, step: int) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class CrossEntropy(ClassTerm):
    """'ce', AC-GAN: D's class head learns the classes of real images; G is rewarded when D recognises the
    requested class, which keeps pushing towards the most recognisable image of a class."""

    name: ClassVar[str] = "ce"
    heads: ClassVar[tuple[str, ...]] = ("class_head",)

    def d_loss(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(on_real["classes"], labels)

    def g_loss(self, on_fake: dict, labels: torch.Tensor, step: int) -> torch.Tensor:
        return self.per_image(on_fake, labels).mean()

    def per_image(self, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(on_fake["classes"], labels, reduction="none")


@dataclass(frozen=True)
class Margin(CrossEntropy):
    """'margin': AC-GAN's term, but an image stops counting once D gives its class `confidence`
    (train.aux_confidence): less prototypical images."""

    name: ClassVar[str] = "margin"
    confidence: float = 0.9

    @classmethod
    def from_config(cls, train) -> "Margin":
        return cls(train.aux_confidence)

    def per_image(self, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return F.relu(super().per_image(on_fake, labels) + math.log(self.confidence))


@dataclass(frozen=True)
class Twin(CrossEntropy):
    """'twin', TAC-GAN: a twin head learns the classes of generated images; G's term is AC-GAN's minus `weight`
    (train.twin_weight) times the twin head's cross-entropy, from G step `start` on (train.fake_term_start), which
    cancels the pull towards prototypes."""

    name: ClassVar[str] = "twin"
    heads: ClassVar[tuple[str, ...]] = ("class_head", "twin_head")
    weight: float = 0.35
    start: int = 0

    @classmethod
    def from_config(cls, train) -> "Twin":
        return cls(train.twin_weight, train.fake_term_start)

    def d_loss(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return super().d_loss(on_real, on_fake, labels) + F.cross_entropy(on_fake["twin"], labels)

    def g_loss(self, on_fake: dict, labels: torch.Tensor, step: int) -> torch.Tensor:
        loss = super().g_loss(on_fake, labels, step)
        if step >= self.start:
            loss = loss - self.weight * F.cross_entropy(on_fake["twin"], labels)
        return loss


@dataclass(frozen=True)
class ADC(CrossEntropy):
    """'adc', ADC-GAN: D's class head has 2 x num_classes logits, generated images of class k being class
    k + num_classes; G is rewarded for "real image of its class" minus `weight` (train.adc_weight) times
    "generated image of its class", the latter from G step `start` on (train.fake_term_start)."""

    name: ClassVar[str] = "adc"
    heads: ClassVar[tuple[str, ...]] = ("class_head", "fake_classes")
    weight: float = 0.1
    start: int = 0

    @classmethod
    def from_config(cls, train) -> "ADC":
        return cls(train.adc_weight, train.fake_term_start)

    def d_loss(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return super().d_loss(on_real, on_fake, labels) + F.cross_entropy(on_fake["classes"], generated(on_fake, labels))

    def g_loss(self, on_fake: dict, labels: torch.Tensor, step: int) -> torch.Tensor:
        loss = super().g_loss(on_fake, labels, step)
        if step >= self.start:
            loss = loss - self.weight * F.cross_entropy(on_fake["classes"], generated(on_fake, labels))
        return loss


@dataclass(frozen=True)
class DataToData(ClassTerm):
    """'d2d', ReACGAN: D's class embedding of real images is pulled to its class proxy and away from other
    classes (losses.data_to_data_ce); G's term is the same on its images. It stops pulling near the proxy."""

    name: ClassVar[str] = "d2d"
    heads: ClassVar[tuple[str, ...]] = ("class_embedding",)

    def d_loss(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        return data_to_data_ce(on_real["embedding"], on_real["proxy"], labels)

    def g_loss(self, on_fake: dict, labels: torch.Tensor, step: int) -> torch.Tensor:
        return data_to_data_ce(on_fake["embedding"], on_fake["proxy"], labels)


def generated(on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
    """ADC-GAN's class index of "generated image of class k": k + num_classes."""
    return labels + on_fake["classes"].shape[1] // 2


CLASS_TERMS = {form.name: form for form in (CrossEntropy, Margin, Twin, ADC, DataToData)}


def class_term(train) -> ClassTerm:
    """The class term train.aux_form names, with the settings that go with it (a config's train section)."""
    return CLASS_TERMS[train.aux_form].from_config(train)


def d_heads(form: str | None) -> dict[str, bool]:
    """build_discriminator's head flags for class term `form` (None: D needs no class head)."""
    needed = CLASS_TERMS[form].heads if form is not None else ()
    return {head: head in needed for head in HEADS}
