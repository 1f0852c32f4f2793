"""Command line: `condgan train | sample | apply | compare | search | export | eval | evaluator | serve`.

One style for every task: the verb comes first, the task is part of the run
(`condgan train --task translate ...`), and every later command reads the task
from the run it is given.

Every user mistake surfaces as one line on stderr and exit code 2; a
diverged run exits 3; an unexpected failure is one line and exit 1 (its
traceback only with --debug). In training, Ctrl-C (like SIGTERM) lets the step
in flight finish, saves a checkpoint and exits 130; a second Ctrl-C quits at
once without writing.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DivergenceError, UserError
from ..untrusted import printable
from .common import Parser

EXAMPLES = """examples:
  condgan train --budget-minutes 10 --out runs/fmnist          # default model on Fashion-MNIST
  condgan train --config configs/fashion-mnist.yaml --set train.batch_size=128
  condgan train --data path/to/shoes --classes sandal,boot --out runs/shoes
  condgan train --data labels.csv --out runs/mine              # CSV: path,label[,split]
  condgan train --data hf:path/to/saved --label-column y       # a Hugging Face dataset on disk, or parquet
  condgan train --resume runs/fmnist --budget-minutes 5        # five more minutes
  condgan sample runs/fmnist --label sandal --n 64 --out sandals.png
  condgan sample runs/fmnist --n-per-class 1000 --out samples.npz
  condgan eval runs/fmnist
translation (a mask / edge map / sketch in, an image out):
  condgan train --task translate --data fashion-mnist-edges --budget-minutes 10 --out runs/edges
  condgan train --task translate --data path/to/pairs --direction BtoA --out runs/mine   # A/ and B/ folders
  condgan apply runs/edges my_edges/ --out translated/          # every image of a folder, same names
  condgan apply runs/edges --split test --out test.npz         # outputs, sources, targets as arrays
  condgan sample runs/edges --out sheet.png                    # source | output | target sheet
  condgan eval runs/edges                                      # L1, SSIM, sharpness, FID, class accuracy
two labels, two stages (G1: label A -> intermediate; G2: intermediate + label B -> image):
  condgan train --task two-stage --data fashion-mnist-colours --budget-minutes 20 --out runs/colours
  condgan train --task two-stage --stage stage1 --data my/manifest.csv --out runs/mine   # one stage at a time
  condgan sample runs/colours --out grid.png                   # rows: label A, columns: label B
  condgan sample runs/colours --label-a sandal --label-b red,blue --n 4 --out sandals.png
  condgan sample runs/colours --n-per-pair 100 --out pairs.npz
  condgan eval runs/colours                                    # label A/B accuracy, IoU, swap tests, FID
similarity (which images are alike) and "more like this one":
  condgan train --task similarity --recipe triplet --budget-minutes 5 --out runs/similar
  condgan compare runs/similar a.png b.png                     # score, and the verdict at the learned threshold
  condgan search runs/similar query.png --in photos/ --k 8     # nearest images, listed and drawn
  condgan eval runs/similar                                    # verification (LFW protocol), AUC, EER, MAP@R
  condgan train --task similarity --recipe selfsup --data my_images/ --out runs/ssl     # no labels needed
  condgan train --task exemplar --embedder runs/ssl --data my_images/ --out runs/like
  condgan sample runs/like --like ref.png --n 16 --out like.png
"""


def build_parser() -> argparse.ArgumentParser:
    from .eval import add_eval_commands
    from .serve import add_serve_command
    from .similarity import add_similarity_commands
    from .train import add_train_command
    from .use import add_use_commands

    parser = Parser(prog="condgan", description="Label-conditioned image generation.",
                    epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"condgan {__import__('condgan').__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the Python traceback (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_train_command(sub)
    add_use_commands(sub)
    add_similarity_commands(sub)
    add_serve_command(sub)
    add_eval_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; every failure is one line on stderr (the traceback too only with --debug)."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"condgan: warning: {printable(message, 300)}\n"
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    parser = build_parser()
    args = parser.parse_args([a for a in argv if a != "--debug"])

    def fail(prefix: str, message, code: int) -> int:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"condgan: {prefix}: {printable(message, 600)}", file=sys.stderr)
        return code

    import logging

    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="condgan: %(message)s", stream=sys.stderr)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    from ..progress import silenced

    try:
        with silenced(getattr(args, "quiet", False)):  # --quiet: no progress bar anywhere, data decoding included
            return args.func(args)
    except UserError as e:
        return fail("error", e, e.exit_code)
    except DivergenceError as e:
        return fail("diverged", e, e.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", "stopped at once; nothing was written", 130)
    except MemoryError:
        return fail("error", "out of memory; ask for fewer images (--n, --n-per-class) or a smaller batch", 2)
    except OSError as e:  # disk full, read-only folders and the like: no traceback, say what failed
        return fail("error", f"{e.strerror or e} {('(' + str(e.filename) + ')') if e.filename else ''}".rstrip(), 2)
    except Exception as e:  # a bug, or input we failed to check: still one line, and how to report it
        return fail("error", f"unexpected {type(e).__name__}: {e} (this is a condgan bug; rerun with --debug and report "
                    f"the traceback)", 1)


if __name__ == "__main__":
    sys.exit(main())
