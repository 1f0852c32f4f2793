"""Tasks: what a run trains. Each task says where its data comes from
(`load_data`), which training step it uses (`make_step`: the one GAN step of
tasks/gan.py for generators, with the fields' roles; the metric-learning step
for similarity) and what its preview picture shows (`preview`). A task may also
choose the items of batch k (`sampler`: class-balanced batches) or what a
batch holds (`select`: an exemplar's neighbour), always as a pure function of
(seed, k). The one loop (train/trainer.py) drives every task; `pipelines.py`
turns a finished run into the object users call.

| task       | G is conditioned on        | D sees                    | target |
|------------|----------------------------|---------------------------|--------|
| cgan       | label                      | image, label              | image  |
| translate  | source (+ label if given)  | image, source (+ label)   | image  |
| exemplar   | an exemplar's embedding    | image, that embedding     | a neighbour of the exemplar |
| similarity | (no GAN: an embedding network, tasks/similarity.py)                  |
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..conditions import Spec, class_spec
from ..config import Config
from ..data import load_dataset, to_float
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


class GANTask:
    """What every generator task shares: the GANStep built from `roles` and `build`."""

    @classmethod
    def make_step(cls, run):
        from .gan import GANStep

        t, m, config = run.config.train, run.config.model, run.config
        aux = config.aux_weight()
        roles = cls.roles(run.spec, config)  # also checks that the fields the config asks for exist
        run.roles = roles
        G, D = cls.build(run.spec, config, class_head=aux > 0)
        if run.device.type == "cpu":  # oneDNN convolutions run ~1.2-1.5x faster in NHWC on CPU
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        return GANStep(G.to(run.device), D.to(run.device), loss=t.loss, lr_g=t.lr_g, lr_d=t.lr_d,
                       betas=(t.beta1, t.beta2), ema_decay=t.ema_decay, ema_start=t.ema_start,
                       augment_policy=t.augment, z_dim=m.z_dim, target=roles.target, g_fields=roles.g_fields,
                       d_fields=roles.d_fields, class_field=roles.class_field, aux_weight=aux,
                       diversity_weight=t.diversity_weight, l1_weight=t.l1_weight,
                       adversarial_weight=t.adversarial_weight, feature_matching_weight=t.feature_matching,
                       frozen=cls.frozen(run))

    @staticmethod
    def frozen(run) -> dict:
        """Networks a generator needs at sampling time but does not train (none, except the exemplar's embedder)."""
        return {}


class ClassConditionalTask(GANTask):
    name = "cgan"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        d = config.data
        data = load_dataset(d.name, split, d.data_dir, d.classes, d.image_size, d.channels, d.bad_files)
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

    @staticmethod
    @torch.no_grad()
    def preview(run, path):
        """One row per class (up to MAX_GRID_ROWS), fixed noise."""
        from ..train.trainer import GRID_COLUMNS, MAX_GRID_ROWS
        from ..visual import save_grid

        rows = min(len(run.class_names), MAX_GRID_ROWS)
        labels = torch.arange(rows).repeat_interleave(GRID_COLUMNS).to(run.device)
        z = run.fixed_noise.repeat(rows, 1).to(run.device)
        images = run.step.G_ema(z, labels).cpu()
        save_grid(images, path, nrow=GRID_COLUMNS, row_names=run.class_names[:rows],
                  title=f"step {run.step.steps_done}: one row per class, fixed noise")
        return images


class TranslationTask(GANTask):
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

    @staticmethod
    @torch.no_grad()
    def preview(run, path):
        """source | output | target for the first training pairs."""
        from ..train.trainer import GRID_COLUMNS
        from ..visual import save_sheet

        k = min(GRID_COLUMNS, run.n_items)
        batch = {name: v[:k] for name, v in run.fields.items()}
        sources, targets = to_float(batch["source"]), to_float(batch["image"])
        cond = [sources] + ([batch["label"]] if "label" in run.roles.g_fields else [])
        images = run.step.G_ema(run.fixed_noise[:k].to(run.device), *cond).cpu()
        save_sheet([sources.cpu(), images, targets.cpu()], ["source", "output", "target"], path,
                   title=f"step {run.step.steps_done}: training pairs")
        return images


from .exemplar import ExemplarTask  # noqa: E402  (it builds on GANTask)
from .similarity import SimilarityTask  # noqa: E402

TASKS = {task.name: task for task in (ClassConditionalTask, TranslationTask, SimilarityTask, ExemplarTask)}
