"""Tasks: what a run trains. Each task says where its data comes from
(`load_data`), which training step it uses (`make_step`: the one GAN step of
tasks/gan.py for generators, with the fields' roles; the metric-learning step
for similarity) and what its preview picture shows (`preview`). A task may also
choose the items of batch k (`sampler`: class-balanced batches) or what a
batch holds (`select`: an exemplar's neighbour), always as a pure function of
(seed, k). The one loop (training/trainer.py) drives every task; `pipelines.py`
turns a finished run into the object users call.

| task                 | G is conditioned on          | D sees                       | target |
|----------------------|------------------------------|------------------------------|--------|
| cgan                 | label                        | image, label                 | image  |
| translate            | source (+ label if given)    | image, source (+ label)      | image  |
| two-stage, stage1    | label_a                      | mask, label_a                | mask   |
| two-stage, stage2    | mask, label_b                | image, mask, label_b         | image  |
| two-stage, joint     | G1: label_a; G2: G1's mask, label_b (tasks/joint.py: the GAN step twice, chained) | image |
| exemplar             | an exemplar's embedding      | image, that embedding        | a neighbour of the exemplar |
| similarity           | (no GAN: an embedding network, tasks/similarity.py)                        |

(two-stage: tasks/two_stage.py; `mask` is the intermediate, whatever its kind.)
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import Spec, class_spec
from ..config import Config
from ..data import load_dataset, to_float
from ..errors import ConfigError
from ..models import build_discriminator, build_generator
from ..models.patch import PatchDiscriminator
from ..models.unet import UNetGenerator
from ..training import dist
from ..visual import save_grid, save_sheet
from .class_terms import d_heads
from .gan import GANOptions, GANStep, Roles

GRID_COLUMNS = 8
MAX_GRID_ROWS = 20


class GANTask:
    """What every generator task shares: the one GAN step built from its roles and networks."""

    name = ""

    @classmethod
    def make_step(cls, run) -> GANStep:
        """The training step for this task's networks, for a Run (its spec, config, device, data)."""
        spec, config = run.spec, run.config
        run.roles = cls.roles(spec, config)  # also checks that the fields the config asks for exist
        options = cls.step_options(config, run.roles, run.precision)  # train.precision resolved for the device
        G, D = cls.build(spec, config, class_head=options.aux_weight > 0)
        if config.train.sync_batchnorm and dist.world() > 1:
            G = dist.convert_sync_batchnorm(G)
        return GANStep(*on_run_device(run, G, D), options, frozen=cls.frozen(run))

    @staticmethod
    def frozen(run) -> dict:
        """Networks a generator needs at sampling time but does not train (none, except the exemplar's embedder)."""
        return {}

    @classmethod
    def step_options(cls, config: Config, roles: Roles, precision: str = "fp32") -> GANOptions:
        """GANStep's settings from the config (a task whose step differs overrides fields here)."""
        return GANOptions.from_config(config, roles, precision=precision)


def build_translator(source, image, num_classes: int, z_dim: int, g_width: int, d_width: int, class_head: bool):
    """The U-Net G and patch D that turn an image field into another (translate; stage 2 of two-stage, which
    makes the image from the intermediate and label B); source and image are the fields' specs."""
    G = UNetGenerator(source.channels, image.channels, image.height, image.width, z_dim=z_dim,
                      base_width=g_width, num_classes=num_classes)
    D = PatchDiscriminator(image.channels, source.channels, image.height, image.width, base_width=d_width,
                           num_classes=num_classes, class_head=class_head)
    return G, D


def build_class_gan(spec: Spec, config: Config, target: str, class_field: str, class_head: bool):
    """G and D of a class-conditional GAN making field `target` from class field `class_field` (the cgan;
    stage 1 of two-stage, which makes intermediates from label A)."""
    m, image = config.model, spec[target]
    config.resolve_for_size(image.height)
    k = spec[class_field].num_classes
    G = build_generator(m.arch, k, m.z_dim, image.channels, image.height, m.g_width)
    heads = d_heads(config.train.aux_form if class_head else None)  # the heads D needs for the class term
    D = build_discriminator(m.arch, k, image.channels, image.height, m.d_width, **heads)
    return G, D


