"""The sections every task's config has (data, model, train), and the defaults that depend on the data."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass
class DataConfig:
    name: str = "fashion-mnist"       # 'fashion-mnist', 'mnist', or a folder path
    data_dir: str | None = None       # where the IDX files live, if not the default
    classes: list[str] | None = None  # train on a subset, relabelled 0..k-1
    image_size: int | None = None     # resize to this (default: native; 64 for folders)
    channels: int | None = None       # 1 or 3 (default: from the data)
    bad_files: str = "skip"           # unreadable images in folders: 'skip' (warn) or 'error'
    cache: str = "auto"               # folders of images: 'memory' (decode all into RAM), 'disk' (decode once into
                                      # $CONDGAN_CACHE/decoded, read batches from there: memory stays flat), or
                                      # 'auto': disk when the decoded images would exceed 2 GiB
    direction: str = "AtoB"           # translate: AtoB (A is the source) or BtoA
    jitter: list[str] = field(default_factory=list)  # translate: random 'flip', 'shift' of each pair, the same for source and target
    image_column: str = "image"       # --data hf:PATH: the column holding the images
    label_column: str = "label"       # --data hf:PATH: the column holding the labels (a ClassLabel, ints or strings)
    paths_outside: str = "warn"       # CSV rows (data CSVs, two-stage manifests, similarity.pairs) naming files outside the
                                      # CSV's folder ('../x.png', '/abs/x.png'): 'warn' (one warning) or 'error'


@dataclass
class ModelConfig:
    arch: str | None = None           # cgan: 'resnet' (default) | 'dcgan' | 'mlp'; translate: 'unet'
    z_dim: int | None = None          # noise size (cgan 64; translate 8, injected at the U-Net's bottleneck)
    g_width: int | None = None        # G channels at full resolution (doubles per lower level); cgan 16, translate 32
    d_width: int | None = None        # D channels at full resolution; cgan 16, translate 32
    g_skip_z: bool = False            # resnet G: the noise also shifts every block's conditional BatchNorm (BigGAN's
                                      # skip-z), not only G's first layer; off (default): see docs/benchmarks.md
    d_mbstd: int = 0                  # resnet D: the spread of each group of this many images joins D's pooled
                                      # features (ProGAN's minibatch standard deviation), so D can see a batch too
                                      # alike; 0 (default): off. cgan and two-stage's stage 1, like g_skip_z
    use_label: bool = False           # translate: also condition G (conditional norm) and D (projection) on the
                                      # pairs' class label; off, labels are only used to evaluate


@dataclass
class TrainConfig:
    loss: str = "hinge"               # 'hinge' | 'lsgan' | 'bce'
    batch_size: int | None = None     # 64; a resnet cgan above 32 px: 32 (more steps in the same minutes)
    lr_g: float = 4e-4
    lr_d: float = 8e-4                # D learns twice as fast as G (TTUR): measured better in 10 minutes
    lr_decay: float | None = None     # share of the run, at its end, over which every learning rate (G's and D's;
                                      # similarity: its lr) falls linearly to 0, so the last steps settle instead of
                                      # jumping about at full rate; progress is the nearer of steps/epochs and
                                      # budget_minutes. 0: constant rates. None (default): the task's choice: 0.3 for
                                      # similarity's labelled recipes (measured better: docs/similarity.md), else 0
    beta1: float = 0.0
    beta2: float = 0.99
    d_steps: int = 1                  # D updates per G update
    aux_weight: float | None = None   # auxiliary class loss in D and G; default 2.5 for resnet (the
                                      # only D with a class head), 0 for the classic recipes
    aux_form: str | None = None       # G's class term: 'ce' (AC-GAN cross-entropy) | 'margin' (stops once D gives the
                                      # class aux_confidence: less prototypical) | 'twin' (TAC-GAN: a twin class head
                                      # on generated images cancels the pull towards prototypes; resnet cgan only) |
                                      # 'adc' (ADC-GAN: one head tells real and generated images of each class
                                      # apart; G is rewarded for real-of-its-class over generated-of-its-class) |
                                      # 'd2d' (ReACGAN's data-to-data cross-entropy on a class embedding in D:
                                      # stops pulling near the class proxy).
                                      # None: adc for the resnet (more recall, better FID and per-class FID on
                                      # Fashion-MNIST and on a 64-px folder), ce elsewhere
    aux_confidence: float = 0.9       # aux_form margin: D's probability of the requested class that is enough
    twin_weight: float | None = None  # aux_form twin: share of the twin term in G's class loss (1 = TAC-GAN, which
                                      # mixes similar classes; default 0.35 keeps most of AC-GAN's pull towards its
                                      # class)
    adc_weight: float | None = None   # aux_form adc: share of the generated-class term in G's class loss (1 = ADC-GAN;
                                      # default 0.1: more gives up class accuracy, docs/benchmarks.md). Older
                                      # condgan read train.twin_weight here; from_dict migrates old configs
    fake_term_start: int = 0          # aux_form twin/adc: G steps on plain cross-entropy before the generated-image
                                      # class term (twin's twin head, adc's generated classes) joins (G first learns
                                      # the classes; D's heads train from the start). Was train.twin_start
    diversity_weight: float | None = None  # mode-seeking term in G's loss: keeps samples of one class varied
                                      # (it offsets the sameness that a strong aux_weight brings); cgan 0.5,
                                      # 0.75 with aux_form adc (FORM_DEFAULTS)
    l1_weight: float | None = None    # translate: weight of L1 to the target, 10 (pix2pix used 100: blurrier here,
                                      # docs/benchmarks.md); cgan: 0
    adversarial_weight: float = 1.0   # weight of the adversarial term in G's loss (0 = a plain L1 regressor)
    feature_matching: float = 0.0     # translate: weight of matching D's features of real and generated pairs
    r1_weight: float = 0.0            # zero-centred gradient penalty on real images (R1, Mescheder et al. 2018): D is
                                      # also trained to keep its score flat around real images, weighed by r1_weight/2;
                                      # computed every 4th step with 4x the weight (lazy, as StyleGAN2). 0 (default): off
    lecam_weight: float = 0.0         # LeCam regulariser (Tseng et al. 2021): D's scores of reals are kept from
                                      # rising above the moving average of its scores of fakes, and fakes' from
                                      # falling below that of reals', which stops D memorising a small dataset.
                                      # The paper used 0.1-0.5 with DiffAugment. 0 (default): off
    ema_decay: float = 0.99           # EMA of G's weights, used for sampling; 0 disables
    ema_start: int = 500              # steps before the EMA starts tracking
    standing_stats: int | None = None  # images G_ema draws to measure its own BatchNorm statistics before each preview
                                      # and checkpoint (BigGAN's standing statistics; G's, copied each step, belong
                                      # to G's weights, not the average's). cgan: 1024 up to 64 px, 0 above (its
                                      # own scored worse at 128 px); other tasks: 0, off (G's statistics are
                                      # copied, as before); also off with ema_decay 0
    augment: list[str] | None = None  # DiffAugment ops for D's inputs: translation, cutout, brightness; [] = none.
                                      # None (default): cgan on < 10,000 images gets translation,cutout (small data
                                      # overfits D), otherwise none; the choice is logged and written to config.yaml
    steps: int | None = None          # stop after this many G steps ...
    epochs: float | None = None       # ... or this many passes over the data ...
    budget_minutes: float | None = None  # ... or this much training time (first reached wins)
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500           # write a class grid every N steps
    checkpoint_every: int = 1000      # steps between checkpoints
    checkpoint_minutes: float = 5.0   # ... and at least this often in wall-clock time
    keep_checkpoints: int = 3         # older checkpoints are deleted
    on_divergence: str = "stop"       # NaN/Inf: 'stop', or 'rollback' to the last good checkpoint
    deterministic: bool = False       # bit-reproducible on CPU (slower)
    device: str = "auto"              # 'auto' (cuda, then mps, then cpu) | 'cpu' | 'cuda' | 'cuda:N' | 'mps'
    threads: int | None = None        # CPU threads; null: measured while training (all cores, half or 1, whichever
                                      # trains fastest with what else runs now; training/threads.py). Fixed by a
                                      # number here, OMP_NUM_THREADS (torchrun sets 1 per process) or deterministic
    precision: str = "auto"           # every task's networks (GANs, the similarity embedder):
                                      # 'auto' (bf16 where the CPU/GPU computes it natively, else fp32; similarity's
                                      # selfsup: fp32) | 'fp32' |
                                      # 'bf16' (autocast) | 'fp16' (GPU only, with gradient scaling); weights and
                                      # optimiser state stay fp32 (docs/distributed.md, docs/benchmarks.md)
    channels_last: bool | None = None  # NHWC memory format (default: on for CPU, where oneDNN is faster with it)
    compile: bool = False             # torch.compile G and D: minutes of compiling first (docs/benchmarks.md)
    sync_batchnorm: bool = False      # several processes (torchrun): G's BatchNorm statistics over the whole batch,
                                      # not each process's share (slower: one all_reduce per BatchNorm layer)


AUX_FORMS = ("ce", "margin", "twin", "adc", "d2d")
# Settings measured together with a class term: filled in when left unset, once train.aux_form is known.
FORM_DEFAULTS = {"twin": {"train.twin_weight": 0.35},
                 "adc": {"train.adc_weight": 0.1, "train.diversity_weight": 0.75}}
CGAN_DIVERSITY_WEIGHT = 0.5  # the cgan's mode-seeking weight with the other class terms


def size_defaults(arch: str, image_size: int) -> dict:
    """A cgan's widths (G and D channels at full resolution) and batch size: 16 and 64, but 8 and 32 for the
    resnet above 32 px, where the full-resolution layers take most of the CPU time: at 64 px that model made
    3.4x the steps of the wider one in the same minutes, with a third of its FID (docs/benchmarks.md, "Your
    own folder at 64 px"). G's class term: the resnet's adc form at every size: it lifted recall, FID and
    per-class FID on Fashion-MNIST at 28 px and on the shoe folder at 64 px (issue 23)."""
    large = arch == "resnet" and image_size > 32
    return {"model.g_width": 8 if large else 16, "model.d_width": 8 if large else 16, "train.batch_size": 32 if large else 64,
            "train.aux_form": "adc" if arch == "resnet" else "ce"}


def check_image_size(arch: str, height: int, width: int | None = None, given: bool = True) -> None:
    """Refuse an image size the networks of `arch` cannot be built at, as a ConfigError naming data.image_size,
    instead of a ValueError from a constructor: the resnet and DCGAN halve the image until a 4 to 7 px base,
    so it must be even and at least 8; the U-Net, patch D and embedder pool it to a few pixels (at least 4).
    given: the size is the config's data.image_size (checked before any data is read), else the data's own."""
    width = height if width is None else width
    halving = arch in ("resnet", "dcgan")
    low = 8 if halving else 4 if arch in ("unet", "embedder") else 1
    if min(height, width) >= low and not (halving and (height % 2 or width % 2)):
        return
    allowed = f"an even number of at least {low} (e.g. 28, 32, 64)" if halving else f"at least {low}"
    if given:
        raise ConfigError(f"data.image_size {height} does not fit model.arch {arch}: it must be {allowed}")
    shape = f"{height}" if height == width else f"{height}x{width}"
    raise ConfigError(f"the images are {shape} px (data.image_size unset: their own size), but model.arch {arch} "
                      f"needs a size of {allowed}: set data.image_size to resize them")


SMALL_DATA = 10_000  # below this many training images, a cgan augments D's inputs by default (train.augment)
SMALL_DATA_AUGMENT = ["translation", "cutout"]
# Keys that may change when a run is resumed: when and how to stop, log and save, and where and how to run.
# Everything else is the run's recipe (model, data, optimiser) and is fixed by its checkpoint.
RUNTIME_KEYS = {f"train.{k}" for k in ("steps", "epochs", "budget_minutes", "log_every", "sample_every",
                                        "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
                                        "on_divergence", "device", "threads", "deterministic", "precision",
                                        "sync_batchnorm", "channels_last", "compile",
                                        "standing_stats")} | {"data.cache", "data.paths_outside"}



_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}  # every task's; tasks add their own
