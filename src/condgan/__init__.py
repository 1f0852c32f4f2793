"""condgan: label-conditioned image generation with proof that labels are obeyed.

    import condgan
    gen = condgan.load("runs/default")
    sandals = gen.sample("sandal", n=16, seed=0)          # float tensor in [-1, 1]
    pictures = gen.sample(["sandal", "bag"], output_type="pil")
    garments = condgan.load("runs/edges").translate(edge_maps)   # a translator
"""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """The pipeline for a run directory, checkpoint or exported folder: ClassConditional (`sample`) or
    Translator (`translate`), whichever task the model was trained for."""
    from .pipelines import load as _load

    return _load(path, device)


__all__ = ["load", "__version__"]