def on_device(net: torch.nn.Module, device: torch.device, channels_last: bool | None = None) -> torch.nn.Module:
    """`net` on `device`; NHWC by default on CPU, where oneDNN convolutions run faster in it (docs/benchmarks.md)."""
    if channels_last if channels_last is not None else device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net.to(device)


def on_run_device(run, *nets: torch.nn.Module) -> tuple[torch.nn.Module, ...]:
    """A step's networks on the run's device in its memory format (run.channels_last): every task's step
    places its networks here, so a setting of the run reaches all of them."""
    return tuple(on_device(net, run.device, run.channels_last) for net in nets)


def class_rows(run, G, field: str, path: Path, what: str) -> torch.Tensor:
    """Preview of a class-conditional G: one row per class of `field`, the same noise along each column."""
    names = list(run.spec[field].class_names)
    rows = min(len(names), MAX_GRID_ROWS)
    z = torch.randn(GRID_COLUMNS, G.arguments["z_dim"], generator=torch.Generator().manual_seed(run.config.train.seed + 2))
    labels = torch.arange(rows).repeat_interleave(GRID_COLUMNS).to(run.device)
    images = G(z.repeat(rows, 1).to(run.device), labels).cpu()
    save_grid(images, path, nrow=GRID_COLUMNS, row_names=names[:rows],
              title=f"step {run.step.steps_done}: {what}, one row per class, fixed noise")
    return images


def pair_rows(run, G, source: str, cond: tuple[str, ...], path: Path) -> torch.Tensor:
    """Preview of a translator: source | output | target for the first training pairs, fixed noise."""
    k = min(GRID_COLUMNS, run.n_items)
    batch = {name: v[:k] for name, v in run.fields.items()}
    sources, targets = to_float(batch[source]), to_float(batch["image"])
    z = torch.randn(k, G.arguments["z_dim"], generator=torch.Generator().manual_seed(run.config.train.seed + 2))
    images = G(z.to(run.device), sources, *[batch[c] for c in cond]).cpu()
    names = None
    if cond:  # say which label each row was asked for
        names = [run.spec[cond[0]].class_names[int(i)] for i in batch[cond[0]].cpu()]
    save_sheet([sources.cpu(), images, targets.cpu()], [source, "output", "target"], path,
               title=f"step {run.step.steps_done}: training pairs", row_names=names)
    return images


class ClassConditionalTask(GANTask):
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
        return build_class_gan(spec, config, "image", "label", class_head)

    @staticmethod
    @torch.no_grad()
    def preview(run, path: Path) -> torch.Tensor:
        return class_rows(run, run.step.G_ema, "label", path, "samples")


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
        m = config.model
        k = spec["label"].num_classes if m.use_label else 0
        return build_translator(spec["source"], spec["image"], k, m.z_dim, m.g_width, m.d_width, class_head)

    @staticmethod
    def preview(run, path: Path) -> torch.Tensor:
        cond = ("label",) if "label" in run.step.g_fields else ()
        return pair_rows(run, run.step.G_ema, "source", cond, path)


from .exemplar import ExemplarTask  # noqa: E402  (it builds on GANTask)
from .similarity import SimilarityTask  # noqa: E402

TASKS = {task.name: task for task in (ClassConditionalTask, TranslationTask, SimilarityTask, ExemplarTask)}


def get_task(config: Config):
    """The task class that trains this config (two-stage: the one for its stage)."""
    if config.task == "two-stage":
        from .two_stage import STAGE_TASKS

        if config.stages.stage not in STAGE_TASKS:
            raise ConfigError(f"a two-stage run trains one stage at a time ({', '.join(STAGE_TASKS)}); "
                              f"stages.stage=all is for `condgan train`, which runs them in turn")
        return STAGE_TASKS[config.stages.stage]
    return TASKS[config.task]
