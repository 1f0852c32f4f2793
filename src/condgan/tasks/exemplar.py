"""The exemplar task, "more like this one": a GAN conditioned on an exemplar image's embedding.

As in IC-GAN (Casanova et al., 2021): every training image is an exemplar; its
embedding (from a trained similarity run, frozen) conditions G and D, and the
real images D is shown for it are its k nearest neighbours in that embedding
space. G thus learns the neighbourhood of an image, not the image itself, and
at sampling time any image, seen or not, can be the exemplar. No class labels
are involved: with a self-supervised embedder it works on a folder of images
without classes.

It is the one GANStep with `embedding` as its condition field; the embedder
travels in the checkpoint as a frozen network (GANStep.frozen).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import ImageField, Spec, VectorField
from ..config import Config
from ..data import to_float
from ..errors import ConfigError, UserError
from ..models.resnet import ProjectionDiscriminator, ResNetGenerator
from ..pipelines import Embedder, Exemplar, assemble, check_count, read_user_image
from ..pipelines.latents import truncation_note
from ..registry import Controls, register
from ..training import checkpoint as ckpt
from ..untrusted import printable
from .base import GRID_COLUMNS, TRUNCATION_EVAL_HELP, TRUNCATION_HELP, GANTask, Roles, class_term_check, truncation_flag
from .similarity import SimilarityConfig, load_images
from .similarity import config as section
from .similarity.neighbours import nearest_neighbours, read_kept

MAX_GRID = 256

EXEMPLAR_ROWS = 8  # preview: this many fixed exemplars
NEIGHBOURS_FILE = "neighbours.pt"  # in the run: every training image's embedding and k nearest, and their key


def load_embedder(config: Config):
    """The Embedder pipeline of the run named by similarity.embedder."""
    path = config.similarity.embedder
    if not path:
        raise ConfigError("--task exemplar needs an embedding network: --embedder RUN (similarity.embedder), a run of "
                          "--task similarity (its selfsup recipe needs no labels)")
    if not Path(path).exists():
        raise ConfigError(f"similarity.embedder {path} does not exist (give a run directory of --task similarity)")
    model = ckpt.read_model(path)
    if model.task != Embedder.task:
        raise ConfigError(f"similarity.embedder {path} is a {printable(str(model.task), 40)} model; it must be a "
                          f"--task similarity run")
    return assemble(model, Embedder)


def _images_and_embedder(config: Config, split: str):
    """The run's images (class labels, if the data has any, are not used) and its embedder, checked to match."""
    data = load_images(config, split)
    embedder = load_embedder(config)
    want = embedder.spec["image"]
    if (want.channels, want.height) != (data.channels, data.image_size):
        raise ConfigError(f"the embedder takes {want.channels}-channel {want.height}px images, the data is "
                          f"{data.channels}-channel {data.image_size}px: set data.image_size / data.channels to match")
    return data, embedder


def _fields(data, e: torch.Tensor, knn: torch.Tensor):
    spec = Spec(image=ImageField(data.channels, data.image_size, data.image_size), embedding=VectorField(e.shape[1]))
    return {"image": data.images, "embedding": e, "knn": knn}, spec


