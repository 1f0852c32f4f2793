"""condgan: label-conditioned image generation with proof that labels are obeyed.

    import condgan
    gen = condgan.load("runs/default")
    sandals = gen.sample("sandal", n=16, seed=0)          # float tensor in [-1, 1]
    pictures = gen.sample(["sandal", "bag"], output_type="pil")
"""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a trained generator from a run directory, checkpoint, or save_pretrained folder."""
    from .api import load as _load

    return _load(path, device)


__all__ = ["load", "__version__"]
