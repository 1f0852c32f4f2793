"""Task two-stage: G1(label A) -> intermediate, G2(intermediate, label B) -> image, in three runs.

Each stage is an ordinary run of the one loop (training/trainer.py), in its own
directory under the pipeline's (RUN/stage1, RUN/stage2, RUN/joint), with its
own config.yaml, previews, metrics and checkpoints; runs.py trains them
in turn. The networks are condgan's own:

- stage1: G1 is the class-conditional ResNet generator drawing the intermediate
  (`mask`) for label A; D1 the projection discriminator with a class head.
  The GAN step of a cgan, with target `mask` and class field `label_a`.
- stage2: G2 is the U-Net translator with label B entering by conditional
  BatchNorm; D2 the patch discriminator on (image, intermediate), projection and
  class head for label B; L1 to the real image (teacher forcing: G2 sees the
  real intermediates). The GAN step of a translator, with source `mask`.
- joint: both, chained (joint.py), started from the two stage runs'
  checkpoints (RUN/stage1, RUN/stage2), or untrained with stages.from_scratch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ...conditions import Spec
from ...config import Config
from ...data.twolabel import load_two_label
from ...errors import CheckpointError, ConfigError, DataError, UserError
from ...untrusted import load_yaml, read_text
from ...models import rebuild
from ...models.classifier import Classifier
from ...training import checkpoint as ckpt
from ...visual import save_sheet
from ..base import GRID_COLUMNS, MAX_GRID_ROWS, GANTask, Roles, build_class_gan, build_translator, class_rows, on_run_device, pair_rows
from ..gan import GANOptions, GANStep
from .joint import JointStep

STAGE_FIELDS = {"stage1": ("mask", "label_a"), "stage2": ("image", "mask", "label_b"),
                "joint": ("image", "mask", "label_a", "label_b")}


def load_fields(config: Config, split: str, stage: str):
    """The fields one stage trains on (all of them for the joint stage) and the full two-label spec."""
    d = config.data
    data = load_two_label(d.name, split, d.data_dir, d.classes, d.image_size, d.paths_outside)
    h, w = data.images.shape[2:]
    if h != w:
        raise DataError(f"{d.name}: images are {h}x{w}; the two-stage task needs square images (G1 is a ResNet "
                        f"generator): set data.image_size to resize them")
    fields = data.fields()
    return {k: fields[k] for k in STAGE_FIELDS[stage]}, data.spec()


class Stage1Task(GANTask):
    """Intermediates from label A: the cgan's networks and step, with target `mask` and class field `label_a`."""

    name = "two-stage"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        return load_fields(config, split, "stage1")

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("mask", ("label_a",), ("label_a",), "label_a")

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        return build_class_gan(spec, config, "mask", "label_a", class_head)

    @staticmethod
    def preview(run, path: Path) -> torch.Tensor:
        return class_rows(run, run.step.G_ema, "label_a", path, "stage 1 intermediates")


class Stage2Task(GANTask):
    """Images from an intermediate and label B: the translator's networks and step, with source `mask`."""

    name = "two-stage"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        return load_fields(config, split, "stage2")

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("image", ("mask", "label_b"), ("mask", "label_b"), "label_b")

    @classmethod
    def step_options(cls, config: Config, roles: Roles, precision: str = "fp32") -> GANOptions:
        st = config.stages
        return GANOptions.from_config(config, roles, precision=precision, z_dim=st.z2_dim, aux_weight=st.class_b_weight,
                                      diversity_weight=0.0, l1_weight=st.l1_weight, adversarial_weight=1.0,
                                      feature_matching_weight=0.0)

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        st = config.stages
        return build_translator(spec["mask"], spec["image"], spec["label_b"].num_classes, st.z2_dim, st.g2_width,
                                st.d2_width, class_head)

    @staticmethod
    def preview(run, path: Path) -> torch.Tensor:
        return pair_rows(run, run.step.G_ema, "mask", ("label_b",), path)


