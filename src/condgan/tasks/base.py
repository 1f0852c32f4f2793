"""What generator tasks share: the roles fields play in the one GAN step (tasks/gan.py), the networks of a
class-conditional GAN and of a translator, and their preview pictures."""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import Spec
from ..config import Config
from ..data import to_float
from ..models import build_discriminator, build_generator
from ..models.patch import PatchDiscriminator
from ..models.unet import UNetGenerator
from ..errors import UserError
from ..losses import LOSSES
from ..registry import Task
from ..pipelines.latents import MIN_TRUNCATION, TRUNCATION_RANGE, truncation_ok
from ..untrusted import flag_type, printable
from ..training import dist
from ..training.augment import JITTER, POLICIES
from ..visual import save_grid, save_sheet
from .class_terms import d_heads
from .gan import GANOptions, GANStep, Roles

from ..visual import GRID_COLUMNS

# `--truncation` of sample and eval, shared by the tasks whose generator draws latents for a condition (cgan, exemplar)
truncation_flag = flag_type(float, truncation_ok, TRUNCATION_RANGE)
TRUNCATION_HELP = ("class-conditional and exemplar models: the truncation trick, redrawing every latent entry beyond ±T "
                   "(from the same seed), which trades variety for typicality: images more typical of their class, or "
                   "closer to their exemplar, and less varied. Off by default; typical T is 1.0 to 2.0 (smaller: more "
                   f"alike; at least {MIN_TRUNCATION})")
TRUNCATION_EVAL_HELP = TRUNCATION_HELP + "; the report records it, and its numbers then describe the truncated samples"

MAX_GRID_ROWS = 20


class GANTask(Task):
    """What every generator task shares: the one GAN step built from its roles and networks."""

    resnet_knobs = False  # G and D come from build_class_gan, which reads model.g_skip_z and model.d_mbstd

    @classmethod
    def resolve(cls, config: Config) -> None:
        """G's class term: AC-GAN's cross-entropy unless the task chooses (the resnet cgan's depends on the size)."""
        if config.train.aux_form is None:
            config.train.aux_form = "ce"

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        """The GAN step's names: its loss, D's augmentations, the pairs' jitter; the resnet's knobs only where
        build_class_gan reads them."""
        t, m = config.train, config.model
        knobs = [key for key, on in (("model.g_skip_z", m.g_skip_z), ("model.d_mbstd", m.d_mbstd)) if on]
        return [(not knobs or (cls.resnet_knobs and m.arch in (None, "resnet")),
                 f"{' and '.join(knobs)} {'work' if len(knobs) > 1 else 'works'} with the resnet G and D of "
                 "--task cgan or two-stage only "
                 f"(model.arch=resnet); leave {'them' if len(knobs) > 1 else 'it'} off for this run"),
                (t.loss in LOSSES, f"train.loss must be one of {', '.join(LOSSES)}, not {t.loss!r}"),
                (all(a in POLICIES for a in t.augment or []),
                 f"train.augment items must be among {', '.join(POLICIES)}, not {t.augment}"),
                (all(j in JITTER for j in config.data.jitter),
                 f"data.jitter items must be among {', '.join(JITTER)}, not {config.data.jitter}")]

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
    G = build_generator(m.arch, k, m.z_dim, image.channels, image.height, m.g_width, m.g_skip_z)
    heads = d_heads(config.train.aux_form if class_head else None)  # the heads D needs for the class term
    D = build_discriminator(m.arch, k, image.channels, image.height, m.d_width, **heads, mbstd_group=m.d_mbstd)
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


def class_term_check(config: Config, heads: bool) -> tuple[bool, str]:
    """G's class terms with heads of their own on D (twin, adc, d2d) need the resnet cgan's D."""
    form = config.train.aux_form
    return (form not in ("twin", "adc", "d2d") or heads,
            f"train.aux_form={form} needs --task cgan with model.arch=resnet (the D with class heads)")


LABEL_HELP = ("class name or index (repeatable or comma-separated; a name with a comma in double quotes: "
              "--label '\"red, dark\"')")


def labels_flag(parser, flag: str, help: str) -> None:
    """A repeatable flag of class names or indices (`--label sandal,boot --label 3`)."""
    parser.add_argument(flag, action="append", help=f"{help}, {LABEL_HELP}")


def parse_labels(values: list[str] | None, flag: str, known: list[str], what: str = "") -> list[str] | None:
    """The class names (or indices) of a repeatable, comma-separated flag, checked against `known`; None when
    it is not given. Each value is split as a CSV line, so a name with a comma is chosen in double quotes;
    a value that names no class ("", " , ") is a mistake, not "every class"."""
    import csv

    from ..data.imageset import resolve_class

    if values is None:
        return None
    names = []
    for value in values:
        try:
            cells = [c.strip() for row in csv.reader([value], skipinitialspace=True, strict=True) for c in row]
        except csv.Error as e:
            raise UserError(f"{flag} {printable(value, 60)!r} cannot be read ({e}); {_label_hint(known)}") from None
        if not any(cells):
            raise UserError(f"{flag} {printable(value, 60)!r} names no class; known classes: "
                            f"{', '.join(printable(c, 40) for c in known[:50])} (or leave {flag} out for every class)")
        names += [c for c in cells if c]
    for name in names:
        try:
            resolve_class(name, known)
        except UserError as e:
            raise UserError(f"{what}{e}" + (f"; {_label_hint(known)}" if any("," in c for c in known) else "")) from None
    return names


def _label_hint(known: list[str]) -> str:
    comma = next((c for c in known if "," in c), "red, dark")
    return f"a class name with a comma goes in double quotes (--label '\"{printable(comma, 40)}\"'), or give its index"


def quoted_label(name: str) -> str:
    """A class name as `--label` takes it (a name with a comma is given quoted)."""
    first = printable(name, 60)
    return f"'\"{first}\"'" if "," in first else first


def versus(model: dict, floor: dict, key: str, spec: str) -> str:
    """'0.812 (real 0.250)'; a metric too few images could give reads 'n/a', as in report.md."""
    def show(v):
        return "n/a" if v is None else format(v, spec)

    return f"{show(model.get(key))} (real {show(floor.get(key))})"
