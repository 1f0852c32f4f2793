"""Tasks: what a run trains. Each task says where its data comes from, which
networks it builds from the data's field spec, which fields play which role in
the one GAN step (tasks/gan.py), and what its preview picture shows. The one
loop (train/trainer.py) drives every task; `pipelines.py` turns a finished run
into the object users call.

| task      | G is conditioned on        | D sees                    | target |
|-----------|----------------------------|---------------------------|--------|
| cgan      | label                      | image, label              | image  |
| translate | source (+ label if given)  | image, source (+ label)   | image  |
"""

from __future__ import annotations

from dataclasses import dataclass

from ..conditions import Spec, class_spec
from ..config import Config
from ..data import load_dataset
from ..errors import ConfigError
from ..models import build_discriminator, build_generator
from ..models.patch import PatchDiscriminator
from ..models.unet import UNetGenerator


@dataclass
class Roles:
    target: str
    g_fields: tuple[str, ...]
    d_fields: tuple[str, ...]
    class_field: str | None


class ClassConditionalTask:
    name = "cgan"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        d = config.data
        data = load_dataset(d.name, split, d.data_dir, d.classes, d.image_size, d.channels, d.bad_files, d.cache)
        spec = class_spec(data.class_names, data.channels, data.image_size)
        return {"image": data.images, "label": data.labels}, spec

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("image", ("label",), ("label",), "label")

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        m, image = config.model, spec["image"]
        k = spec["label"].num_classes
        G = build_generator(m.arch, k, m.z_dim, image.channels, image.height, m.g_width)
        D = build_discriminator(m.arch, k, image.channels, image.height, m.d_width, class_head=class_head)
        return G, D


class TranslationTask:
    name = "translate"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        from ..data.paired import load_pairs

        d = config.data
        pairs = load_pairs(d.name, split, d.data_dir, d.direction, d.image_size, d.classes, d.bad_files)
        return pairs.fields(), pairs.spec()

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        """The label (when the pairs have one) conditions G and D only with model.use_label: an edge map
        should be enough to say which garment it is, and the evaluator checks that it is."""
        labelled = config.model.use_label
        if labelled and "label" not in spec:
            raise ConfigError("model.use_label needs pairs with class labels (the built-in fashion-mnist-* pairs have them)")
        cond = ("source", "label") if labelled else ("source",)
        return Roles("image", cond, cond, "label" if labelled else None)

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        m, source, image = config.model, spec["source"], spec["image"]
        k = spec["label"].num_classes if m.use_label else 0
        G = UNetGenerator(source.channels, image.channels, image.height, image.width, z_dim=m.z_dim,
                          base_width=m.g_width, num_classes=k)
        D = PatchDiscriminator(image.channels, source.channels, image.height, image.width, base_width=m.d_width,
                               num_classes=k, class_head=class_head)
        return G, D


TASKS = {task.name: task for task in (ClassConditionalTask, TranslationTask)}