class JointTask(GANTask):
    """G1 -> G2 fine-tuned together on G1's own intermediates, losses partitioned by the `joint` config."""

    name = "two-stage"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        return load_fields(config, split, "joint")

    @classmethod
    def make_step(cls, run) -> JointStep:
        config, t, j = run.config, run.config.train, run.config.joint
        stages = {} if config.stages.from_scratch else stage_checkpoints(Path(run.out).parent, run.spec)
        s1 = cls.stage_step(run, Stage1Task, stages.get("stage1"))
        s2 = cls.stage_step(run, Stage2Task, stages.get("stage2"))
        if j.class_mask > 0 and s1.D.classifier is None:
            raise ConfigError("joint.class_mask needs D1's class head, which stage 1 trained without "
                              "(train.aux_weight=0); set joint.class_mask=0")
        if j.class_b > 0 and s2.D.classifier is None:
            raise ConfigError("joint.class_b needs D2's class head, which stage 2 trained without "
                              "(stages.class_b_weight=0); set joint.class_b=0")
        C, = on_run_device(run, Classifier(1, run.spec["label_a"].num_classes))
        return JointStep(s1, s2, C, lr_c=j.lr_c, betas=(t.beta1, t.beta2),
                         weights={k: getattr(j, k) for k in j.TERMS},
                         updates={k: getattr(j, f"{k}_updates") for k in j.TERMS})

    @staticmethod
    def stage_step(run, task, stage: ckpt.Checkpoint | None) -> GANStep:
        """One stage's GAN step, built as the stage run built it (its task's networks and options, so the run's
        precision and memory format reach it), with the joint section's learning rates; from the stage run's
        checkpoint `stage` when there is one (stages.from_scratch: untrained)."""
        config, j = run.config, run.config.joint
        if stage:  # the networks the stage run trained, rebuilt from what its checkpoint records; G starts
            # from its averaged (EMA) weights, the ones the stage run samples with: they are better than the
            # last raw weights, and fine-tuning should start from the best there is
            (g, g_weights), (d, d_weights) = stage.network("G", ema=True), stage.network("D")
            G, D = rebuild(g), rebuild(d)
            G.load_state_dict(g_weights)
            D.load_state_dict(d_weights)
        else:
            G, D = task.build(run.spec, config, class_head=True)
        G, D = on_run_device(run, G, D)
        options = task.step_options(config, task.roles(run.spec, config), run.precision)
        # the generators' terms are the joint section's (JointStep); D keeps its class term if it has the head
        options = dataclasses.replace(options, lr_g=j.lr_g, lr_d=j.lr_d, z_dim=G.arguments["z_dim"],
                                      ema_start=0 if stage else config.train.ema_start, diversity_weight=0.0,
                                      l1_weight=0.0, aux_weight=options.aux_weight if D.classifier is not None else 0.0)
        step = GANStep(G, D, options)
        if stage:  # Adam continues with the stage's moment estimates (fresh ones make large first steps)
            for opt, net, lr in ((step.opt_G, "G", j.lr_g), (step.opt_D, "D", j.lr_d)):
                opt.load_state_dict(stage.optimiser(net))
                for group in opt.param_groups:
                    group["lr"] = lr
        return step

    @staticmethod
    @torch.no_grad()
    def preview(run, path: Path) -> torch.Tensor:
        """One row per label A (G1's intermediate first), one column per label B; fixed noise."""
        s1, s2 = run.step.s1, run.step.s2
        names_a, names_b = list(run.spec["label_a"].class_names), list(run.spec["label_b"].class_names)
        rows, cols = min(len(names_a), MAX_GRID_ROWS), min(len(names_b), GRID_COLUMNS)
        g = torch.Generator().manual_seed(run.config.train.seed + 2)
        z1, z2 = torch.randn(1, s1.z_dim, generator=g).repeat(rows, 1), torch.randn(1, s2.z_dim, generator=g).repeat(rows, 1)
        a = torch.arange(rows, device=run.device)
        masks = s1.G_ema(z1.to(run.device), a)
        images = [s2.G_ema(z2.to(run.device), masks, torch.full_like(a, b)).cpu() for b in range(cols)]
        save_sheet([masks.cpu(), *images], ["intermediate", *names_b[:cols]], path, row_names=names_a[:rows],
                   title=f"step {run.step.steps_done}: joint, G1's intermediate then G2 under each label B")
        return torch.cat(images)


