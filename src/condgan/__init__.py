"""condgan: label-conditioned image generation with proof that labels are obeyed.

    import condgan
    gen = condgan.load("runs/default")
    sandals = gen.sample("sandal", n=16, seed=0)          # float tensor in [-1, 1]
    pictures = gen.sample(["sandal", "bag"], output_type="pil")
"""

import os

# With the default (active) OpenMP wait policy, two PyTorch processes sharing a
# few CPU cores spin against each other and each slows down ~10x (measured
# here: 153 -> 13 images/s). Passive waiting costs little when alone. This only
# takes effect if condgan is imported before torch, as the CLI does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a trained generator from a run directory, checkpoint, or save_pretrained folder."""
    from .api import load as _load

    return _load(path, device)


__all__ = ["load", "__version__"]
