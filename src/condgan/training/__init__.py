"""Training: the run loop (trainer.py), checkpoints and exports (checkpoint.py), augmentation."""


def __getattr__(name):  # lazy: loading a checkpoint should not import the whole training stack
    if name in ("Run", "train"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)


__all__ = ["Run", "train"]