def stage_checkpoints(pipeline: Path, spec: Spec) -> dict[str, ckpt.Checkpoint]:
    """The latest checkpoints of PIPELINE/stage1 and PIPELINE/stage2, checked against the joint stage's data."""
    found = {}
    for stage in ("stage1", "stage2"):
        folder = pipeline / stage
        if not ckpt.list_checkpoints(folder / "checkpoints"):
            raise UserError(f"the joint stage fine-tunes the runs {pipeline / 'stage1'} and {pipeline / 'stage2'}, but "
                            f"{folder} holds no trained {stage} run; train it first: condgan train --task two-stage "
                            f"--stage {stage} --data DATA --out {pipeline} (or train every stage in turn without --stage)")
        cp = ckpt.Checkpoint.latest(folder / "checkpoints")
        if cp.task != "two-stage" or cp.stage != stage:
            raise UserError(f"{cp.path} is not a two-stage {stage} run (task {cp.task!r}); the joint stage "
                            f"needs {folder} to hold one")
        if Spec.from_dict(cp.spec) != spec:
            raise UserError(f"{cp.path} was trained on data shaped {cp.spec}, but the joint stage's data is "
                            f"{spec.to_dict()}; train the joint stage on the stage runs' data (same data and classes)")
        found[stage] = cp
    return found


STAGE_TASKS = {"stage1": Stage1Task, "stage2": Stage2Task, "joint": JointTask}


def locate(path: Path) -> ckpt.ModelFiles | None:
    """A two-stage pipeline's generators: from its folder (the joint run if it has one, else its two stage runs
    together), or from one of its stage runs (or their checkpoints: read with the sibling stage run). None for
    anything else."""
    if path.is_dir() and not (path / "checkpoints").is_dir() and any((path / s).is_dir() for s in PIPELINE_STAGES):
        return _read_pipeline(path)
    run = path.parent.parent if path.is_file() and path.parent.name == "checkpoints" else path
    cfg = run / "config.yaml"
    if not (run.is_dir() and cfg.is_file() and run.name in ("stage1", "stage2")):
        return None
    try:
        recipe = load_yaml(read_text(cfg, "config file"), str(cfg)) or {}
    except UserError:
        return None  # not ours to judge: read_model says what is wrong with it
    if not isinstance(recipe, dict) or recipe.get("task") != "two-stage":
        return None
    return _read_pipeline(run.parent, stages_only=True)


PIPELINE_STAGES = ("stage1", "stage2", "joint")


def _read_pipeline(folder: Path, stages_only: bool = False) -> ckpt.ModelFiles:
    """The joint run if there is one (and not stages_only), else G1 from the stage1 run and G2 from stage2."""
    if not stages_only and ckpt.list_checkpoints(folder / "joint" / "checkpoints"):
        return ckpt.read_model(folder / "joint")
    missing = [s for s in ("stage1", "stage2") if not ckpt.list_checkpoints(folder / s / "checkpoints")]
    if missing:
        have = [s for s in ("stage1", "stage2") if s not in missing]
        raise CheckpointError(f"{folder} is a two-stage pipeline with {' and '.join(have) or 'no trained stage'} only; "
                              f"sampling needs G1 and G2: train {' and '.join(missing)} (condgan train --task two-stage "
                              f"--stage {missing[0]} --data DATA --out {folder})")
    s1, s2 = (ckpt.Checkpoint.latest(folder / s / "checkpoints") for s in ("stage1", "stage2"))
    if s1.spec != s2.spec:
        raise CheckpointError(f"{s1.path} and {s2.path} were trained on different data ({s1.spec} vs {s2.spec}); "
                              f"they do not make one pipeline")
    return ckpt.model_of(s1.renamed(generator="generator1"), s2.renamed(generator="generator2"))