@register
class ExemplarTask(GANTask):
    name = "exemplar"
    title = 'more like this one (a generator conditioned on a similarity run\'s embedding of an exemplar)'
    models = "exemplar models"
    sections = {"similarity": SimilarityConfig}
    defaults = {"train.batch_size": 64, "model.arch": "resnet", "model.z_dim": 64, "model.g_width": 16, "model.d_width": 16,
                "train.diversity_weight": 0.0, "train.l1_weight": 0.0, "train.aux_weight": 0.0}
    archs = ("resnet",)
    added_keys = {"similarity": {"pos_margin": 0.0, "projector": 0, "neighbour_views": 0.0, "features": 0,
                                  "graph": 0}}
    pipeline = Exemplar
    augments_small_data = True
    flags = {"sample": ("like", "truncation"), "eval": ("exemplars", "truncation")}
    flag_keys = {"embedder": "similarity.embedder"}
    controls = Controls(title="more like this one (exemplar-conditioned generator)", conditions=lambda p: ["exemplar"],
                        generate=lambda p, v, n, seed: p.sample(like=v["exemplar"], n=n, seed=seed),
                        hints={"exemplar": "an image; the outputs resemble it and its nearest neighbours in the data "
                                           "(it is resized to the model's size)"})

    @classmethod
    def resolve(cls, config: Config) -> None:
        section.resolve(config.similarity)
        super().resolve(config)

    @classmethod
    def checks(cls, config: Config) -> list[tuple[bool, str]]:
        return [*super().checks(config), *section.checks(config.similarity), class_term_check(config, False),
                (config.similarity.pairs is None, "similarity.pairs is for --task similarity"),
                (config.similarity.augment is None, "similarity.augment is for --task similarity")]

    @classmethod
    def add_arguments(cls, command: str, parser) -> None:
        if command == "train":
            parser.add_argument("--embedder", metavar="RUN", help="--task exemplar: the similarity run whose embedding "
                                "conditions the generator (sets similarity.embedder)")
        if command == "sample":
            parser.add_argument("--like", action="append", metavar="IMAGE", help="exemplar model: make images like this "
                                "image file (repeatable: one row each)")
            parser.add_argument("--truncation", type=truncation_flag, metavar="T", help=TRUNCATION_HELP)
        if command == "eval":
            parser.add_argument("--exemplars", type=int, metavar="N", help="exemplar run: how many test images to use as "
                                "exemplars (default 200)")
            parser.add_argument("--truncation", type=truncation_flag, metavar="T", help=TRUNCATION_EVAL_HELP)

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        data, embedder = _images_and_embedder(config, split)
        e = embedder.embed(data.images)
        return _fields(data, e, nearest_neighbours(e, config.similarity.neighbours))

    @classmethod
    def load_run_data(cls, config: Config, out: Path):
        """The training data, with every image's embedding and neighbours kept in the run (NEIGHBOURS_FILE,
        keyed by the embedder's weights, the images and k): a resume reuses them instead of embedding the
        whole training set again; a different embedder, data or k recomputes them."""
        from ..progress import note
        from ..search import digest
        from ..training import dist
        from ..training.atomic import atomic_save

        data, embedder = _images_and_embedder(config, "train")
        k = config.similarity.neighbours
        key = digest({**{f"embedder.{n}": t for n, t in embedder.net.state_dict().items()}, "images": data.images,
                      "k": torch.tensor(k)})
        path = Path(out) / NEIGHBOURS_FILE
        kept = read_kept(path, key)
        if kept is not None:
            note(f"data: reused the embeddings and {k} nearest neighbours of {len(data.images):,} images kept in {path}")
            return _fields(data, kept["embedding"], kept["knn"].long())
        e = embedder.embed(data.images)
        knn = nearest_neighbours(e, k)
        if dist.rank() == 0:
            Path(out).mkdir(parents=True, exist_ok=True)
            atomic_save({"key": key, "embedding": e, "knn": knn.int()}, path)
        return _fields(data, e, knn)

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("image", ("embedding",), ("embedding",), None)

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        m, image, dim = config.model, spec["image"], spec["embedding"].dim
        G = ResNetGenerator(0, m.z_dim, image.channels, image.height, m.g_width, cond_dim=dim)
        D = ProjectionDiscriminator(0, image.channels, image.height, m.d_width, class_head=False, cond_dim=dim)
        return G, D

    @staticmethod
    def frozen(run) -> dict:
        return {"embedder": load_embedder(run.config).net.to(run.device)}

    @staticmethod
    def select(run, idx: torch.Tensor, k: int) -> dict:
        """Exemplar i's embedding, and a real image drawn from i's neighbours (seeded by batch number k)."""
        g = torch.Generator().manual_seed(run.config.train.seed * 1_000_039 + k)
        knn = run.fields["knn"]
        column = torch.randint(knn.shape[1], (len(idx),), generator=g).to(knn.device)
        return {"image": run.fields["image"][knn[idx, column]], "embedding": run.fields["embedding"][idx]}

    @staticmethod
    @torch.no_grad()
    def preview(run, path):
        """exemplar | 7 outputs (fixed noise) for 8 exemplars spread over the training set."""
        from ..visual import save_grid

        rows = torch.linspace(0, run.n_items - 1, min(EXEMPLAR_ROWS, run.n_items)).long().to(run.device)
        n = GRID_COLUMNS - 1
        e = run.fields["embedding"][rows].repeat_interleave(n, dim=0)
        z = run.fixed_noise[:n].repeat(len(rows), 1).to(run.device)
        outputs = run.step.G_ema(z, e).cpu().view(len(rows), n, *run.fields["image"].shape[1:])
        exemplars = to_float(run.fields["image"][rows]).cpu()[:, None]
        images = torch.cat([exemplars, outputs], dim=1).flatten(0, 1)
        save_grid(images, path, nrow=GRID_COLUMNS, title=f"step {run.step.steps_done}: exemplar | {n} outputs")
        return images

    @classmethod
    def sample(cls, gen: Exemplar, args, out: Path) -> int:
        """One row per --like image: the exemplar, then --n images like it."""
        from ..visual import save_grid

        if not args.like:
            raise UserError("an exemplar model makes images like a given one: pass --like IMAGE (repeatable)")
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise UserError(f"--out must end in .png or .jpg, not {printable(out.name, 80)!r}")
        n = args.n if args.n is not None else 8
        check_count(n, "--n", MAX_GRID)
        exemplars = torch.cat([read_user_image(p, gen.spec["image"], "--like image") for p in args.like])
        outputs = gen.sample(like=exemplars, n=n, seed=args.seed, truncation=args.truncation)
        outputs = outputs.view(len(exemplars), n, *exemplars.shape[1:])
        images = torch.cat([to_float(exemplars)[:, None], outputs], dim=1).flatten(0, 1)
        note = truncation_note(args.truncation)
        save_grid(images, out, nrow=n + 1, title=f"exemplar | {n} images like it (seed {args.seed}){note}")
        print(f"wrote {n} image(s) like each of {len(exemplars)} exemplar(s) to {out}{note}")
        return 0

    @classmethod
    def evaluate(cls, model: Exemplar, args, out: Path) -> int:
        from ..config import DataConfig
        from ..eval.exemplar import evaluate_exemplar

        n = 200 if args.exemplars is None else args.exemplars
        if not 2 <= n <= 10_000:
            raise UserError(f"--exemplars must be between 2 and 10,000, not {n}")
        data = Config(task="exemplar", data=DataConfig(**{k: v for k, v in model.data.items() if v is not None}))
        r = evaluate_exemplar(model, data, out, n, seed=args.seed, progress=not args.quiet, source=str(args.run),
                              truncation=args.truncation)
        m = r["model"]
        print(f"similarity to exemplar {m['exemplar_similarity']:.3f} (real neighbours {m['neighbour_similarity']:.3f}, "
              f"random real pairs {m['random_pair_similarity']:.3f})  diversity {m['diversity_ratio']:.2f}x real neighbours"
              + (f"  class agreement {m['class_agreement']:.1%} (real neighbours {m['neighbour_class_agreement']:.1%})"
                 if m.get("class_agreement") is not None else "")
              + f"  suspected copies {m['suspected_copies']:.2%} (real floor {m['suspected_copies_floor']:.2%})"
              + truncation_note(args.truncation))
        print(f"report: {Path(out) / 'report.md'}")
        return 0

    @classmethod
    def next_hint(cls, run: str, summary: dict) -> str:
        return f"condgan sample {run} --like REF.png --n 16 --out like.png   |   condgan eval {run}"
