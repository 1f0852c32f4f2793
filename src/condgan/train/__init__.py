"""Training: the GAN step (loop.py), runs (trainer.py), checkpoints, augmentation."""

from .trainer import Run, train

__all__ = ["Run", "train"]
