"""Offline evaluation of class-conditional generators: does the model obey its labels?

condgan trains its own small domain classifier (no Inception download) and
uses it to compute FID/KID, per-class FID, conditioning accuracy, k-NN
precision/recall/density/coverage, intra-class diversity and memorisation,
each beside the same number for real held-out images.
The command line is `condgan eval` (cli/eval.py); each task says what its models are scored on (Task.evaluate).
"""

from .evaluator import Evaluator, get_evaluator, load_evaluator, train_evaluator
from .metrics import fid, kid, prdc
from .report import evaluate_generator, evaluate_run, evaluate_samples
from .samples import load_samples_npz, save_samples_npz

__all__ = ["Evaluator", "get_evaluator", "load_evaluator", "train_evaluator", "fid", "kid",
           "prdc", "evaluate_generator", "evaluate_run", "evaluate_samples", "load_samples_npz", "save_samples_npz"]
